"""Argument groups that several subcommands share, so each is spelled (and documented) once."""
from __future__ import annotations

from ..errors import UserError


def add_data_args(p, dataset_required=False):
    p.add_argument("--dataset", required=dataset_required, help="mnist | fashion-mnist")
    p.add_argument("--data-dir", help="folder with the IDX files (default: $MISTRAL_VISION_DATA, then the cache)")
    p.add_argument("--offline", action="store_true", help="never download")


def add_backend_args(p):
    p.add_argument("--backend", choices=("local", "mistral-api"), help="default: the run's backend")
    p.add_argument("--model", help="mistral-api: the fine-tuned model (default: the job recorded in RUN_DIR)")
    p.add_argument("--server-url", help="mistral-api: another API server (default: $MISTRAL_SERVER_URL)")


def add_tta_arg(p):
    p.add_argument("--tta", metavar="VIEWS", help="test-time augmentation: none, shift4, ... (default: the run's "
                                                  "eval.tta); another choice is written beside, tagged -tta-VIEWS")


def add_length_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="training steps")
    g.add_argument("--epochs", type=float, help="epochs over the training file")


def add_ascii_args(p, size: int):
    """The ASCII rendering flags of `prepare` and `tokenizer`."""
    p.add_argument("--ascii-size", type=int, default=size, help="characters per line and lines (square)")
    p.add_argument("--width", type=int, help="characters per line (overrides --ascii-size)")
    p.add_argument("--height", type=int, help="lines (overrides --ascii-size)")
    p.add_argument("--ramp", help="background space + ink characters, faint to dark")
    p.add_argument("--crop", type=int, default=0, help="pixels cut from each border first")


def add_split_args(p):
    p.add_argument("--valid-size", type=int, default=5000, help="images carved from train for validation")
    p.add_argument("--split-seed", type=int, default=0)


def data_section(flags: dict, sets: list[str], command: str):
    """The data section that ``flags`` and ``--set`` items describe, checked as ``run`` checks it: keys with or
    without the ``data.`` prefix that ``run --set`` needs (``train_canvases=10`` or ``data.train_canvases=10``)."""
    from ..config import load_config

    items = [f"data.{k}={v}" for k, v in flags.items()]
    for item in sets:
        key = item.split("=", 1)[0].strip()
        if "." in key and not key.startswith("data."):
            raise UserError(f"{command} --set {item!r}: {command} takes data settings only (data.KEY=VALUE)")
        items.append(item if key.startswith("data.") else f"data.{item}")
    return load_config(None, items).data
