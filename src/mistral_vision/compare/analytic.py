"""What a backbone costs, computed from its config alone: parameters, KV cache, FLOPs, image tokens.

For ``mistral-vision compare --analytic``: exact parameter counts and per-token KV-cache bytes,
attention and dense FLOPs at 4k/32k contexts, and the prefill cost of LLaVA's image tokens, for
LLaMA/Mistral decoders (no biases, gated MLP, RMSNorm, RoPE). The published configs of the
registry's pretrained backbones are a table in this file, so it runs offline; ``hf:<folder>``
reads a local config.json and ``hf:<hub id>`` asks transformers' AutoConfig. The sliding window
(Mistral-7B-v0.1) is reported both ways: capped (as the model runs, with a rolling-buffer cache)
and uncapped. Not for: measured speed or memory (see ``benchmarks/``), loading weights, or other
layouts (biases, MoE, parallel blocks) - those are counted as if they were LLaMA-style.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import UserError, one_of

CONTEXTS = (4096, 32768)
# LLaVA-1.5: CLIP ViT-L/14 at 336 px -> 24x24 patches; LLaVA-1.6 AnyRes: up to 4 tiles + 1 overview, 576 each.
IMAGE_TOKENS = {"llava-1.5": 576, "llava-1.6 AnyRes": 2880}
FP16_BYTES = 2


@dataclass(frozen=True)
class Arch:
    """The config fields the costs depend on (names shortened from transformers')."""
    hidden: int                  # hidden_size
    layers: int                  # num_hidden_layers
    heads: int                   # num_attention_heads (query heads)
    kv_heads: int                # num_key_value_heads; < heads is GQA
    head_dim: int
    intermediate: int            # intermediate_size of the gated MLP
    vocab: int
    sliding_window: int | None   # None: every token attends to the whole prefix
    max_context: int | None      # max_position_embeddings
    tied: bool                   # lm_head shares the input embedding matrix
    rope_theta: float | None = None
    model_type: str = ""


# Published config.json values (Hugging Face hub), keyed by backbone registry id.
_MISTRAL_7B = Arch(hidden=4096, layers=32, heads=32, kv_heads=8, head_dim=128, intermediate=14336, vocab=32000,
                   sliding_window=4096, max_context=32768, tied=False, rope_theta=1e4, model_type="mistral")
_LLAMA_2_7B = Arch(hidden=4096, layers=32, heads=32, kv_heads=32, head_dim=128, intermediate=11008, vocab=32000,
                   sliding_window=None, max_context=4096, tied=False, rope_theta=1e4, model_type="llama")
PUBLISHED: dict[str, tuple[str, Arch]] = {
    "mistral-7b": ("mistralai/Mistral-7B-v0.1", _MISTRAL_7B),
    # v0.2 dropped the sliding window (config: null) and raised rope_theta for a true 32k context.
    "mistral-7b-instruct": ("mistralai/Mistral-7B-Instruct-v0.2",
                            replace(_MISTRAL_7B, sliding_window=None, rope_theta=1e6)),
    "llama-2-7b": ("meta-llama/Llama-2-7b-hf", _LLAMA_2_7B),
    "vicuna-7b": ("lmsys/vicuna-7b-v1.5", _LLAMA_2_7B),   # a Llama-2-7B fine-tune, same architecture
}
_REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


@dataclass(frozen=True)
class ContextCost:
    """Cost of one new token generated after ``context`` tokens (itself included)."""
    context: int
    kv_bytes: int                 # a cache that keeps every token
    kv_bytes_windowed: int        # rolling buffer capped at the sliding window (= kv_bytes without one)
    attn_flops: int               # QK^T + AV over all ``context`` tokens
    attn_flops_windowed: int      # over min(context, window) tokens, as the model runs
    beyond_max_context: bool      # longer than max_position_embeddings: the model was not built for it


@dataclass(frozen=True)
class ImageCost:
    """Prefill of ``tokens`` image tokens from an empty prefix, as the model runs (window applied)."""
    name: str
    tokens: int
    kv_bytes: int
    prefill_dense_flops: int
    prefill_attn_flops: int
    prefill_flops: int


@dataclass(frozen=True)
class Row:
    id: str
    source: str                   # where the config came from
    arch: Arch
    params: int
    non_embedding_params: int     # without the input embedding and lm_head (Kaplan et al. 2020)
    cache_bytes_per_value: int    # 2 = fp16/bf16 cache
    kv_bytes_per_token: int
    dense_flops_per_token: int    # matmuls of the blocks, see dense_flops
    logits_flops_per_token: int   # lm_head, paid only where logits are computed
    contexts: tuple[ContextCost, ...]
    images: tuple[ImageCost, ...]


# ---- configs ----------------------------------------------------------------------------------

def arch_from_config(cfg: dict, where: str) -> Arch:
    """Arch from a transformers config dict (a LLaVA-style config contributes its text_config)."""
    if "hidden_size" not in cfg and isinstance(cfg.get("text_config"), dict):
        cfg = cfg["text_config"]
    bad = [k for k in _REQUIRED if not (isinstance(cfg.get(k), int) and cfg[k] > 0)]
    if bad:
        raise UserError(f"{where}: missing or not a positive integer: {', '.join(bad)}; "
                        "is this a LLaMA/Mistral-style causal LM config?")
    heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    if heads % kv_heads:
        raise UserError(f"{where}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    # Qwen2-style configs carry a sliding_window that is off unless use_sliding_window is true.
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    rope = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta")
    return Arch(hidden=hidden, layers=cfg["num_hidden_layers"], heads=heads, kv_heads=kv_heads,
                head_dim=cfg.get("head_dim") or hidden // heads, intermediate=cfg["intermediate_size"],
                vocab=cfg["vocab_size"], sliding_window=window or None,
                max_context=cfg.get("max_position_embeddings"),
                tied=bool(cfg.get("tie_word_embeddings", False)),   # LlamaConfig/MistralConfig default
                rope_theta=rope, model_type=cfg.get("model_type", ""))


def load_arch(backbone: str) -> tuple[str, Arch]:
    """(source, Arch) of a registry id or ``hf:<folder or hub id>``."""
    if backbone in PUBLISHED:
        return PUBLISHED[backbone]
    if not backbone.startswith("hf:"):
        raise _unknown(backbone)
    ref = backbone[3:]
    if not ref:
        raise UserError("'hf:' needs a model folder or hub id, e.g. hf:mistralai/Mistral-7B-v0.1 or hf:/path/model")
    folder = Path(ref).expanduser()
    if folder.is_dir():
        cfg_file = folder / "config.json"
        if not cfg_file.is_file():
            raise UserError(f"{folder}: no config.json here; point hf: at a saved Hugging Face model folder")
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{cfg_file}:{e.lineno}: not valid JSON ({e.msg})") from None
        return str(cfg_file), arch_from_config(cfg, str(cfg_file))
    if folder.exists() or ref.startswith(("/", ".", "~")):
        raise UserError(f"{ref}: not a model folder; give a folder holding config.json, or a hub id")
    return ref, arch_from_config(_hub_config(ref), ref)


def _hub_config(hub_id: str) -> dict:
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(hub_id)
    except (OSError, ValueError) as e:   # not found, gated, offline; unknown model_type
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot read the config of {hub_id!r}: {first}") from None
    return cfg.get_text_config().to_dict()


def _unknown(name: str) -> UserError:
    known = [*PUBLISHED, "hf:<path or hub id>"]
    from ..models.backbones import BACKBONES   # only to explain the tiny presets

    spec = BACKBONES.get(name)
    if spec is not None and spec.is_tiny:
        return UserError(f"{name!r} is a random-init preset sized by a run config (no published config); "
                         f"compare its saved model as hf:<model folder>, or one of: {', '.join(sorted(known))}")
    return one_of("backbone", name, known)


# ---- costs ------------------------------------------------------------------------------------

def parameter_count(a: Arch) -> int:
    """Exact parameters of a LLaMA/Mistral decoder: embeddings, blocks, final norm, untied lm_head."""
    attn = a.hidden * a.head_dim * (2 * a.heads + 2 * a.kv_heads)   # q, o per query head; k, v per KV head
    mlp = 3 * a.hidden * a.intermediate                              # gate, up, down
    block = attn + mlp + 2 * a.hidden                                # + two RMSNorm weight vectors
    embed = a.vocab * a.hidden
    return embed + a.layers * block + a.hidden + (0 if a.tied else embed)


def non_embedding_params(a: Arch) -> int:
    return parameter_count(a) - a.vocab * a.hidden * (1 if a.tied else 2)


def dense_flops(a: Arch, tokens: int = 1) -> int:
    """Matmul FLOPs of the blocks ≈ 2 x non-embedding params per token (one multiply-add per weight).

    The norm vectors are counted though they are elementwise (hence ≈; 4 in 100,000); attention's
    score/mix FLOPs are separate (:func:`attention_flops`), and so is the lm_head
    (2 x hidden x vocab), which prefilling image tokens does not need.
    """
    return 2 * non_embedding_params(a) * tokens


def _in_window(a: Arch, tokens: int, windowed: bool) -> int:
    """How many of the last ``tokens`` tokens one token attends to (and a rolling-buffer cache keeps)."""
    return min(tokens, a.sliding_window) if windowed and a.sliding_window else tokens


def kv_bytes(a: Arch, tokens: int, windowed: bool = True, bytes_per_value: int = FP16_BYTES) -> int:
    """K and V of every layer for ``tokens`` tokens; with a window, a rolling buffer keeps only the last W."""
    return 2 * a.layers * a.kv_heads * a.head_dim * bytes_per_value * _in_window(a, tokens, windowed)


def attention_flops(a: Arch, context: int, windowed: bool = True) -> int:
    """QK^T and AV FLOPs for one new token that sees ``context`` tokens (itself included).

    GQA shrinks the cache, not these FLOPs: every query head still scores every key it attends to.
    """
    return 2 * 2 * a.layers * a.heads * a.head_dim * _in_window(a, context, windowed)


def prefill_attention_flops(a: Arch, tokens: int, windowed: bool = True) -> int:
    """Sum of :func:`attention_flops` over a causal prefix: token t attends to min(t, W) tokens."""
    w = _in_window(a, tokens, windowed)
    attended = w * (w + 1) // 2 + (tokens - w) * w   # closed form of sum_{t=1..T} min(t, w)
    return 2 * 2 * a.layers * a.heads * a.head_dim * attended


def analytic_row(backbone: str, contexts=CONTEXTS, image_tokens=IMAGE_TOKENS,
                 bytes_per_value: int = FP16_BYTES) -> Row:
    source, a = load_arch(backbone)
    ctx = tuple(ContextCost(context=n, kv_bytes=kv_bytes(a, n, False, bytes_per_value),
                            kv_bytes_windowed=kv_bytes(a, n, True, bytes_per_value),
                            attn_flops=attention_flops(a, n, False), attn_flops_windowed=attention_flops(a, n, True),
                            beyond_max_context=bool(a.max_context and n > a.max_context)) for n in contexts)
    images = []
    for name, n in image_tokens.items():
        dense, attn = dense_flops(a, n), prefill_attention_flops(a, n)
        images.append(ImageCost(name, n, kv_bytes(a, n, True, bytes_per_value), dense, attn, dense + attn))
    return Row(id=backbone, source=source, arch=a, params=parameter_count(a),
               non_embedding_params=non_embedding_params(a), cache_bytes_per_value=bytes_per_value,
               kv_bytes_per_token=kv_bytes(a, 1, True, bytes_per_value), dense_flops_per_token=dense_flops(a),
               logits_flops_per_token=2 * a.hidden * a.vocab, contexts=ctx, images=tuple(images))


def analytic_table(ids: list[str], contexts=CONTEXTS, image_tokens=IMAGE_TOKENS,
                   bytes_per_value: int = FP16_BYTES) -> list[Row]:
    """One :class:`Row` per backbone id, in order (fp16/bf16 cache by default)."""
    if not ids:
        raise UserError("compare --analytic needs at least one backbone id, e.g. mistral-7b llama-2-7b")
    return [analytic_row(i, contexts, image_tokens, bytes_per_value) for i in ids]


def to_json(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]


# ---- markdown ---------------------------------------------------------------------------------

def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def human_flops(n: float) -> str:
    for unit in ("FLOPs", "kFLOPs", "MFLOPs", "GFLOPs", "TFLOPs"):
        if abs(n) < 1000:
            return f"{n:.4g} {unit}"
        n /= 1000
    return f"{n:.4g} PFLOPs"


def _both(full: int, windowed: int, human, c: ContextCost) -> str:
    text = human(full) if full == windowed else f"{human(full)} ({human(windowed)} windowed)"
    return text + (" †" if c.beyond_max_context else "")


def _k(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(x) + " |" for x in lines]


def format_markdown(rows: list[Row]) -> str:
    """Two markdown tables (per-token costs; image-token prefill), one row per model each."""
    if not rows:
        return ""
    head = ["model", "params", "layers x heads/KV x dim", "window", "max ctx", "KV/token", "dense FLOPs/token"]
    head += [f"{what} @{_k(c.context)}" for what in ("KV", "attn FLOPs/token") for c in rows[0].contexts]
    lines = []
    for r in rows:
        a = r.arch
        line = [r.id, f"{r.params:,}", f"{a.layers} x {a.heads}/{a.kv_heads} x {a.head_dim}",
                _k(a.sliding_window) if a.sliding_window else "-", _k(a.max_context) if a.max_context else "?",
                human_bytes(r.kv_bytes_per_token), human_flops(r.dense_flops_per_token)]
        line += [_both(c.kv_bytes, c.kv_bytes_windowed, human_bytes, c) for c in r.contexts]
        line += [_both(c.attn_flops, c.attn_flops_windowed, human_flops, c) for c in r.contexts]
        lines.append(line)
    out = [f"## Per-token cost (KV cache at {rows[0].cache_bytes_per_value} bytes per value)", "",
           *_table(head, lines), ""]
    notes = ["Dense FLOPs ≈ 2 x non-embedding params per token; attention FLOPs (QK^T + AV) are per new "
             "token at that context; windowed = sliding window with a rolling-buffer cache."]
    if any(c.beyond_max_context for r in rows for c in r.contexts):
        notes.append("† beyond the model's max_position_embeddings.")
    img_head = ["model"] + [f"{i.name}, {i.tokens} tokens: {what}"
                            for i in rows[0].images for what in ("KV", "prefill")]
    img_lines = [[r.id] + [x for i in r.images for x in (human_bytes(i.kv_bytes), human_flops(i.prefill_flops))]
                 for r in rows]
    out += notes + ["", "## Image tokens (prefill from an empty prefix: dense + causal attention)", ""]
    return "\n".join(out + _table(img_head, img_lines)) + "\n"
