"""Training stages: which parts of the model train, at which learning rate, for how long.

A run is a list of stages, each "freeze everything but these parts, fit, checkpoint".
Parts are named by route: the ASCII route's model is all ``llm`` (or ``llm-lora``: the LoRA
adapters PEFT added, plus any trainable token rows); a LLaVA model adds ``vision`` (the
tower) and ``projector``. Each trainable part brings its own learning rate (one AdamW
parameter group per part, split again into decayed / not decayed).
Defaults: the ASCII route's single stage is today's training (``train.lr``, ``train.epochs``);
the LLaVA route defaults to LLaVA-1.5's recipe - "align" (projector only, lr 1e-3, 1 epoch),
then "instruct" (projector + the LLM at 2e-5, or LoRA at 2e-4 with the projector at 2e-5).
Not for: the optimisation loop itself (``loop.py``).
"""
from __future__ import annotations

import re

from ..config import StageConfig
from ..errors import UserError

PARTS = ("projector", "vision", "llm", "llm-lora")
_VISION = re.compile(r"(^|\.)vision_tower\.")
_PROJECTOR = re.compile(r"(^|\.)multi_modal_projector\.")
_LORA = re.compile(r"(^|\.)lora_|(^|\.)trainable_tokens_")


def default_stages(cfg) -> tuple[StageConfig, ...]:
    lora = cfg.model.lora.enabled
    if cfg.route == "ascii":
        return (StageConfig("train", {"llm-lora" if lora else "llm": cfg.train.lr}),)
    instruct = {"projector": 2e-5, "llm-lora": 2e-4} if lora else {"projector": 2e-5, "llm": 2e-5}
    return (StageConfig("align", {"projector": 1e-3}, epochs=1.0), StageConfig("instruct", instruct, epochs=1.0))


def resolve_stages(cfg) -> tuple[StageConfig, ...]:
    """The run's stages with every default filled in; unknown parts or bad values are one line."""
    stages = cfg.stages or default_stages(cfg)
    out, names = [], set()
    for i, st in enumerate(stages):
        where = f"stages[{i}] ({st.name})"
        trainable = dict(st.trainable) or {("llm-lora" if cfg.model.lora.enabled else "llm"): cfg.train.lr}
        bad = sorted(set(trainable) - set(PARTS))
        if bad:
            raise UserError(f"config {where}: unknown part {bad[0]!r}; known parts: {', '.join(PARTS)}")
        if cfg.route == "ascii" and set(trainable) - {"llm", "llm-lora"}:
            raise UserError(f"config {where}: the ascii route has no vision tower or projector; parts: llm, llm-lora")
        if "llm" in trainable and "llm-lora" in trainable:
            raise UserError(f"config {where}: train the LLM fully (llm) or through LoRA (llm-lora), not both")
        if "llm-lora" in trainable and not cfg.model.lora.enabled:
            raise UserError(f"config {where}: part llm-lora needs model.lora.enabled: true")
        if "llm" in trainable and cfg.model.lora.enabled:
            raise UserError(f"config {where}: with model.lora.enabled the LLM trains as llm-lora, not llm")
        if any(lr <= 0 for lr in trainable.values()):
            raise UserError(f"config {where}: learning rates must be > 0")
        if st.name in names or not st.name or "/" in st.name:
            raise UserError(f"config {where}: stage names must be unique plain names")
        names.add(st.name)
        epochs = st.epochs if st.epochs is not None else cfg.train.epochs
        batch = st.batch_size or cfg.train.batch_size
        if epochs <= 0 or batch < 1:
            raise UserError(f"config {where}: epochs must be > 0 and batch_size >= 1")
        out.append(StageConfig(st.name, trainable, epochs, batch,
                               st.warmup_steps if st.warmup_steps is not None else cfg.train.warmup_steps,
                               st.init_from))
    return tuple(out)


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
