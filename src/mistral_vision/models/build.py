"""Models by route: build a fresh one, save a trained one with its manifest, load it back.

The ASCII route's model is a causal LM plus its tokenizer (``backbones.py``); the LLaVA
route's is a ``LlavaForConditionalGeneration`` plus its ``LlavaProcessor`` (``llava.py``).
Either way the run's ``model/manifest.json`` records every part - LLM, tokenizer or
processor, and for LLaVA the vision tower and projector - so a saved run says what it is
made of. Runs saved before the manifest existed (``backbone.json``) still load.
Not for: training or scoring.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError, one_of

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RouteModels:
    build: Callable    # (cfg, run_dir, log) -> (model, tokenizer or processor)
    save: Callable     # (model, tokenizer or processor, out_dir, cfg) -> parts dict for the manifest
    load: Callable     # (model_dir, manifest, dtype, run config or None) -> (model, tokenizer or processor)


def _ascii_build(cfg, run_dir, log):
    from .ascii_tokenizer import run_tokenizer
    from .backbones import build_model, get_backbone

    spec = get_backbone(cfg.model.backbone)
    tok = run_tokenizer(cfg, spec, run_dir, log=log)
    return build_model(spec, cfg.model, tok), tok


def _ascii_save(model, tok, out_dir, cfg):
    from .backbones import get_backbone, llm_part, save_model

    spec = get_backbone(cfg.model.backbone)
    save_model(model, tok, out_dir, spec)
    return {"llm": llm_part(spec, hasattr(model, "peft_config")),
            "tokenizer": {"kind": cfg.tokenizer.kind, "vocab": len(tok)}}


def _ascii_load(model_dir, manifest, dtype, cfg):
    from .backbones import load_trained

    model, tok, _ = load_trained(model_dir, dtype)
    return model, tok


def _llava_build(cfg, run_dir, log):
    from .llava import build_llava

    return build_llava(cfg, log, run_dir)


def _llava_save(model, processor, out_dir, cfg):
    from .llava import save_llava

    return save_llava(model, processor, out_dir, cfg)


def _llava_load(model_dir, manifest, dtype, cfg):
    from .llava import load_llava

    return load_llava(model_dir, manifest, dtype, cfg)


ROUTE_MODELS = {"ascii": RouteModels(_ascii_build, _ascii_save, _ascii_load),
                "llava": RouteModels(_llava_build, _llava_save, _llava_load)}


def _route(route: str) -> RouteModels:
    if route not in ROUTE_MODELS:
        raise one_of("route", route, ROUTE_MODELS)
    return ROUTE_MODELS[route]


def build_run_model(cfg, run_dir: Path, log=print):
    """A fresh trainable model of ``cfg.route`` -> (model, tokenizer or processor)."""
    return _route(cfg.route).build(cfg, Path(run_dir), log)


def save_run_model(model, processor, out_dir: str | Path, cfg) -> None:
    """Save the trained model; the manifest is written last, so its presence means a complete save."""
    from ..io import write_json

    out_dir = Path(out_dir)
    parts = _route(cfg.route).save(model, processor, out_dir, cfg)
    write_json(out_dir / MANIFEST, {"route": cfg.route, "parts": parts})


def read_manifest(model_dir: str | Path) -> dict:
    model_dir = Path(model_dir)
    if (model_dir / MANIFEST).is_file():
        return json.loads((model_dir / MANIFEST).read_text())
    if (model_dir / "backbone.json").is_file():          # runs saved before the manifest
        return {"route": "ascii", "parts": {"llm": json.loads((model_dir / "backbone.json").read_text())}}
    raise UserError(f"{model_dir}: no trained model here (manifest.json missing); train first")


def is_saved(model_dir: str | Path) -> bool:
    return (Path(model_dir) / MANIFEST).is_file() or (Path(model_dir) / "backbone.json").is_file()


def load_run_model(model_dir: str | Path, dtype: str = "float32", cfg=None):
    """Reload a model saved by :func:`save_run_model` -> (model in eval mode, tokenizer or processor, manifest).

    ``cfg`` (the run's config) is needed where the save holds an adapter only (a LoRA LLaVA run)."""
    manifest = read_manifest(model_dir)
    check_saved_files(model_dir, manifest)
    model, processor = _route(manifest["route"]).load(Path(model_dir), manifest, dtype, cfg)
    model.eval()
    return model, processor, manifest


def load_run_processor(model_dir: str | Path):
    """The saved tokenizer (ASCII) or processor (LLaVA) without the model; None if nothing is saved (API runs)."""
    if not is_saved(model_dir):
        return None
    manifest = read_manifest(model_dir)
    check_saved_files(model_dir, manifest)
    if manifest["route"] == "llava":
        from .llava import load_processor

        return load_processor(Path(model_dir))
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as e:
        raise UserError(f"{model_dir}: cannot load the tokenizer ({str(e).splitlines()[0]}); {REDO}") from None


REDO = "re-export or rerun"


def check_saved_files(model_dir: str | Path, manifest: dict) -> None:
    """Refuse, in one line and before anything is built, a saved model that is missing or damaged.

    Without this, a missing ``config.json`` lets ``from_pretrained`` fall back to the default
    (7B) LLaVA config and allocate tens of GB, and a truncated ``model.safetensors`` is a long
    traceback from deep inside the loader. ``safe_open`` reads only the header, and it checks
    that the header's tensors cover the file exactly, so a truncated download or an interrupted
    copy is caught at the cost of a few bytes read."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    lora = bool(manifest.get("parts", {}).get("llm", {}).get("lora"))
    config = "adapter_config.json" if lora else "config.json"
    # A LLaVA processor is saved whole (processor_config.json) by transformers 5, as parts before.
    needed = [(config,)] + ([("processor_config.json", "preprocessor_config.json")]
                            if manifest.get("route") == "llava" else [])
    for names in needed:
        path = next((model_dir / n for n in names if (model_dir / n).is_file()), model_dir / names[0])
        if not path.is_file():
            raise UserError(f"{path}: missing, so the saved model cannot be rebuilt; {REDO}")
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not valid JSON ({e}); {REDO}") from None
    stem = "adapter_model" if lora else "model"
    index = model_dir / f"{stem}.safetensors.index.json"
    if index.is_file():
        weights = sorted({model_dir / f for f in json.loads(index.read_text()).get("weight_map", {}).values()})
    else:
        weights = [model_dir / f"{stem}.safetensors"]
    for path in weights:
        if not path.is_file():
            raise UserError(f"{path}: missing, so the saved model has no weights; {REDO}")
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as e:  # SafetensorError: truncated header, file not covered by its tensors
            raise UserError(f"{path}: truncated or corrupt ({str(e).splitlines()[0]}); {REDO}") from None


def text_tokenizer(processor):
    """The tokenizer inside a processor (LLaVA), or the tokenizer itself (ASCII)."""
    return getattr(processor, "tokenizer", processor)
