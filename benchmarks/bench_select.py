"""How long a selection takes: 1,000 of 100,000 examples with 128-d embeddings, per method.

The embeddings are random (``torch.randn``, seed 0) and stand in for cached run features: the library's
``features.run_features`` is replaced by a function returning them, so the time is the method's own
(greedy k-center: 999 steps, each computing only the distances its pruning and float32 screen cannot rule
out; clusters: k-means++ and up to 25 Lloyd iterations at k = round(sqrt(keep)), then the per-cluster draw).
Random 128-d points are k-center's worst case: all their distances are alike, so the triangle inequality
rules nothing out. A run's embeddings are clustered, so k-center runs again on a mixture of ``--blobs``
Gaussian blobs (unit spread, centers drawn with ``--blob-spread`` times that spread; 0 blobs: skip). The
last row is the floor of a pass-per-step greedy k-center, one float32 matrix-vector product over the pool
per chosen example, timed here too. Extracting the embeddings runs at the scorer's images/s and is not
timed here. The pool's items carry 10 question types for ``stratified``.

    python benchmarks/bench_select.py [--pool 100000] [--keep 1000] [--dim 128] [--blobs 50] [--blob-spread 2]
                                      [--threads 1]   (default: BENCH_THREADS, else 1)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--keep", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--blobs", type=int, default=50)
    ap.add_argument("--blob-spread", type=float, default=2.0)
    # one thread: a second OpenMP thread on a busy core stalls
    ap.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "1")))
    args = ap.parse_args(argv)
    import torch

    from mistral_vision.config import SelectConfig
    from mistral_vision.data.questions import Item, QuestionSet
    from mistral_vision.data.selection import Pool
    from mistral_vision.select import features
    from mistral_vision.select.selection import select

    torch.set_num_threads(args.threads)
    uniform = torch.randn(args.pool, args.dim, generator=torch.Generator().manual_seed(0))
    emb = {"now": uniform}
    features.run_features = lambda run_dir, qset, kind, **kw: emb["now"]   # "cached": no model in the timing
    features.check_run_fits = lambda run_dir, qset: None
    items = [Item(f"x{i:06d}", i, [("human", "<image>\nq"), ("gpt", "a")], f"type-{i % 10}")
             for i in range(args.pool)]
    pool = Pool("random-embeddings", QuestionSet("bench", [None] * args.pool, items), [{} for _ in items], "0" * 64)
    runs = [("random", {}, "uniform"), ("stratified", {}, "uniform"), ("kcenter", {"from_run": "."}, "uniform"),
            ("clusters", {"from_run": "."}, "uniform")]
    if args.blobs:
        g = torch.Generator().manual_seed(1)
        centers = torch.randn(args.blobs, args.dim, generator=g) * args.blob_spread
        blobs = centers[torch.randint(args.blobs, (args.pool,), generator=g)] + torch.randn(args.pool, args.dim, generator=g)
        runs.append(("kcenter", {"from_run": "."}, "blobs"))
    out, rows = [], []
    for method, params, data in runs:
        emb["now"] = uniform if data == "uniform" else blobs
        spec = SelectConfig(method=method, keep=args.keep, **params)
        t0 = time.perf_counter()
        m = select(pool, spec, 0, log=lambda *_: None)
        secs = time.perf_counter() - t0
        assert len(set(m["ids"])) == args.keep
        out.append({"method": method + ("" if data == "uniform" else f", {args.blobs} blobs"), "seconds": secs,
                    **m["params"]})
    # The floor of a pass-per-step greedy k-center: one float32 pass over the embeddings per chosen example.
    x32, t0 = uniform.contiguous(), time.perf_counter()
    for i in range(20):
        x32 @ x32[i]
    base = (time.perf_counter() - t0) / 20 * (args.keep - 1)
    out.append({"method": f"floor: {args.keep - 1} float32 passes (x @ c)", "seconds": base})
    for r in out:
        rows.append([r["method"], f"{args.keep:,} of {args.pool:,}" + (f", {args.dim}-d" if r.get("from_run") else ""),
                     f"{r['seconds']:.2f} s", f"{r['seconds'] / base:.2f}x",
                     f"k = {r['clusters']}" if "clusters" in r and r["clusters"] else ""])
    print(table(["method", "selection", "time", "vs the floor", "note"], rows))
    print(f"\n(torch {torch.__version__}, {args.threads} threads)")
    return out


if __name__ == "__main__":
    main()
