"""Question answering speed of the VQA configs on this machine: questions/s, scored and generated.

For each shipped VQA CPU config: a trained run's model (``runs/<config name>`` if it is
there, else a fresh random-init model of the config's shape, whose generated captions run to
the token limit) answers the first N validation questions, single view, one process. Scored
questions (a class, a count, yes/no, a letter: candidates ranked by label scoring) and
generated ones (captions, greedy) are timed apart, since generation costs one forward pass per
answer token.

    python benchmarks/bench_questions.py [--questions 1500] [--only llava]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

CONFIGS = ["mnist-vqa-llava-cpu", "fashion-vqa-llava-cpu", "mnist-vqa-ascii-cpu"]


def measure(cfg, run_dir, n: int) -> dict:
    import tempfile
    from pathlib import Path

    import torch

    from mistral_vision.data.run_data import label_names_for, load_questions
    from mistral_vision.infer.questions import QuestionAnswerer
    from mistral_vision.models.build import build_run_model, load_run_model
    from mistral_vision.tasks import make_task

    torch.manual_seed(0)
    trained = run_dir is not None and (run_dir / "model" / "manifest.json").is_file()
    if trained:
        model, processor, _ = load_run_model(run_dir / "model", "float32", cfg)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model, processor = build_run_model(cfg, Path(tmp), log=lambda *_: None)
        model.eval()
    task = make_task(cfg, processor, label_names_for(cfg.data))
    qs = load_questions(cfg.data, "valid").subset(n)
    ans = QuestionAnswerer(model, task, cfg.eval.score_eos)
    out = {"trained": trained}
    bs = cfg.eval.batch_size
    for mode in ("score", "generate"):
        idx = [i for i, it in enumerate(qs.items) if ans.mode_of(it) == mode]
        if not idx:
            continue
        ans.answer(qs, idx[:8])                                      # warm up
        t = time.perf_counter()
        for i in range(0, len(idx), bs):
            ans.answer(qs, idx[i:i + bs])
        out[mode] = (len(idx), len(idx) / (time.perf_counter() - t))
    return out


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=1500)
    ap.add_argument("--only", help="only the configs whose name contains this")
    args = ap.parse_args(argv)
    import torch

    from mistral_vision.config import load_config

    rows, out = [], []
    for name in CONFIGS:
        if args.only and args.only not in name:
            continue
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", [f"data.data_dir={data_dir()}", "data.offline=true"])
        r = measure(cfg, ROOT / "runs" / name, args.questions)
        out.append({"config": name, **r})
        cell = lambda k: f"{r[k][1]:,.0f} (n={r[k][0]})" if k in r else "-"  # noqa: E731
        rows.append([name, "trained" if r["trained"] else "random init", cell("score"), cell("generate")])
    print(table(["config", "model", "scored questions/s", "generated questions/s"], rows))
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}; single view, eval.batch_size")
    return out


if __name__ == "__main__":
    main()
