"""Backbone registry: tiny random-init presets and pretrained checkpoints, by id.

Each entry names its family (``mistral`` or ``llama``); family quirks - the pad token and
the fallback chat template for base checkpoints that ship none - live in ``FAMILIES``.
``hf:<path or hub id>`` loads any Hugging Face causal-LM checkpoint. Models are always
transformers classes (MistralForCausalLM, LlamaForCausalLM, AutoModelForCausalLM); LoRA
comes from PEFT. Not for: training or scoring.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError, one_of
from .hub import hf_checkpoint, local_model_type

from .chat_templates import LLAMA_2 as LLAMA_CHAT_TEMPLATE, MISTRAL as MISTRAL_CHAT_TEMPLATE, chat_template


@dataclass(frozen=True)
class Family:
    name: str
    chat_template: str     # used when a checkpoint's tokenizer has none (base models)

    def model_classes(self):
        import transformers

        if self.name == "mistral":
            return transformers.MistralConfig, transformers.MistralForCausalLM
        return transformers.LlamaConfig, transformers.LlamaForCausalLM

    def fix_tokenizer(self, tok):
        """Both families ship without a pad token; pad with <unk> (never trained on) or EOS."""
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token
        if not getattr(tok, "chat_template", None):
            tok.chat_template = self.chat_template
        tok.padding_side = "left"
        return tok


FAMILIES = {"mistral": Family("mistral", MISTRAL_CHAT_TEMPLATE),
            "llama": Family("llama", LLAMA_CHAT_TEMPLATE)}


@dataclass(frozen=True)
class BackboneSpec:
    id: str
    family: str
    checkpoint: str | None     # hub id or local path; None = tiny random init
    description: str
    chat_template: str | None = None   # a chat_templates.py id, for checkpoints that ship none (else the family's)

    @property
    def is_tiny(self) -> bool:
        return self.checkpoint is None


BACKBONES: dict[str, BackboneSpec] = {b.id: b for b in [
    BackboneSpec("mistral-tiny", "mistral", None,
                 "random-init Mistral architecture (GQA + sliding-window attention), char tokenizer"),
    BackboneSpec("llama-tiny", "llama", None, "random-init LLaMA architecture (GQA), char tokenizer"),
    BackboneSpec("mistral-7b", "mistral", "mistralai/Mistral-7B-v0.1", "Mistral-7B base, LoRA"),
    BackboneSpec("mistral-7b-instruct", "mistral", "mistralai/Mistral-7B-Instruct-v0.2", "Mistral-7B instruct, LoRA"),
    BackboneSpec("llama-2-7b", "llama", "meta-llama/Llama-2-7b-hf", "LLaMA-2-7B base, LoRA"),
    BackboneSpec("vicuna-7b", "llama", "lmsys/vicuna-7b-v1.5", "Vicuna-7B v1.5 (LLaVA-1.5's LLM), LoRA",
                 chat_template="vicuna-v1"),
]}


def get_backbone(backbone: str) -> BackboneSpec:
    ckpt = hf_checkpoint(backbone, "backbone", "hf:mistralai/Mistral-7B-v0.1 or hf:/path/to/model")
    if ckpt is not None:
        return BackboneSpec(backbone, _detect_family(ckpt), ckpt, "Hugging Face checkpoint")
    if backbone not in BACKBONES:
        raise one_of("backbone", backbone, list(BACKBONES) + ["hf:<path or hub id>"])
    return BACKBONES[backbone]


def _detect_family(ckpt: str) -> str:
    """Family from a local checkpoint's config.json; hub ids default to their name, else llama."""
    model_type = local_model_type(ckpt)
    if model_type is None:
        model_type = "mistral" if "mistral" in ckpt.lower() else "llama"
    return "mistral" if model_type == "mistral" else "llama"


# A checkpoint folder's tokenizer: any of these files (fast, SentencePiece, byte-level BPE, Tekken).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tekken.json")
# The tiny presets' shape: ModelConfig field -> transformers config key.
SHAPE_KEYS = (("hidden_size", "hidden_size"), ("num_layers", "num_hidden_layers"), ("num_heads", "num_attention_heads"),
              ("num_kv_heads", "num_key_value_heads"), ("intermediate_size", "intermediate_size"))


def is_local_path(ckpt: str) -> bool:
    """True if an ``hf:`` checkpoint names a folder here rather than a hub id (``name`` or ``owner/name``)."""
    return Path(ckpt).exists() or ckpt.startswith((".", "/", "~")) or ckpt.count("/") >= 2


def pretrained_preset(folder: Path) -> str | None:
    """The tiny preset a saved run's LLM was trained from (a pretraining run's ``model/``), else None."""
    meta = folder / "backbone.json"
    if not meta.is_file():
        return None
    backbone = json.loads(meta.read_text()).get("backbone", "")
    return backbone if backbone in BACKBONES and BACKBONES[backbone].is_tiny else None


def check_checkpoint(cfg) -> None:
    """Refuse, in one line and before anything is written, a local ``hf:`` folder that cannot be this config's
    LLM: absent (unless ``model.pretrain`` builds it), without a tokenizer, a tokenizer larger than its embedding
    matrix, or - for a pretrained tiny LLM (a run of this project) - a shape or vocabulary the config states
    otherwise. Hub ids are left to transformers."""
    mc = cfg.model
    spec = get_backbone(mc.backbone)
    if spec.is_tiny or not is_local_path(spec.checkpoint):
        return
    folder = Path(spec.checkpoint).expanduser()
    where = f"model.backbone {mc.backbone}"
    if not folder.is_dir():
        if mc.pretrain:
            return                                 # the pipeline builds it first
        raise UserError(f"{where}: no such folder; pretrain it first (`mistral-vision pretrain CONFIG`) or set "
                        "model.pretrain to the text-only config that builds it")
    if not (folder / "config.json").is_file():
        raise UserError(f"{where}: no config.json in {folder}; name a checkpoint folder (a finished run's model/)")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise UserError(f"{where}: no tokenizer in {folder} (none of {', '.join(TOKENIZER_FILES)}); a pretrained "
                        "LLM is used with its own tokenizer: save it beside the weights")
    config = json.loads((folder / "config.json").read_text())
    config = config.get("text_config", config)
    preset = pretrained_preset(folder)
    rows, n_tok = config.get("vocab_size"), len(load_tokenizer(spec))
    if rows is not None and (n_tok > rows or (preset and n_tok != rows)):
        raise UserError(f"{where}: its tokenizer has {n_tok} tokens but its embedding matrix {rows} rows; the "
                        "tokenizer in the folder is not the model's")
    if preset is None:
        return
    for ours, theirs in SHAPE_KEYS:
        if getattr(mc, ours) != config.get(theirs):
            raise UserError(f"{where} is a pretrained {preset} with {theirs} {config.get(theirs)}, but the config "
                            f"says model.{ours}: {getattr(mc, ours)}; set model.{ours}: {config.get(theirs)}")
    if cfg.tokenizer.kind != "default":
        raise UserError(f"{where} is a pretrained {preset} with its own tokenizer ({n_tok} tokens), but the config "
                        f"states another vocabulary (tokenizer.kind {cfg.tokenizer.kind}, vocab_size "
                        f"{cfg.tokenizer.vocab_size}); use tokenizer.kind: default")


def tiny_config(spec: BackboneSpec, mcfg, tokenizer):
    """transformers config of a tiny preset, keeping the family's real architecture."""
    config_cls, _ = FAMILIES[spec.family].model_classes()
    kw = dict(vocab_size=len(tokenizer), hidden_size=mcfg.hidden_size, intermediate_size=mcfg.intermediate_size,
              num_hidden_layers=mcfg.num_layers, num_attention_heads=mcfg.num_heads,
              num_key_value_heads=mcfg.num_kv_heads, max_position_embeddings=mcfg.max_position_embeddings,
              attention_dropout=mcfg.dropout, pad_token_id=tokenizer.pad_token_id,
              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
              tie_word_embeddings=True)
    if spec.family == "mistral":
        kw["sliding_window"] = mcfg.sliding_window
    return config_cls(**kw)


def torch_dtype(name: str):
    """float32 | bfloat16 | float16 -> the torch dtype."""
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_tokenizer(spec: BackboneSpec):
    if spec.is_tiny:
        from .tokenizer import build_char_tokenizer

        return build_char_tokenizer()
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(spec.checkpoint)
    except OSError as e:
        raise UserError(f"cannot load the tokenizer of {spec.checkpoint!r}: {str(e).splitlines()[0]}") from None
    if spec.chat_template and not getattr(tok, "chat_template", None):
        tok.chat_template = chat_template(spec.chat_template)
    return FAMILIES[spec.family].fix_tokenizer(tok)


def build_model(spec: BackboneSpec, mcfg, tokenizer):
    """A fresh trainable model: tiny random init, or a checkpoint (+ LoRA when enabled)."""
    if spec.is_tiny:
        _, model_cls = FAMILIES[spec.family].model_classes()
        config = tiny_config(spec, mcfg, tokenizer)
        config._attn_implementation = mcfg.attn_implementation
        model = model_cls(config).to(torch_dtype(mcfg.dtype))
    else:
        from transformers import AutoModelForCausalLM

        try:
            model = AutoModelForCausalLM.from_pretrained(spec.checkpoint, dtype=torch_dtype(mcfg.dtype),
                                                         attn_implementation=mcfg.attn_implementation)
        except OSError as e:
            raise UserError(f"cannot load checkpoint {spec.checkpoint!r}: {str(e).splitlines()[0]}") from None
        added = fit_embeddings(model, spec, tokenizer)
    if mcfg.lora.enabled:
        from peft import LoraConfig as PeftLoraConfig, get_peft_model

        # Rows of tokens added to the checkpoint's vocabulary (ASCII pieces) are trained too;
        # PEFT keeps just those rows in the adapter.
        model = get_peft_model(model, PeftLoraConfig(
            r=mcfg.lora.r, lora_alpha=mcfg.lora.alpha, lora_dropout=mcfg.lora.dropout,
            target_modules=list(mcfg.lora.target_modules), task_type="CAUSAL_LM",
            trainable_token_indices=added or None))
    return model


def fit_embeddings(model, spec: BackboneSpec, tokenizer) -> list[int]:
    """Give tokens added to a checkpoint's tokenizer embedding rows; returns their ids.

    Each new row (input and, if untied, output embedding) is the mean of the embeddings of
    the pieces the checkpoint's own tokenizer cuts that token into - deterministic, so a
    reload rebuilds exactly the rows training started from.
    """
    import torch

    base = load_tokenizer(spec)
    new_ids = list(range(len(base), len(tokenizer)))
    if not new_ids:
        return []
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    pieces = [base(t, add_special_tokens=False)["input_ids"] for t in tokenizer.convert_ids_to_tokens(new_ids)]
    emb, out = model.get_input_embeddings().weight, model.get_output_embeddings()
    tables = [emb] if out is None or out.weight is emb else [emb, out.weight]
    with torch.no_grad():
        for table in tables:
            for i, sub in zip(new_ids, pieces):
                table[i] = table[sub].mean(0)
    return new_ids


def llm_part(spec: BackboneSpec, lora: bool) -> dict:
    """How a saved run's LLM is rebuilt: the manifest's (and backbone.json's) ``llm`` entry."""
    return {"backbone": spec.id, "family": spec.family, "checkpoint": spec.checkpoint, "lora": lora}


def save_model(model, tokenizer, out_dir: str | Path, spec: BackboneSpec) -> None:
    """Save weights (full model, or the LoRA adapter only) + tokenizer + how to rebuild."""
    from ..io import atomic_dir, write_json

    with atomic_dir(out_dir) as tmp:
        if hasattr(model, "peft_config"):
            # Rows added for ASCII pieces are rebuilt deterministically by fit_embeddings on load
            # and their trained values live in the adapter, so the resized embedding matrices
            # (~270 MB for a 7B model) are not copied into it.
            model.save_pretrained(tmp, save_embedding_layers=False)
        else:
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "backbone.json", llm_part(spec, hasattr(model, "peft_config")))


def load_trained(model_dir: str | Path, dtype: str = "float32"):
    """Reload a model saved by :func:`save_model` -> (model, tokenizer, spec)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    meta_path = model_dir / "backbone.json"
    if not meta_path.is_file():
        raise UserError(f"{model_dir}: no trained model here (backbone.json missing); train first")
    meta = json.loads(meta_path.read_text())
    spec = get_backbone(meta["backbone"])
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    if meta["lora"]:
        from peft import PeftModel

        # Config validation refuses LoRA on tiny presets, so a LoRA run always has a checkpoint.
        base = AutoModelForCausalLM.from_pretrained(spec.checkpoint, dtype=torch_dtype(dtype))
        fit_embeddings(base, spec, tok)
        model = PeftModel.from_pretrained(base, model_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype(dtype))
    model.eval()
    return model, tok, spec
