"""Validation accuracy and wall time of the shipped CPU configs, read from their run folders.

Run the configs first (25-30 min each on 2 cores; --run does it here, one after the other):

    mistral-vision run configs/mnist-ascii-cpu.yaml
    mistral-vision run configs/fashion-ascii-cpu.yaml
    python benchmarks/bench_configs.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, table  # noqa: E402

CONFIGS = ("mnist-ascii-cpu", "mnist-ascii-bpe-cpu", "fashion-ascii-cpu", "fashion-ascii-bpe-cpu")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="run the configs first (about an hour)")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    args = ap.parse_args(argv)
    rows = []
    for name in CONFIGS:
        run = os.path.join(args.runs_dir, name)
        if args.run:
            t = time.time()
            subprocess.run([sys.executable, "-m", "mistral_vision.cli", "run", str(ROOT / "configs" / f"{name}.yaml"),
                            "--set", f"runs_dir={args.runs_dir}"], check=True)
            print(f"{name}: whole pipeline {(time.time() - t) / 60:.1f} min")
        summary_p = os.path.join(run, "train_summary.json")
        if not os.path.isfile(summary_p):
            rows.append([name, "not run", "", "", "", ""])
            continue
        s = json.load(open(summary_p))
        from mistral_vision.eval.evaluate import load_metrics

        evals = {k.rsplit("-", 1)[1]: m for k, m in load_metrics(run).items()}
        v, te = evals.get("valid"), evals.get("test")
        rows.append([name, f"{s['epochs']}", f"{s['wall_s'] / 60:.1f}",
                     f"{v['accuracy']:.2%} (n={v['n']})" if v else "-",
                     f"{v['accuracy_ci95'][0]:.2%}-{v['accuracy_ci95'][1]:.2%}" if v else "-",
                     f"{te['accuracy']:.2%}" if te else "t10k not available"])
    print(table(["config", "epochs", "train wall min", "valid accuracy", "95% CI", "test accuracy"], rows))


if __name__ == "__main__":
    main()
