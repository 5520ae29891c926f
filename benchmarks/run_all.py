"""All quick benchmarks in one go (`make bench`): rendering speed, model throughput, the
small-CNN reference on the configs' art, questions/s of the VQA configs, the time a data selection
takes, and the config results table from whatever runs exist. Add --run-configs to train them (~1 h).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    # Each benchmark runs in its own process: bench_render pins BLAS/OpenMP to one thread
    # through environment variables, which would otherwise also throttle the model benchmark.
    steps = [("ASCII conversion speed", ["bench_render.py"]),
             ("Tiny-preset throughput", ["bench_model.py"]),
             ("What survives the rendering: a small CNN on the same art", ["bench_ceiling.py"]),
             ("Question answering speed (VQA configs)", ["bench_questions.py"]),
             ("Data selection: 1,000 of 100,000", ["bench_select.py"]),
             ("Shipped CPU configs", ["bench_configs.py"] + (["--run"] if "--run-configs" in sys.argv else []))]
    for title, cmd in steps:
        print(f"## {title}\n", flush=True)
        subprocess.run([sys.executable, str(HERE / cmd[0])] + cmd[1:], check=True)
        print(flush=True)


if __name__ == "__main__":
    main()
