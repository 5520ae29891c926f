"""Validation of a whole config, handed off per route; every refusal is one line.

Not for: stage defaults and checks (``recipes.py``) or the registries behind the ids.
"""
from __future__ import annotations

from ..errors import UserError
from .recipes import _questions, complete
from .schema import (BACKENDS, DATA_FORMATS, DTYPES, LOSS_REDUCTIONS, MIXED_PRECISIONS, SELECT_CHOICES, SELECT_METHODS,
                     SELECT_NEEDS_RUN, TOKENIZER_KINDS, TRACKERS, VQA_GRIDS, VQA_TTA, RunConfig, SelectConfig)


def validate(cfg: RunConfig) -> RunConfig:
    from ..ascii.render import check_ramp
    from ..data.augment import tta_views
    from ..data.datasets import SPLITS
    from ..models.ascii_tokenizer import MIN_VOCAB, SPLITS as TOKENIZER_SPLITS
    from ..models.backbones import check_checkpoint, get_backbone
    from ..prompts import resolve_template

    from ..tasks import ROUTES

    if cfg.route not in ROUTES:
        raise UserError(f"unknown route {cfg.route!r}; known: {', '.join(ROUTES)}")
    _validate_data(cfg)
    get_backbone(cfg.model.backbone)
    if cfg.model.pretrain is not None:
        _validate_pretrain(cfg)
    check_checkpoint(cfg)
    if cfg.route == "ascii" and cfg.vision is not None:
        raise UserError("config: a `vision` section is for route: llava; this config's route is ascii")
    resolve_template(cfg.prompt.template)
    if cfg.prompt.chat_template is not None:       # before the stages, which inherit it
        from ..models.chat_templates import chat_template

        try:
            chat_template(cfg.prompt.chat_template)
        except UserError as e:
            raise UserError(f"config prompt.chat_template: {e}") from None
    cfg = complete(cfg)
    if cfg.route == "llava":
        _validate_llava(cfg)
    tta_views(cfg.eval.tta)
    if cfg.route == "ascii":
        check_ramp(cfg.ascii.ramp)
    if cfg.backend not in BACKENDS:
        raise UserError(f"unknown backend {cfg.backend!r}; known: {', '.join(BACKENDS)}")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise UserError(f"config name {cfg.name!r} must be a plain folder name")
    checks = [(cfg.ascii.width >= 1 and cfg.ascii.height >= 1, "ascii.width and ascii.height must be >= 1"),
              (cfg.tokenizer.kind in TOKENIZER_KINDS, f"tokenizer.kind must be one of {', '.join(TOKENIZER_KINDS)}"),
              (cfg.tokenizer.split in TOKENIZER_SPLITS, f"tokenizer.split must be {_or(TOKENIZER_SPLITS)}"),
              (cfg.tokenizer.chunk_size >= 1, "tokenizer.chunk_size must be >= 1"),
              (cfg.tokenizer.vocab_size >= MIN_VOCAB, f"tokenizer.vocab_size must be >= {MIN_VOCAB} "
                                                      "(special, base-alphabet and byte-fallback tokens come first)"),
              (cfg.tokenizer.train_images >= 1, "tokenizer.train_images must be >= 1"),
              (cfg.api.concurrency >= 1 and cfg.api.max_retries >= 0, "api.concurrency must be >= 1, api.max_retries >= 0"),
              (cfg.api.timeout_s > 0, "api.timeout_s must be > 0"),
              (cfg.train.batch_size >= 1, "train.batch_size must be >= 1"),
              (cfg.train.epochs > 0, "train.epochs must be > 0"),
              (cfg.train.lr > 0, "train.lr must be > 0"),
              (cfg.model.hidden_size % cfg.model.num_heads == 0, "model.hidden_size must be divisible by model.num_heads"),
              (cfg.model.num_heads % cfg.model.num_kv_heads == 0, "model.num_heads must be divisible by model.num_kv_heads"),
              (cfg.train.mixed_precision in MIXED_PRECISIONS, f"train.mixed_precision must be {_or(MIXED_PRECISIONS)}"),
              (cfg.train.loss_reduction in LOSS_REDUCTIONS, f"train.loss_reduction must be {_or(LOSS_REDUCTIONS)}"),
              (cfg.train.report_to in TRACKERS, f"train.report_to must be {_or(TRACKERS)}"),
              (cfg.model.dtype in DTYPES, f"model.dtype must be {_or(DTYPES)}"),
              (all(s in SPLITS for s in cfg.eval.splits), f"eval.splits must be among {', '.join(SPLITS)}"),
              (cfg.backend != "mistral-api" or cfg.eval.tta == "none",   # refused before a paid job starts
               "eval.tta is for local models; the mistral-api backend needs eval.tta: none"),
              (not (cfg.model.lora.enabled and get_backbone(cfg.model.backbone).is_tiny),
               "model.lora.enabled is for pretrained checkpoints; tiny presets train all their weights")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")
    return cfg


def _validate_data(cfg: RunConfig) -> None:
    from ..data.vqa import check_types, get_vqa, is_vqa

    from ..data.textdata import is_text_data

    d = cfg.data
    if d.format not in DATA_FORMATS:
        raise UserError(f"config data.format {d.format!r}: known: {', '.join(DATA_FORMATS)}")
    if d.select is not None:
        _validate_select(cfg)
    if is_text_data(d):
        _validate_text_data(cfg)
        return
    if d.format == "llava-json":
        if not d.path:
            raise UserError("config data.format llava-json needs data.path (the training file)")
        if cfg.backend != "local":
            raise UserError("config data.format llava-json trains locally; the mistral-api backend takes chat JSONL")
        return
    if not is_vqa(d.dataset):
        from ..data.datasets import DATASETS

        if d.dataset not in DATASETS:
            get_vqa(d.dataset)          # unknown: one line listing the classification and the VQA sets
        return
    check_types(d.question_types, get_vqa(d.dataset))
    checks = [(d.grid in VQA_GRIDS, f"data.grid must be {_or(VQA_GRIDS)}"), (0 < d.fill <= 1, "data.fill must be in (0, 1]"),
              (min(d.train_canvases, d.valid_canvases, d.test_canvases) >= 1, "data.*_canvases must be >= 1"),
              (d.questions_per_canvas >= 1 and d.turns >= 1, "data.questions_per_canvas and data.turns must be >= 1"),
              (cfg.backend == "local", "the VQA sets train locally; the mistral-api backend is for classification"),
              (cfg.train.train_file is None, "train.train_file is for classification datasets"),
              (not cfg.train.augment_flip, "train.augment_flip mirrors the canvas, which swaps its left and right "
                                           "cells and falsifies the answers; leave it off for the VQA sets"),
              (cfg.eval.tta in VQA_TTA, f"eval.tta for the VQA sets: {_or(VQA_TTA)} (mirrored views would swap "
                                        "the cells)")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")


def _validate_select(cfg: RunConfig) -> None:
    """``data.select``: a selection.json that exists, or a method's spec whose values make sense. Whether the
    selection fits the data (its source hash, a stratify field) is checked when the pool is read."""
    from pathlib import Path

    s = cfg.data.select
    if cfg.backend != "local" or cfg.train.train_file:
        raise UserError("config data.select trains locally on the run's own data (not the mistral-api backend "
                        "or train.train_file)")
    if isinstance(s, str):
        if not Path(s).is_file():
            raise UserError(f"config data.select: {s}: no such file (a selection.json written by "
                            "`mistral-vision select`, or a spec {method, keep, ...})")
        return
    check_select(s, "config data.select.")


def check_select(s: SelectConfig, where: str, given: set[str] | None = None) -> None:
    """One line for a selection spec that cannot run: an unknown method or choice, a bad keep, a method that
    needs a run without one, a parameter the method does not take (``given``: the ones set; default: those
    that differ from their defaults). ``where`` prefixes the names (``config data.select.`` or ``--``)."""
    import dataclasses

    flag = (lambda k: where + k.replace("_", "-")) if where == "--" else (lambda k: where + k)
    if s.method not in SELECT_METHODS:
        raise UserError(f"{flag('method')} {s.method!r}: unknown selection method; known: {', '.join(SELECT_METHODS)}")
    keep = s.keep
    if isinstance(keep, bool) or not (keep >= 1 and float(keep).is_integer() or 0 < keep < 1):
        raise UserError(f"{flag('keep')} {keep}: a count of examples (1 or more, whole) or a fraction of the "
                        "pool (between 0 and 1)")
    if s.method in SELECT_NEEDS_RUN and not s.from_run:
        raise UserError(f"selection method {s.method} needs {flag('from_run')} (a trained run whose "
                        f"{'losses' if s.method == 'loss' else 'embeddings'} it ranks by)")
    for key, choices in SELECT_CHOICES.items():
        if getattr(s, key) not in choices:
            raise UserError(f"{flag(key)} {getattr(s, key)!r}: known: {', '.join(choices)}")
    if s.bins < 1 or not 0 <= s.hard_cut < 1 or (s.clusters is not None and s.clusters < 1):
        raise UserError(f"{flag('bins')} must be >= 1, {flag('hard_cut')} in [0, 1), {flag('clusters')} >= 1")
    defaults = SelectConfig()
    if given is None:
        given = {f.name for f in dataclasses.fields(s) if getattr(s, f.name) != getattr(defaults, f.name)}
    stray = sorted(given - {"method", "keep", "seed"} - set(SELECT_METHODS[s.method]))
    if stray:
        takes = ", ".join(flag(k) for k in SELECT_METHODS[s.method]) or "no parameters besides keep and seed"
        raise UserError(f"{flag(stray[0])} is not a parameter of selection method {s.method} (it takes {takes})")


def _validate_pretrain(cfg: RunConfig) -> None:
    if not cfg.model.backbone.startswith("hf:"):
        raise UserError(f"config model.pretrain builds the LLM of model.backbone hf:RUNS/<name>/model; this config's "
                        f"backbone is {cfg.model.backbone}")
    # The file itself is read (and a missing one refused) only when the LLM has to be built: the
    # path is relative to where the run starts, like runs_dir and the hf: folder it builds.


def _validate_text_data(cfg: RunConfig) -> None:
    """Text-only data (``text-skills`` or ``data.format: text``): the LLM alone, trained locally."""
    from ..data import textskills
    from ..data.textdata import text_kind

    d = cfg.data
    if d.format == "text":
        if not d.path:
            raise UserError("config data.format text needs data.path (a .txt, .jsonl or .json training file)")
        text_kind(d.path, "config data.path")
        for key in ("valid_path", "test_path"):
            path = getattr(d, key)
            if path and text_kind(path, f"config data.{key}") != "llava-json":
                raise UserError(f"config data.{key} {path}: held-out questions are LLaVA JSON (.json) with answers")
    if d.text_skills is not None:
        bad = [s for s in d.text_skills if s not in textskills.SKILLS]
        if bad or not d.text_skills:
            raise UserError(f"config data.text_skills: unknown skill {(bad or [''])[0]!r}; known: "
                            + ", ".join(textskills.SKILLS))
    checks = [(min(d.text_samples, d.text_turns, d.text_valid, d.text_test, d.text_window) >= 1,
               "data.text_samples, text_turns, text_valid, text_test and text_window must be >= 1"),
              (cfg.route == "ascii", f"data {d.path or d.dataset} is text only: train it on route: ascii (the LLM "
                                     "alone, saved as a causal LM), or make it stages[i].data of a kind: text stage "
                                     "of this LLaVA run"),
              (cfg.backend == "local", "text data trains locally; the mistral-api backend is for classification"),
              (cfg.train.train_file is None, "train.train_file is for classification datasets")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")


def _validate_llava(cfg: RunConfig) -> None:
    from ..models.vision import check_vision

    check_vision(cfg.vision)
    checks = [(cfg.backend == "local", "route: llava trains locally; the mistral-api backend is for route: ascii"),
              (cfg.prompt.template != "classify", "prompt.template classify describes ASCII art; use ask or plain "
                                                  "on route: llava"),
              (cfg.tokenizer.kind == "default" or _questions(cfg),
               "tokenizer.kind ascii-bpe on route: llava is for question sets (a BPE of their text)"),
              (cfg.train.train_file is None, "train.train_file (a chat JSONL) is for route: ascii")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")



def _or(choices) -> str:
    """("a", "b", "c") -> "a, b or c", as the messages have always said it."""
    names = [str(c) for c in choices]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
