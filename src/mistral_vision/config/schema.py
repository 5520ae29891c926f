"""The run configuration's schema: one frozen dataclass per section, defaults documented inline.

Choice lists live here once each (``MIXED_PRECISIONS``, ...): validation (``checks.py``) and its
messages use the same tuples. Choices owned by a lower layer stay there and are checked against
it: routes (``tasks.ROUTES``), dataset splits (``data.datasets.SPLITS``), tokenizer splits
(``models.ascii_tokenizer.SPLITS``), registries (datasets, backbones, towers, templates).
Not for: reading YAML (``coerce.py``, ``files.py``) or checking values (``checks.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("local", "mistral-api")
DATA_FORMATS = ("idx", "llava-json", "text")
TOKENIZER_KINDS = ("default", "ascii-bpe")
DTYPES = ("float32", "bfloat16", "float16")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
LOSS_REDUCTIONS = ("sequence", "token")
TRACKERS = ("none", "tensorboard", "wandb")     # train.report_to: accelerate's trackers
VQA_GRIDS = (1, 2, 3)                          # cells per side of a synthetic VQA canvas
VQA_TTA = ("none", "shift4", "shift8")         # test-time views that keep a canvas's cells where they are
PARTS = ("projector", "vision", "llm", "llm-lora")
# Data selection (``mistral-vision select``, ``data.select``): each method and the parameters it takes
# (select/methods.py registers the functions under these names; a test keeps the two in step).
SELECT_METHODS = {"random": (), "stratified": ("field", "allocation"), "handpicked": ("field", "from_run"),
                  "loss": ("from_run", "measure", "band", "bins", "hard_cut"), "kcenter": ("from_run", "embedding"),
                  "clusters": ("from_run", "embedding", "clusters")}
SELECT_NEEDS_RUN = ("loss", "kcenter", "clusters")     # handpicked takes a run's losses if given one
SELECT_CHOICES = {"allocation": ("proportional", "balanced"), "measure": ("loss", "el2n"),
                  "band": ("high", "middle", "ccs"), "embedding": ("image-mean", "answer-hidden", "tower-pooled")}
STAGE_KINDS = ("vision", "text")               # text: the LLM alone on text-only data (language pretraining)
TEXT_PARTS = ("llm", "llm-lora")               # what a text stage may train
# Fields checked by membership alone: dotted key -> its choices (the tests walk this table).
CHOICES = {"backend": BACKENDS, "data.format": DATA_FORMATS, "tokenizer.kind": TOKENIZER_KINDS, "model.dtype": DTYPES,
           "train.mixed_precision": MIXED_PRECISIONS, "train.loss_reduction": LOSS_REDUCTIONS,
           "train.report_to": TRACKERS}


@dataclass(frozen=True)
class SelectConfig:
    """A subset of the training pool chosen by a method (docs/selection.md); a run trains on it only."""
    method: str = "random"            # random | stratified | handpicked | loss | kcenter | clusters
    keep: int | float = 1000          # examples kept: a count (>= 1), or a fraction of the pool (0 < f < 1)
    seed: int | None = None           # None: train.seed (so compare's seeds draw different random subsets)
    from_run: str | None = None       # a trained run's folder: losses (loss, handpicked) or embeddings
    field: str | None = None          # stratified / handpicked: the strata (type, class, or any sample key such as
                                      # subject); None: type (handpicked: subject where samples carry it)
    allocation: str = "proportional"  # stratified: proportional (largest remainder) | balanced (equal per stratum)
    measure: str = "loss"             # loss: mean answer-token NLL | el2n (the error vector's L2 norm)
    band: str = "high"                # loss: high (hardest) | middle (around the median) | ccs (Zheng et al. 2023)
    bins: int = 50                    # loss with band ccs: score bins
    hard_cut: float = 0.0             # loss with band ccs: fraction of the hardest examples dropped first
    embedding: str = "image-mean"     # kcenter / clusters: image-mean | answer-hidden | tower-pooled
    clusters: int | None = None       # clusters: k of k-means; None: round(sqrt(keep))


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"            # registry id: mnist | fashion-mnist (classification), mnist-vqa |
                                      # fashion-vqa (synthetic questions about 2x2 canvases, data/vqa.py)
                                      # | text-skills (generated text-only skills, data/textskills.py)
    format: str = "idx"               # idx: a registered dataset; llava-json: LLaVA conversation files (path ...);
                                      # text: a user's text corpus at path (.txt plain text, .jsonl chat,
                                      # .json LLaVA JSON without images), for text stages (data/textdata.py)
    path: str | None = None           # llava-json, text: the training file
    valid_path: str | None = None     # llava-json, text: the validation questions (LLaVA JSON with answers)
    test_path: str | None = None      # llava-json, text: the test questions (LLaVA JSON with answers)
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
    select: SelectConfig | str | None = None   # train on a subset: a method's spec (resolved into
                                               # RUN/selection/ before training) or a selection.json path
    # Text-only data of text stages (text-skills, or a user corpus; data/textdata.py).
    text_samples: int = 20000         # text-skills: training conversations
    text_turns: int = 4               # text-skills: questions per training conversation
    text_valid: int = 1000            # text-skills: held-out single questions (valid), scored per skill
    text_test: int = 2000             # text-skills: held-out single questions (test, another seed)
    text_skills: tuple[str, ...] | None = None   # None: every skill of data/textskills.py
    text_seed: int = 0                # text-skills: the conversations and held-out questions
    text_window: int = 256            # a plain .txt corpus: tokens per training window (loss on every token)


@dataclass(frozen=True)
class AsciiConfig:
    width: int = 14                   # characters per line
    height: int = 14                  # lines per image
    ramp: str = " .:-=+*#%@"          # background space + ink from faint to dark, pure ASCII
    invert: bool = False              # for dark-on-light images
    crop: int = 0                     # pixels cut from each border before resizing (MNIST digits


@dataclass(frozen=True)
class PromptConfig:
    template: str = "plain"           # registry id (plain | classify) or a literal with {art}
    system: str | None = None         # optional system message
    chat_template: str | None = None  # models/chat_templates.py id: tiny, mistral, llama-2, vicuna-v1, plain;


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
    backbone: str = "mistral-tiny"    # registry id, or hf:<local path or hub id> (a pretraining run's model/)
    pretrain: str | None = None       # a text-only config whose run's model/ is the hf: backbone: built first
                                      # if absent (`mistral-vision pretrain`), reused once finished
    # Shape of the tiny random-init presets (ignored for checkpoints, but a pretrained tiny LLM's must match).
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
    data: str | None = None           # question sets: all (None) | captions | questions | a LLaVA JSON path;
                                      # kind text: text-skills | a .txt / .jsonl / .json file (None: data.*)
    image_folder: str | None = None   # with a LLaVA JSON path: its image folder (None: data.image_folder)
    template: str | None = None       # chat template of this stage (models/chat_templates.py id); None:
    kind: str = "vision"              # vision: the run's data; text: the LLM alone (llm or llm-lora) on text, the
                                      # run's or this stage's data
    steps: int | None = None          # optimizer steps, whatever the data's size (instead of epochs): runs on
                                      # subsets of different sizes get the same compute (compare's selection study)


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

