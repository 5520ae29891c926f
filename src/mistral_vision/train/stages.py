"""Training stages on a model: which parameters each stage trains, at which learning rate.

A run is a list of stages (resolved with their defaults in ``config.py``: ``resolve_stages``),
each "freeze everything but these parts, fit, checkpoint". Parts are named by route: the ASCII route's model is all ``llm`` (or ``llm-lora``: the LoRA
adapters PEFT added, plus any trainable token rows); a LLaVA model adds ``vision`` (the
tower) and ``projector``. Each trainable part brings its own learning rate (one AdamW
parameter group per part, split again into decayed / not decayed).
Not for: the stage list and its defaults (``config.py``) or the optimisation loop (``loop.py``).
"""
from __future__ import annotations

import re

from ..config import StageConfig
from ..errors import UserError

_VISION = re.compile(r"(^|\.)vision_tower\.")
_PROJECTOR = re.compile(r"(^|\.)multi_modal_projector\.")
_LORA = re.compile(r"(^|\.)lora_|(^|\.)trainable_tokens_")


def part_of(name: str) -> str:
    """The part a parameter (by its ``named_parameters()`` name) belongs to."""
    if _VISION.search(name):
        return "vision"
    if _PROJECTOR.search(name):
        return "projector"
    return "llm-lora" if _LORA.search(name) else "llm"


def freeze_for_stage(model, stage: StageConfig, weight_decay: float, log=print) -> list[dict]:
    """Set ``requires_grad`` for ``stage``'s parts only; -> AdamW parameter groups with each part's lr.

    PEFT keeps a frozen ``original_module`` beside the trained copy of modules it saves
    (the projector): that frozen copy never trains.
    """
    groups: dict[tuple[str, bool], list] = {}
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        part = part_of(name)
        train = part in stage.trainable and ".original_module." not in name
        p.requires_grad_(train)
        if train:
            decay = not (p.ndim < 2 or "norm" in name)
            groups.setdefault((part, decay), []).append(p)
            counts[part] = counts.get(part, 0) + p.numel()
    missing = sorted(set(stage.trainable) - set(counts))
    if missing:
        raise UserError(f"stage {stage.name}: the model has no {missing[0]!r} parameters to train")
    log(f"      stage {stage.name}: training " + ", ".join(f"{part} ({n:,} params, lr {stage.trainable[part]:g})"
                                                         for part, n in counts.items()))
    return [{"params": ps, "lr": stage.trainable[part], "weight_decay": weight_decay if decay else 0.0,
             "part": part} for (part, decay), ps in groups.items()]
