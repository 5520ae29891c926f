"""Is a pruned subset's run at the majority answer for lack of data, or for lack of optimisation?

The prune study's subsets (configs/compare/prune.yaml) trained the shipped epochs (1 caption + 3 instruct)
and every one of them stayed below the majority answer. This sweep takes the study's own random subset
(seed 0, ``--budget`` examples of the 4,000-canvas pool), trains it at several learning rates (every part of
both stages at the same rate, the shipped one being 2e-3) for many more instruct epochs, and records the
validation curve (in-training checks every ``--eval-every`` steps on 600 conversations, captions
excluded) and the final accuracy on all 3,000 validation questions with the majority answer beside it.
Each cell is an ordinary run (``mistral-vision run``) under ``--out``; a finished cell is read, not rerun.
One CPU-heavy job at a time: a cell takes ~9 min on 2 cores at 30 epochs of 1,000 examples.

    MISTRAL_VISION_DATA=../shared/data python benchmarks/bench_prune_lr.py [--lrs 2e-3,5e-4,8e-3]
        [--budget 1000] [--epochs 30] [--backbone mistral-tiny] [--out runs/sweep]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

SPEC = "configs/compare/prune.yaml"


def study_config() -> tuple[str, list[str]]:
    """The prune study's config and its overrides (the spec's set, then its row's), read from the spec so the
    sweep trains what the study trains; the sweep then puts epochs back in charge of the steps."""
    from mistral_vision.compare.runner import load_spec

    spec = load_spec(SPEC)
    (row,) = spec.configs.values()
    return row.path, [*spec.set, *row.set, "stages.0.steps=null", "stages.1.steps=null"]


def overrides(head: list[str], lr: str, budget: int, epochs: float, backbone: str, eval_every: int, out: str,
              name: str) -> list[str]:
    rates = [f"stages.{i}.trainable.{part}={lr}" for i in (0, 1) for part in ("projector", "vision", "llm")]
    return [*head, "data.select.method=random", f"data.select.keep={budget}", "train.seed=0", *rates,
            f"stages.1.epochs={epochs}", f"train.eval_every={eval_every}", "train.save_every=100000",
            f"model.backbone={backbone}", f"name={name}", f"runs_dir={out}"]


def cell(run: Path) -> dict | None:
    """A finished cell's curve and final validation metrics (None while unfinished)."""
    final = run / "eval" / "mnist-vqa-valid" / "metrics.json"
    if not final.exists():
        return None
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    checks = [(r["step"], r["valid_accuracy"]) for r in curve if "valid_accuracy" in r]
    steps = json.loads((run / "train_summary.json").read_text())["steps"]
    return {"checks": checks, "steps": steps, **json.loads(final.read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lrs", default="2e-3,5e-4,8e-3")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--epochs", type=float, default=30.0, help="instruct epochs (the shipped recipe: 3)")
    ap.add_argument("--backbone", default="mistral-tiny")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--out", default="runs/sweep")
    args = ap.parse_args()
    env = {**os.environ, "MISTRAL_VISION_DATA": data_dir()}
    exe = Path(sys.executable).with_name("mistral-vision")
    os.chdir(ROOT)                   # the spec's paths, and the runs, are relative to the project
    config, head = study_config()
    rows = []
    for lr in args.lrs.split(","):
        ep = f"{args.epochs:g}"
        name = f"sweep-r{args.budget}-lr{lr}-ep{ep}" + ("" if args.backbone == "mistral-tiny" else f"-{args.backbone}")
        run = ROOT / args.out / name
        if cell(run) is None:
            cmd = [str(exe), "run", config] + [a for o in overrides(head, lr, args.budget, args.epochs, args.backbone,
                                                                    args.eval_every, args.out, name)
                                               for a in ("--set", o)]
            print(" ".join(cmd[1:]), file=sys.stderr, flush=True)
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        got = cell(run)
        per = got["per_type"]
        above = [t for t, m in sorted(per.items()) if m["accuracy"] > m["majority"] + 0.02]
        best = max(got["checks"], key=lambda c: c[1], default=(None, None))
        rows.append([lr, got["steps"], " ".join(f"{s}:{a:.2f}" for s, a in got["checks"][::2]),
                     f"{best[1]:.3f} @ {best[0]}" if best[0] else "-", f"{got['accuracy']:.4f}",
                     f"{got['majority']:.4f}", ", ".join(above) or "none"])
    print(f"random {args.budget} of the prune study's pool, {args.backbone}, {args.epochs:g} instruct epochs")
    print(table(["lr", "steps", "in-training checks (step:acc, every 2nd)", "best check", "final valid",
                 "majority", "types > majority + 2 pp"], rows))


if __name__ == "__main__":
    main()
