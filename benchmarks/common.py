"""Shared helpers for the benchmarks: real data location and table printing."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> str:
    env = os.environ.get("MISTRAL_VISION_DATA")
    if env:
        return env
    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return str(shared)
    raise SystemExit("set MISTRAL_VISION_DATA to the folder holding mnist/ and fashion-mnist/")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line, sep] + ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells])
