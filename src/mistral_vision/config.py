"""Typed run configuration: dataclasses, YAML loading, ``--set`` overrides, validation.

One :class:`RunConfig` describes a whole experiment (route, data, ASCII format or vision
tower, prompt, model, training stages, evaluation). ``route`` (``ascii`` | ``llava``, default
``ascii``) decides which sections apply; validation hands off per route. Unknown keys are errors naming the key and the known ones. Configs
are never mutated after loading: overrides produce a new object. The resolved config is
dumped into every run directory as ``config.yaml`` and ``config.json``.
Not for: the registries themselves (datasets, backbones, templates live beside their code).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"            # registry id: mnist | fashion-mnist (classification), mnist-vqa |
                                      # fashion-vqa (synthetic questions about 2x2 canvases, data/vqa.py)
    format: str = "idx"               # idx: a registered dataset; llava-json: LLaVA conversation files (path ...)
    path: str | None = None           # llava-json: the training file
    valid_path: str | None = None     # llava-json: the validation questions (with answers)
    test_path: str | None = None      # llava-json: the test questions (with answers)
    image_folder: str | None = None   # llava-json: image paths are relative to it
    valid_image_folder: str | None = None  # llava-json: the valid file's, if not image_folder (ScienceQA: images/val)
    test_image_folder: str | None = None   # llava-json: the test file's, if not image_folder
    data_dir: str | None = None       # else $MISTRAL_VISION_DATA, else the per-user cache
    offline: bool = False             # never download
    valid_size: int = 5000            # images carved from train for validation (fixed)
    split_seed: int = 0               # seed of that carve-out; changing it changes the split
    train_limit: int | None = None    # use only the first N training images (demos, smoke tests)
    valid_limit: int | None = None    # evaluate on the first N validation images
    test_limit: int | None = None     # evaluate on the first N test images
    # Synthetic VQA sets (mnist-vqa, fashion-vqa): sizes, in canvases; drawn from data.vqa_seed.
    grid: int = 2                     # cells per side (2: 2x2 cells of 28 px, a 56x56 canvas)
    fill: float = 0.75                # chance that a cell holds an image (at least one always does)
    train_canvases: int = 20000       # each gives a caption and a multi-turn conversation
    valid_canvases: int = 1000
    test_canvases: int = 2000
    questions_per_canvas: int = 3     # valid / test: single-turn questions per canvas, types in turn
    turns: int = 4                    # train: questions (of distinct types) per conversation
    question_types: tuple[str, ...] | None = None   # None: every type the dataset has (data/vqa.py)
    vqa_seed: int = 0                 # the questions and canvases of every split


@dataclass(frozen=True)
class AsciiConfig:
    width: int = 14                   # characters per line
    height: int = 14                  # lines per image
    ramp: str = " .:-=+*#%@"          # background space + ink from faint to dark, pure ASCII
    invert: bool = False              # for dark-on-light images
    crop: int = 0                     # pixels cut from each border before resizing (MNIST digits
                                      # sit in the central 20x20, so crop=4 loses ~nothing)


@dataclass(frozen=True)
class PromptConfig:
    template: str = "plain"           # registry id (plain | classify) or a literal with {art}
    system: str | None = None         # optional system message
    chat_template: str | None = None  # models/chat_templates.py id: tiny, mistral, llama-2, vicuna-v1, plain;
                                      # None: the tokenizer's own (checkpoints without one: the backbone's)


@dataclass(frozen=True)
class TokenizerConfig:
    kind: str = "default"             # default: char-level for tiny presets, the checkpoint's own otherwise;
                                      # ascii-bpe: BPE learned from this run's training prompts (tiny presets
                                      # use it alone; a checkpoint's tokenizer is extended with its pieces);
                                      # on route llava (question sets) learned from the conversations' text
    path: str | None = None           # ascii-bpe: a folder from `mistral-vision tokenizer train` instead
    vocab_size: int = 1024            # ascii-bpe: largest size, incl. 357 special/base/byte-fallback tokens
    split: str = "none"               # ascii-bpe: none (tokens may span line breaks) | rows (never do)
                                      # | chunks (fixed chunk_size-character pieces of each row)
                                      # | words (pieces inside words, digits alone: question text)
    chunk_size: int = 2               # ascii-bpe with split chunks: characters per chunk
    train_images: int = 20000         # ascii-bpe: training images whose prompts teach the merges
    label_tokens: bool = False        # each class name becomes one added token: the answer is one
                                      # token, so label scoring needs one forward pass per image


@dataclass(frozen=True)
class LoraConfig:
    enabled: bool = False             # on for pretrained checkpoints, off for tiny from-scratch
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                       "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mistral-tiny"    # registry id, or hf:<local path or hub id>
    # Shape of the tiny random-init presets (ignored for checkpoints).
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2             # grouped-query attention
    intermediate_size: int = 384
    sliding_window: int | None = 64   # mistral-tiny only: local attention span in tokens
    max_position_embeddings: int = 2048
    dropout: float = 0.0              # attention dropout
    dtype: str = "float32"            # float32 | bfloat16 | float16 (checkpoints on GPU)
    attn_implementation: str = "sdpa"
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass(frozen=True)
class VisionConfig:
    """The LLaVA route's vision tower and projector (``route: llava`` only)."""
    tower: str = "clip-tiny"          # registry id (models/vision.py: clip-tiny, siglip-tiny, clip-vit-l-14-336,
                                      # siglip-so400m) or hf:<path or hub id>
    image_size: int = 28              # tiny towers' input side in px (VQA canvases of 2x2 digits: 56)
    patch_size: int = 7               # tiny towers: 28x28 / patch 7 = 16 patches, patch 4 = 49
    hidden_size: int = 128            # tiny towers' shape (ignored for pretrained towers)
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    feature_layer: int = -2           # hidden layer whose patch features are projected (LLaVA-1.5: -2)
    select_strategy: str | None = None  # default: drop CLS (CLIP); full: keep every token (SigLIP has no CLS);
                                        # None: the tower's own (default for CLIP, full for SigLIP)
    projector: str = "mlp2x-gelu"     # LLaVA-1.5's two-layer GELU MLP (transformers' LlavaMultiModalProjector)


@dataclass(frozen=True)
class StageConfig:
    """One training stage: freeze everything but ``trainable`` parts, fit, checkpoint."""
    name: str = "train"
    trainable: dict[str, float] = field(default_factory=dict)  # part -> learning rate; parts: projector,
                                                               # vision, llm, llm-lora (empty: from train.lr)
    epochs: float | None = None       # None: train.epochs
    batch_size: int | None = None     # None: train.batch_size
    warmup_steps: int | None = None   # None: train.warmup_steps
    init_from: str | None = None      # start from a finished stage of another run: RUN_DIR/stages/<i>-<name>
    data: str | None = None           # question sets: all (None) | captions | questions | a LLaVA JSON path
    image_folder: str | None = None   # with a LLaVA JSON path: its image folder (None: data.image_folder)


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 64              # per device
    grad_accum: int = 1
    lr: float = 2e-3
    min_lr_ratio: float = 0.0         # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 200
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    loss_reduction: str = "sequence"  # sequence: mean over samples of the answer's summed token NLL
                                      # (= -log p(label), what label scoring ranks); token: mean over tokens
    seed: int = 0
    augment_shift: int = 0            # random whole-pixel translation of training images, per epoch
    augment_rotate: float = 0.0       # random rotation, in degrees
    augment_scale: float = 0.0        # random zoom 1 +- this
    augment_flip: bool = False        # random left-right mirror (garments yes, digits no)
    save_every: int = 500             # optimizer steps between checkpoints
    keep_checkpoints: int = 2
    log_every: int = 50
    eval_every: int = 500             # steps between validation checks during training (0: off)
    eval_samples: int = 1000          # validation images scored at each check (curve, not the result)
    threads: int | None = None        # torch intra-op threads on CPU (None: all cores)
    mixed_precision: str = "no"       # accelerate: no | bf16 | fp16 (GPU)
    gradient_checkpointing: bool = False  # trade compute for memory (7B checkpoints, long ASCII)
    train_file: str | None = None     # train on a chat JSONL instead of the dataset
    report_to: str = "none"           # none | tensorboard (RUN/tb) | wandb: training curves through accelerate's
                                      # trackers, beside metrics.jsonl (pip install mistral-vision[tensorboard])


@dataclass(frozen=True)
class EvalConfig:
    splits: tuple[str, ...] = ("valid", "test")   # test is skipped with a note if t10k is absent
    batch_size: int = 256
    misclassified: int = 24           # examples in the report gallery
    score_eos: bool = False           # also score the labels' closing EOS when it decides nothing
    tta: str = "none"                 # test-time augmentation views (infer/tta.py): none, shift4, ...;
                                      # each view is one more scoring pass. The training monitor uses none.


@dataclass(frozen=True)
class ApiConfig:
    """Mistral's hosted fine-tuning and chat API (backend: mistral-api)."""
    model: str = "open-mistral-7b"    # base model to fine-tune (api/pricing.py lists the known ones)
    fine_tuned_model: str | None = None  # skip fine-tuning and predict with this ft:... model
    training_steps: int | None = None  # job length in steps, or
    epochs: float | None = 1.0         # in epochs over the training file (used when steps is unset)
    lr: float | None = None            # None: Mistral's default
    suffix: str | None = None          # appears in the fine-tuned model's name
    server_url: str | None = None      # else $MISTRAL_SERVER_URL, else Mistral's API
    concurrency: int = 8               # chat requests in flight
    max_retries: int = 8               # per request, on 429 / 5xx / timeouts
    backoff_s: float = 0.5             # first backoff; doubles each retry, full jitter
    backoff_cap_s: float = 30.0        # longest backoff (a server's Retry-After may ask for more)
    timeout_s: float = 60.0            # per HTTP request
    max_tokens: int = 16               # answer length; label names are a few tokens
    poll_s: float = 15.0               # seconds between job status checks


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"                 # names runs/<name>/
    runs_dir: str = "runs"
    route: str = "ascii"              # ascii: images as ASCII art in the prompt; llava: a vision tower's
                                      # features through a projector into the LLM (the `vision` section)
    backend: str = "local"            # local: train here; mistral-api: fine-tune and predict through
                                      # Mistral's API (the `api` section)
    data: DataConfig = field(default_factory=DataConfig)
    ascii: AsciiConfig = field(default_factory=AsciiConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)   # `tokenizer: ascii-bpe` = kind
    model: ModelConfig = field(default_factory=ModelConfig)
    vision: VisionConfig | None = None  # route: llava only (absent: the defaults above)
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: tuple[StageConfig, ...] = ()  # absent: one stage (ascii), LLaVA-1.5's two (llava); train/stages.py
    eval: EvalConfig = field(default_factory=EvalConfig)
    api: ApiConfig = field(default_factory=ApiConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


BACKENDS = ("local", "mistral-api")
TOKENIZER_KINDS = ("default", "ascii-bpe")
SHORTHANDS = {"tokenizer": "kind"}     # sections that may be given as one string: the named field


def _convert(tp, value, where: str):
    """Convert a YAML value to the annotated type, or raise UserError naming ``where``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and where in SHORTHANDS:
            value = {SHORTHANDS[where]: value}          # `tokenizer: ascii-bpe`
        if not isinstance(value, dict):
            raise UserError(f"config {where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"config {where}: bad value {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config {where}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_convert(kt, k, f"{where}"): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config {where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise UserError(f"config {where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config {where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config {where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):             # YAML 1.1 reads 2e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config {where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"config {where}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp} at {where}")


def from_dict(cls, data: dict, where: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise UserError(f"unknown config key {key!r}; known keys{' in ' + where if where else ''}: {', '.join(sorted(names))}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    def clean(v):
        if isinstance(v, tuple):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v
    return clean(dataclasses.asdict(cfg))


def _parse_override(item: str) -> tuple[list[str], object]:
    import yaml

    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value, e.g. train.epochs=2")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    data = json.loads(json.dumps(data))
    for item in overrides or []:
        path, value = _parse_override(item)
        node = data
        for k in path[:-1]:
            if isinstance(node, list):                                # stages.1.lr=...: a list index
                node = _list_item(node, k, item)
                continue
            if isinstance(node.get(k), str) and k in SHORTHANDS:      # `tokenizer: ascii-bpe` + tokenizer.x=...
                node[k] = {SHORTHANDS[k]: node[k]}
            node = node.setdefault(k, {})
            if not isinstance(node, (dict, list)):
                raise UserError(f"--set {item!r}: {k!r} is not a section")
        if isinstance(node, list):
            idx = _list_index(node, path[-1], item)
            node[idx] = value
        else:
            node[path[-1]] = value
    return data


PARTS = ("projector", "vision", "llm", "llm-lora")


def default_stages(cfg) -> tuple[StageConfig, ...]:
    """The ASCII route's single stage is plain training (``train.lr``, ``train.epochs``); the LLaVA
    route defaults to LLaVA-1.5's recipe: "align" (projector only, lr 1e-3, 1 epoch), then
    "instruct" (projector + the LLM at 2e-5, or LoRA at 2e-4 with the projector at 2e-5)."""
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
        if st.data is not None and not _questions(cfg):
            raise UserError(f"config {where}: stage data is for question sets (mnist-vqa, fashion-vqa, llava-json)")
        out.append(StageConfig(st.name, trainable, epochs, batch,
                               st.warmup_steps if st.warmup_steps is not None else cfg.train.warmup_steps,
                               st.init_from, st.data, st.image_folder))
    return tuple(out)


def _questions(cfg) -> bool:
    """True if the run trains on a question set (VQA or LLaVA JSON) rather than a classification dataset."""
    from .data.questions import is_question_set

    return is_question_set(cfg.data)


def _validate_data(cfg: RunConfig) -> None:
    from .data.vqa import check_types, get_vqa, is_vqa

    d = cfg.data
    if d.format not in ("idx", "llava-json"):
        raise UserError(f"config data.format {d.format!r}: known: idx, llava-json")
    if d.format == "llava-json":
        if not d.path:
            raise UserError("config data.format llava-json needs data.path (the training file)")
        if cfg.backend != "local":
            raise UserError("config data.format llava-json trains locally; the mistral-api backend takes chat JSONL")
        return
    if not is_vqa(d.dataset):
        from .data.datasets import DATASETS

        if d.dataset not in DATASETS:
            get_vqa(d.dataset)          # unknown: one line listing the classification and the VQA sets
        return
    check_types(d.question_types, get_vqa(d.dataset))
    checks = [(d.grid in (1, 2, 3), "data.grid must be 1, 2 or 3"), (0 < d.fill <= 1, "data.fill must be in (0, 1]"),
              (min(d.train_canvases, d.valid_canvases, d.test_canvases) >= 1, "data.*_canvases must be >= 1"),
              (d.questions_per_canvas >= 1 and d.turns >= 1, "data.questions_per_canvas and data.turns must be >= 1"),
              (cfg.backend == "local", "the VQA sets train locally; the mistral-api backend is for classification"),
              (cfg.train.train_file is None, "train.train_file is for classification datasets"),
              (not cfg.train.augment_flip, "train.augment_flip mirrors the canvas, which swaps its left and right "
                                           "cells and falsifies the answers; leave it off for the VQA sets"),
              (cfg.eval.tta in ("none", "shift4", "shift8"), "eval.tta for the VQA sets: none, shift4 or shift8 "
                                                             "(mirrored views would swap the cells)")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")


def _list_index(node: list, key: str, item: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise UserError(f"--set {item!r}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _list_item(node: list, key: str, item: str) -> dict:
    got = node[_list_index(node, key, item)]
    if not isinstance(got, dict):
        raise UserError(f"--set {item!r}: item {key} is not a section")
    return got


def validate(cfg: RunConfig) -> RunConfig:
    from .ascii.render import check_ramp
    from .data.augment import tta_views
    from .models.ascii_tokenizer import MIN_VOCAB
    from .models.backbones import get_backbone
    from .prompts import resolve_template

    from .tasks import ROUTES

    if cfg.route not in ROUTES:
        raise UserError(f"unknown route {cfg.route!r}; known: {', '.join(ROUTES)}")
    _validate_data(cfg)
    get_backbone(cfg.model.backbone)
    if cfg.route == "ascii" and cfg.vision is not None:
        raise UserError("config: a `vision` section is for route: llava; this config's route is ascii")
    cfg = complete(cfg)
    if cfg.route == "llava":
        _validate_llava(cfg)
    resolve_template(cfg.prompt.template)
    if cfg.prompt.chat_template is not None:
        from .models.chat_templates import chat_template

        chat_template(cfg.prompt.chat_template)
    tta_views(cfg.eval.tta)
    if cfg.route == "ascii":
        check_ramp(cfg.ascii.ramp)
    if cfg.backend not in BACKENDS:
        raise UserError(f"unknown backend {cfg.backend!r}; known: {', '.join(BACKENDS)}")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise UserError(f"config name {cfg.name!r} must be a plain folder name")
    checks = [(cfg.ascii.width >= 1 and cfg.ascii.height >= 1, "ascii.width and ascii.height must be >= 1"),
              (cfg.tokenizer.kind in TOKENIZER_KINDS, f"tokenizer.kind must be one of {', '.join(TOKENIZER_KINDS)}"),
              (cfg.tokenizer.split in ("none", "rows", "chunks", "words"),
               "tokenizer.split must be none, rows, chunks or words"),
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
              (cfg.train.mixed_precision in ("no", "bf16", "fp16"), "train.mixed_precision must be no, bf16 or fp16"),
              (cfg.train.report_to in ("none", "tensorboard", "wandb"), "train.report_to must be none, tensorboard or wandb"),
              (cfg.train.loss_reduction in ("sequence", "token"), "train.loss_reduction must be sequence or token"),
              (cfg.model.dtype in ("float32", "bfloat16", "float16"), "model.dtype must be float32, bfloat16 or float16"),
              (all(s in ("train", "valid", "test") for s in cfg.eval.splits), "eval.splits must be among train, valid, test"),
              (cfg.backend != "mistral-api" or cfg.eval.tta == "none",   # refused before a paid job starts
               "eval.tta is for local models; the mistral-api backend needs eval.tta: none"),
              (not (cfg.model.lora.enabled and get_backbone(cfg.model.backbone).is_tiny),
               "model.lora.enabled is for pretrained checkpoints; tiny presets train all their weights")]
    for ok, msg in checks:
        if not ok:
            raise UserError(f"config: {msg}")
    return cfg


def complete(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its defaults written out: the LLaVA route's vision section and every stage resolved
    (what a run's config.json records, so that a resume compares like with like)."""
    vision = (cfg.vision or VisionConfig()) if cfg.route == "llava" else cfg.vision
    cfg = dataclasses.replace(cfg, vision=vision)
    return dataclasses.replace(cfg, stages=resolve_stages(cfg))


def _validate_llava(cfg: RunConfig) -> None:
    from .models.vision import check_vision

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


def read_yaml_mapping(path: Path) -> dict:
    """A YAML file that must hold a mapping (a run config, a compare spec), or one clear error line."""
    import yaml

    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{line} invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None), apply overrides, validate."""
    data = {}
    if path is not None:
        path = Path(path)
        data = read_yaml_mapping(path)
    data = apply_overrides(data, overrides or [])
    try:
        return validate(from_dict(RunConfig, data))
    except UserError as e:
        raise UserError(f"{path}: {e}" if path else str(e)) from None


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run directory was trained with (its ``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.json); run `mistral-vision train` first")
    return from_dict(RunConfig, json.loads(path.read_text()))


def dump_config(cfg: RunConfig, run_dir: str | Path) -> None:
    import yaml

    from .io import write_json, write_text

    d = to_dict(cfg)
    write_json(Path(run_dir) / "config.json", d)
    write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(d, sort_keys=False))
