"""``hf:<path or hub id>`` registry entries, shared by the backbone and vision-tower registries.

Not for: loading weights (each registry's builder does that).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def hf_checkpoint(entry: str, what: str, example: str) -> str | None:
    """The checkpoint of an ``hf:...`` registry entry, None for other entries; a bare ``hf:`` is one line."""
    if not entry.startswith("hf:"):
        return None
    ckpt = entry[3:]
    if not ckpt:
        raise UserError(f"{what} 'hf:' needs a checkpoint, e.g. {example}")
    return ckpt


def local_model_type(ckpt: str) -> str | None:
    """``model_type`` from a local checkpoint folder's config.json; None for hub ids (not fetched here)."""
    cfg = Path(ckpt) / "config.json"
    return json.loads(cfg.read_text()).get("model_type", "") if cfg.is_file() else None
