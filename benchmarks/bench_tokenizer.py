"""Tokens per image for each tokenizer, and char-level vs ASCII-tokenizer training in one run.

    python benchmarks/bench_tokenizer.py            # token table (~5 min: trains ours per format)
    python benchmarks/bench_tokenizer.py --train    # + demo-size training, char vs ours (~5 min more)

Token table: real validation images (first 2,000) rendered with the default ramp at each
format; "ours (BPE 32k)" is the ASCII tokenizer with Mistral v1's vocabulary size (32,000)
trained on 20,000 training renderings of that format (split none), "ours (chunks of 2)" the
512-token chunked variant the CPU configs use. Training: configs/demo.yaml twice, one after
the other in this process's machine (nothing else running), once with the char tokenizer for
its 2 epochs and once with `tokenizer: ascii-bpe` (chunks of 2) for 4 epochs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

FORMATS = [("mnist", 14, 14), ("mnist", 28, 28), ("mnist", 100, 50), ("fashion-mnist", 14, 14),
           ("fashion-mnist", 28, 28)]


def token_table() -> str:
    from mistral_vision.models import ascii_tokenizer as at

    rows = []
    for ds, w, h in FORMATS:
        arts = at.render_split(ds, "valid", w, h, limit=2000, data_dir=data_dir(), offline=True)
        train = at.render_split(ds, "train", w, h, limit=20000, data_dir=data_dir(), offline=True)
        t0 = time.time()
        free = at.train_ascii_tokenizer(train, 32000, "none")
        chunks = at.train_ascii_tokenizer(train, 512, "chunks", 2)
        fit_s = time.time() - t0
        for tok in (free, chunks):
            at.check_round_trip(tok, arts)
        counts = {n: at.reference_counter(n)(arts) for n in ("mistral-v1", "mistral-tekken", "char")}
        counts["ours (BPE 32k)"] = at._hf_counter(free)(arts)
        counts["ours (chunks of 2)"] = at._hf_counter(chunks)(arts)
        mean = {k: sum(v) / len(v) for k, v in counts.items()}
        rows.append([f"{ds} {w}x{h}", f"{sum(map(len, arts)) / len(arts):.0f}"]
                    + [f"{mean[k]:.1f}" for k in counts]
                    + [f"{mean['mistral-v1'] / mean['ours (BPE 32k)']:.2f}x", f"{fit_s:.0f} s"])
    return table(["renderings", "chars", "Mistral v1", "Mistral Tekken", "char-level", "ours (BPE 32k)",
                  "ours (chunks of 2)", "v1 / ours (BPE 32k)", "fit both"], rows)


def train_comparison() -> str:
    rows = []
    runs = tempfile.mkdtemp(prefix="bench-tok-")
    for label, sets in [("char-level", ["train.epochs=2"]),
                        ("ours (chunks of 2)", ["train.epochs=4", "tokenizer.kind=ascii-bpe", "tokenizer.split=chunks",
                                                "tokenizer.chunk_size=2", "tokenizer.vocab_size=512"])]:
        name = "char" if label == "char-level" else "bpe"
        cmd = [sys.executable, "-m", "mistral_vision.cli", "run", str(ROOT / "configs" / "demo.yaml"),
               "--set", f"runs_dir={runs}", "--set", f"name={name}", "--set", f"data.data_dir={data_dir()}",
               "--set", "data.offline=true", "--set", "eval.splits=[valid]"]
        for s in sets:
            cmd += ["--set", s]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        s = json.load(open(os.path.join(runs, name, "train_summary.json")))
        m = json.load(open(os.path.join(runs, name, "eval", "mnist-valid", "metrics.json")))
        rows.append([label, s["epochs"], f"{s['wall_s'] / 60:.2f}", f"{m['accuracy']:.2%}",
                     f"{m['accuracy_ci95'][0]:.2%}-{m['accuracy_ci95'][1]:.2%}", m["n"]])
    return table(["tokenizer", "epochs", "train wall min", "valid accuracy", "95% CI", "n"], rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", action="store_true", help="also the demo-size training comparison")
    args = ap.parse_args(argv)
    print(token_table(), flush=True)
    if args.train:
        print()
        print(train_comparison())


if __name__ == "__main__":
    main()
