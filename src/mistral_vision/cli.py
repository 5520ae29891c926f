"""The ``mistral-vision`` command: thin subcommands over library calls.

User errors print one line and exit with code 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import sys

from .errors import UserError


def _add_data_args(p, dataset_required=False):
    p.add_argument("--dataset", required=dataset_required, help="mnist | fashion-mnist")
    p.add_argument("--data-dir", help="folder with the IDX files (default: $MISTRAL_VISION_DATA, then the cache)")
    p.add_argument("--offline", action="store_true", help="never download")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mistral-vision", description="Teach text LLMs to see, and measure it.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="render a dataset as ASCII chat JSONL (train/valid/test)")
    _add_data_args(p, dataset_required=True)
    p.add_argument("--ascii-size", type=int, default=14, help="characters per line and lines (square)")
    p.add_argument("--width", type=int, help="characters per line (overrides --ascii-size)")
    p.add_argument("--height", type=int, help="lines (overrides --ascii-size)")
    p.add_argument("--ramp", help="background space + ink characters, faint to dark")
    p.add_argument("--crop", type=int, default=0, help="pixels cut from each border first")
    p.add_argument("--invert", action="store_true")
    p.add_argument("--template", default="classify", help="prompt template id or literal with {art}")
    p.add_argument("--valid-size", type=int, default=5000, help="images carved from train for validation")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("validate", help="check a chat JSONL against Mistral's fine-tuning format")
    p.add_argument("file")
    p = sub.add_parser("reformat", help="repair a chat JSONL; report every sample not kept")
    p.add_argument("file")
    p.add_argument("--out", help="default: FILE with .reformatted.jsonl")

    p = sub.add_parser("train", help="train a config locally (CPU, GPU, or several via accelerate launch)")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("predict", help="label-scored predictions, appended to JSONL (resumable)")
    p.add_argument("run_dir")
    _add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"))
    p.add_argument("--images", help="an image file or a folder (one subfolder per class)")
    p.add_argument("--limit", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out")

    p = sub.add_parser("evaluate", help="metrics.json + figures for one split")
    p.add_argument("run_dir")
    _add_data_args(p, dataset_required=True)
    p.add_argument("--split", required=True, choices=("train", "valid", "test"))
    p.add_argument("--limit", type=int)

    p = sub.add_parser("report", help="(re)write RUN_DIR/report.md")
    p.add_argument("run_dir")

    p = sub.add_parser("run", help="prepare -> train -> evaluate -> report")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return ap


def _quiet_libraries() -> None:
    """Our own progress bars and log lines say what is happening; silence the libraries' ones."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _cmd(args) -> int:
    c = args.command
    if c in ("train", "predict", "evaluate", "run"):
        _quiet_libraries()
    if c == "prepare":
        from .pipeline import prepare

        w, h = args.width or args.ascii_size, args.height or args.ascii_size
        counts = prepare(args.dataset, args.out, args.data_dir, args.offline, w, h, args.ramp, args.invert,
                         args.crop, args.template, valid_size=args.valid_size, split_seed=args.split_seed)
        for split, n in counts.items():
            print(f"{args.out}/{split}.jsonl: {n} samples")
    elif c == "validate":
        from .chatfile import check_file

        res = check_file(args.file)
        for lineno, msg in res.problems:
            print(f"{args.file}:{lineno}: {msg}")
        if not res.ok:
            print(f"{args.file}: {len(res.problems)} problem(s) in {res.n_lines} lines", file=sys.stderr)
            return 2
        print(f"{args.file}: OK, {res.n_lines} samples")
    elif c == "reformat":
        from .chatfile import reformat_file

        out = args.out or (args.file[:-6] if args.file.endswith(".jsonl") else args.file) + ".reformatted.jsonl"
        rep = reformat_file(args.file, out)
        for lineno, why in rep.dropped:
            print(f"{args.file}:{lineno}: dropped: {why}")
        print(f"{out}: kept {rep.kept} ({rep.repaired} repaired), dropped {len(rep.dropped)}")
    elif c == "train":
        from .config import load_config
        from .train.loop import train

        s = train(load_config(args.config, args.set), resume=args.resume)
        print(f"trained {s['steps']} steps in {s['wall_s'] / 60:.1f} min")
    elif c == "predict":
        from .infer.predict import predict

        r = predict(args.run_dir, args.dataset, args.split, args.images, args.data_dir, args.offline, args.limit,
                    args.out, args.batch_size)
        rate = f", {r.images_per_s:.0f} images/s" if r.new else ""
        print(f"{r.path}: {r.n} predictions ({r.new} new{rate})")
        if r.n <= 10:   # a handful of images: show the answers too
            from .io import read_jsonl_tolerant

            for rec in read_jsonl_tolerant(r.path):
                print(f"  {rec.get('source', rec['index'])}: {rec['pred_name']} (p={rec['prob']:.3f})")
    elif c == "evaluate":
        from .eval.evaluate import evaluate

        m = evaluate(args.run_dir, args.dataset, args.split, args.data_dir, args.offline, args.limit)
        print(f"accuracy {m['accuracy']:.4f} on {m['n']} images; see {args.run_dir}/eval/{args.dataset}-{args.split}/")
    elif c == "report":
        from .eval.report import write_report

        print(write_report(args.run_dir))
    elif c == "run":
        from .pipeline import run

        print(f"report: {run(args.config, args.set)}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _cmd(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"mistral-vision: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mistral-vision: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
