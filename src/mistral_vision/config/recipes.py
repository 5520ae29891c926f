"""Training stages with their defaults: LLaVA-1.5's two-stage recipe, per-stage chat templates.

``resolve_stages`` writes every default out (the ASCII route's one stage, LLaVA's align +
instruct, each stage's lr, epochs, batch, warmup and chat template) and refuses bad stages in one
line; ``inference_template`` is the chat template a trained run is prompted with.
Not for: freezing or fitting (``train/``).
"""
from __future__ import annotations

import dataclasses

from ..errors import UserError
from .schema import PARTS, STAGE_KINDS, TEXT_PARTS, RunConfig, StageConfig, VisionConfig


def default_stages(cfg) -> tuple[StageConfig, ...]:
    """The ASCII route's single stage is plain training (``train.lr``, ``train.epochs``); the LLaVA
    route defaults to LLaVA-1.5's recipe: "align" (projector only, lr 1e-3, 1 epoch), then
    "instruct" (projector + the LLM at 2e-5, or LoRA at 2e-4 with the projector at 2e-5). Text-only data
    trains one ``text`` stage."""
    lora = cfg.model.lora.enabled
    if cfg.route == "ascii":
        return (StageConfig("train", {"llm-lora" if lora else "llm": cfg.train.lr},
                            kind="text" if _text_only(cfg) else "vision"),)
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
        _check_kind(cfg, st, trainable, where)
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
        if st.steps is not None and st.steps < 1:
            raise UserError(f"config {where}: steps must be a whole number >= 1 (or null: epochs decide)")
        if st.kind != "text" and st.data is not None and not _questions(cfg):
            raise UserError(f"config {where}: stage data is for question sets (mnist-vqa, fashion-vqa, llava-json)")
        template = st.template if st.template is not None else cfg.prompt.chat_template
        _check_stage_template(cfg, st, template, where)
        out.append(dataclasses.replace(st, trainable=trainable, epochs=epochs, batch_size=batch, template=template,
                                       warmup_steps=st.warmup_steps if st.warmup_steps is not None
                                       else cfg.train.warmup_steps))
    return tuple(out)


def _check_kind(cfg, st: StageConfig, trainable: dict, where: str) -> None:
    """A known kind; a text stage trains the LLM alone on text the run or the stage names; text-only data
    has no images for a vision stage."""
    from ..data.textdata import check_stage_text

    if st.kind not in STAGE_KINDS:
        raise UserError(f"config {where}: unknown stage kind {st.kind!r}; known: {', '.join(STAGE_KINDS)}")
    if st.kind == "vision":
        if _text_only(cfg):
            raise UserError(f"config {where}: the run's data is text only; give this stage kind: text")
        return
    other = sorted(set(trainable) - set(TEXT_PARTS))
    if other:
        raise UserError(f"config {where}: a text stage trains the LLM only ({' or '.join(TEXT_PARTS)}), "
                        f"not {other[0]!r}")
    check_stage_text(cfg.data, st.data, where)


def _text_only(cfg) -> bool:
    from ..data.textdata import is_text_data

    return is_text_data(cfg.data)


def _check_stage_template(cfg, st: StageConfig, template: str | None, where: str) -> None:
    """A known chat template; ``plain`` only where the stage's data asks nothing (captions, or a classification
    prompt that is the image alone). LLaVA's plain mode replaced every question with ``<image>``: the study
    this project grows out of lost its fine-tuning to it, so plain on question data is refused, not run."""
    if template is None:
        return
    from ..models.chat_templates import CAPTION_TEMPLATES, CHAT_TEMPLATES, chat_template

    try:
        chat_template(template)
    except UserError as e:
        raise UserError(f"config {where}: {e}") from None
    if template not in CAPTION_TEMPLATES:
        return
    if st.kind == "text":
        asks, what = True, "its text holds conversations"
    elif _questions(cfg):
        asks = st.data in (None, "all", "questions")     # a LLaVA JSON path is checked when it is read (tasks/)
        what = f"its data ({st.data or 'all'}) holds questions"
    else:
        from ..prompts import resolve_template

        asks = bool(resolve_template(cfg.prompt.template).replace("{art}", "").strip())
        what = f"its prompt ({cfg.prompt.template!r}) asks a question"
    if asks:
        roles = ", ".join(t for t in CHAT_TEMPLATES if t not in CAPTION_TEMPLATES)
        raise UserError(f"config {where}: chat template {template} is for captions only (LLaVA-1.5's align stage), and "
                        f"{what}; train this stage on data: captions, or give it a template with roles ({roles})")


def inference_template(cfg) -> str | None:
    """The chat template a trained run is prompted with (predict, chat, evaluate, export): its last stage's;
    None: the tokenizer's own. A run's saved model carries it."""
    return resolve_stages(cfg)[-1].template


def complete(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its defaults written out: the LLaVA route's vision section and every stage resolved
    (what a run's config.json records, so that a resume compares like with like)."""
    vision = (cfg.vision or VisionConfig()) if cfg.route == "llava" else cfg.vision
    cfg = dataclasses.replace(cfg, vision=vision)
    return dataclasses.replace(cfg, stages=resolve_stages(cfg))


def _questions(cfg) -> bool:
    """True if the run trains on a question set (VQA or LLaVA JSON) rather than a classification dataset."""
    from ..data.run_data import is_question_set

    return is_question_set(cfg.data)

