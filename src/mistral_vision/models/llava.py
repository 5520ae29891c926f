"""LLaVA assembly on transformers: a vision tower + LLaVA-1.5's projector + one of our LLM backbones.

``build_llava`` makes a ``LlavaForConditionalGeneration`` and its ``LlavaProcessor``: the LLM is
any backbone of the registry (``backbones.py``: tiny random-init Mistral / LLaMA, or a
checkpoint), the tower any of ``vision.py``. Tiny models are built whole from a
``LlavaConfig``; with checkpoints the LLM and the tower are loaded separately, ``<image>`` (and
a pad token where the tokenizer has none of its own) is added, the embeddings are resized,
and the parts are put into one model. transformers does the rest: the processor expands each
``<image>`` into one token per projected feature, and the model scatters the features there.
LoRA (PEFT) targets the language model only - bare ``q_proj`` would also match the tower's
attention - and saves the projector (and a trained tower) with the adapter.
Not for: training stages or scoring.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import UserError
from .backbones import torch_dtype

IMAGE_TOKEN = "<image>"
LLM_LORA_TARGET = r".*language_model.*\.({})"


def llava_tokenizer(spec, label_names=(), tok=None):
    """The backbone's tokenizer (or ``tok``: the run's learned one) with ``<image>`` (and a pad token, for
    checkpoints without one) added; ``label_names`` become single tokens (``tokenizer.label_tokens``)."""
    from .ascii_tokenizer import add_label_tokens
    from .backbones import load_tokenizer

    tok = tok if tok is not None else load_tokenizer(spec)
    if label_names:
        add_label_tokens(tok, label_names)
    if not spec.is_tiny and tok.pad_token in (None, tok.unk_token, tok.eos_token):
        tok.add_special_tokens({"pad_token": "<pad>"})
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tok.padding_side = "left"
    return tok


def make_processor(vc, tok, vision_config):
    from transformers import LlavaProcessor

    from .vision import image_processor, image_tokens, strategy_of

    patch, extra = image_tokens(vc, vision_config)
    return LlavaProcessor(image_processor=image_processor(vc), tokenizer=tok, patch_size=patch,
                          vision_feature_select_strategy=strategy_of(vc), num_additional_image_tokens=extra,
                          image_token=IMAGE_TOKEN, chat_template=tok.chat_template)


def llava_config(cfg, vision_config, text_config, tok):
    from transformers import LlavaConfig

    from .vision import features_per_image, strategy_of

    vc = cfg.vision
    # image_seq_length is what readers of the exported config.json (serving stacks) take as the number of
    # <image> tokens; LlavaConfig's default (576, CLIP-336's) is wrong for every other tower.
    return LlavaConfig(vision_config=vision_config, text_config=text_config,
                       image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN), vision_feature_layer=vc.feature_layer,
                       vision_feature_select_strategy=strategy_of(vc), projector_hidden_act="gelu",
                       image_seq_length=features_per_image(vc, vision_config))


def assemble(cfg, tok):
    """The LLaVA model before any LoRA: tiny parts from config, or the checkpoints put together."""
    import torch
    from transformers import LlavaForConditionalGeneration
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    from .backbones import build_model, get_backbone, tiny_config
    from .vision import get_tower, load_tower, tower_config

    vc, mc = cfg.vision, cfg.model
    spec = get_backbone(mc.backbone)
    vision_config = tower_config(vc)
    if spec.is_tiny and get_tower(vc.tower).is_tiny:
        config = llava_config(cfg, vision_config, tiny_config(spec, mc, tok), tok)
        config._attn_implementation = mc.attn_implementation
        return LlavaForConditionalGeneration(config).to(torch_dtype(mc.dtype)), vision_config
    # Checkpoints: load each part, then place them in a model skeleton built on the meta device
    # (no memory or time spent initialising 7B weights that are replaced at once).
    llm = build_model(spec, replace(mc, lora=replace(mc.lora, enabled=False)), tok)   # LoRA comes after assembly
    tower = (load_tower(vc, torch_dtype(mc.dtype)) if not get_tower(vc.tower).is_tiny
             else _tiny_tower(vision_config, mc))
    config = llava_config(cfg, vision_config, llm.config, tok)
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = tower
    model.model.language_model = llm.model
    model.lm_head = llm.lm_head
    model.model.multi_modal_projector = LlavaMultiModalProjector(config).to(torch_dtype(mc.dtype))
    return model, vision_config


def _tiny_tower(vision_config, mc):
    from transformers import AutoModel

    return AutoModel.from_config(vision_config).to(torch_dtype(mc.dtype))


def build_llava(cfg, log=print, run_dir=None):
    """A fresh trainable LLaVA model of ``cfg`` -> (model, LlavaProcessor).

    ``tokenizer.kind: ascii-bpe`` (question sets): a BPE learned from the run's conversation texts
    replaces the tiny presets' character tokenizer (kept in ``run_dir/tokenizer``)."""
    from ..data.run_data import label_names_for
    from .backbones import get_backbone
    from .chat_templates import set_chat_template
    from .vision import get_tower

    vc, mc = cfg.vision, cfg.model
    spec = get_backbone(mc.backbone)
    names = label_names_for(cfg.data) if cfg.tokenizer.label_tokens else ()
    learned = None
    if cfg.tokenizer.kind != "default":
        from .ascii_tokenizer import learned_tokenizer

        learned = learned_tokenizer(cfg, spec, run_dir, log)
    tok = llava_tokenizer(spec, names, learned)
    set_chat_template(tok, cfg.prompt.chat_template)
    model, vision_config = assemble(cfg, tok)
    processor = make_processor(vc, tok, vision_config)
    n_img = image_token_count(processor)
    check_image_size(vc, vision_config, n_img)
    log(f"      LLaVA: {vc.tower} ({'random init' if get_tower(vc.tower).is_tiny else 'pretrained'}) -> "
        f"{vc.projector} -> {mc.backbone}; {n_img} image tokens per image")
    if mc.lora.enabled:
        model = _with_lora(model, cfg, _trained_rows(spec, tok, names))
    return model, processor


def _trained_rows(spec, tok, label_names=()) -> list[int]:
    """Embedding rows LoRA must train as PEFT trainable tokens, as the ASCII route does: every token added
    to the checkpoint's vocabulary (the run's learned BPE pieces, class names) and the class-name tokens;
    not ``<image>`` (image features replace its row) nor an added pad token (never attended to)."""
    from .backbones import load_tokenizer

    skip = {tok.convert_tokens_to_ids(IMAGE_TOKEN), tok.pad_token_id}
    added = set(range(len(load_tokenizer(spec)), len(tok))) - skip
    return sorted(added | set(tok.convert_tokens_to_ids(list(label_names))))


def _saves_tower(cfg) -> bool:
    """The adapter must carry the tower when it is trained, or random-init (no checkpoint rebuilds it)."""
    from .vision import get_tower

    return get_tower(cfg.vision.tower).is_tiny or any("vision" in st.trainable for st in cfg.stages)


def _with_lora(model, cfg, token_rows=()):
    """LoRA on the language model; the projector (and tower) as saved modules; the rows of tokens new to
    the checkpoint (``_trained_rows``) trained as PEFT trainable tokens, as on the ASCII route."""
    from peft import LoraConfig, get_peft_model

    lc = cfg.model.lora
    save = ["multi_modal_projector"] + (["vision_tower"] if _saves_tower(cfg) else [])
    return get_peft_model(model, LoraConfig(
        r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
        target_modules=LLM_LORA_TARGET.format("|".join(lc.target_modules)), modules_to_save=save,
        trainable_token_indices=list(token_rows) or None))


def check_image_size(vc, vision_config, n_img: int) -> None:
    """Refuse, in one line, an image processor whose output the tower cannot take."""
    from .vision import features_per_image

    side, want = vision_config.image_size, features_per_image(vc, vision_config)
    if n_img != want:
        raise UserError(f"vision tower {vc.tower}: its image processor makes images that give {n_img} image tokens, "
                        f"but the tower takes {side}x{side} px ({want} features); give the "
                        "processor the tower's image size")


def image_token_count(processor) -> int:
    """How many ``<image>`` tokens the processor writes for one image (= the tower's projected features)."""
    return len(expand_prompt(processor, IMAGE_TOKEN))


def expand_prompt(processor, text: str) -> list[int]:
    """Token ids of ``text`` with each ``<image>`` expanded for one image, as the processor does it (it
    resizes every input to the tower's size, so the count does not depend on the image given)."""
    import numpy as np

    from .vision import TINY_IMAGE_SIZE, processor_inputs

    n = max(text.count(IMAGE_TOKEN), 1)
    size = getattr(processor.image_processor, "size", None) or {}
    side = size.get("height") or size.get("shortest_edge") or TINY_IMAGE_SIZE
    blank = processor_inputs(np.zeros((n, side, side), np.uint8), processor.image_processor)
    return list(processor(text=[text], images=blank, add_special_tokens=False)["input_ids"][0])


def save_llava(model, processor, out_dir, cfg) -> dict:
    """Weights (full model, or the adapter + projector) + processor; -> the manifest's parts."""
    from ..io import atomic_dir
    from .backbones import get_backbone, llm_part
    from .vision import IMAGE_BACKEND, get_tower, strategy_of

    vc, spec = cfg.vision, get_backbone(cfg.model.backbone)
    lora = hasattr(model, "peft_config")
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    tower = get_tower(vc.tower)
    return {"llm": llm_part(spec, lora),
            "vision_tower": {"tower": tower.id, "kind": tower.kind, "checkpoint": tower.checkpoint,
                             "feature_layer": vc.feature_layer, "select_strategy": strategy_of(vc),
                             "in_adapter" if lora else "in_model": True},
            "projector": {"kind": vc.projector, "in_adapter" if lora else "in_model": True},
            "processor": {"image_token": IMAGE_TOKEN, "image_tokens": image_token_count(processor),
                          "vocab": len(processor.tokenizer), "image_backend": IMAGE_BACKEND,
                          "image_processor": type(processor.image_processor).__name__}}


def load_processor(model_dir: Path):
    """A saved run's LlavaProcessor, with the image backend it was built with (``vision.IMAGE_BACKEND``):
    left to itself, transformers would take torchvision's class wherever torchvision is installed."""
    from transformers import AutoProcessor

    from .vision import IMAGE_BACKEND

    try:
        processor = AutoProcessor.from_pretrained(model_dir, backend=IMAGE_BACKEND)
    except (OSError, ValueError) as e:
        raise UserError(f"{model_dir}: cannot load the processor ({str(e).splitlines()[0]}); re-export or rerun") from None
    processor.tokenizer.padding_side = "left"
    return processor


def load_llava(model_dir: Path, manifest: dict, dtype: str = "float32", cfg=None):
    """Reload a saved LLaVA run model -> (model, processor). A LoRA run rebuilds its base from the
    checkpoints named in ``cfg`` (the run's config) and puts the adapter, projector and tower on it."""
    from transformers import LlavaForConditionalGeneration

    processor = load_processor(model_dir)
    if not manifest["parts"]["llm"]["lora"]:
        return LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch_dtype(dtype)), processor
    from peft import PeftModel

    if cfg is None:
        raise UserError(f"{model_dir}: a LoRA run's model loads with its run config (load it through the run folder)")
    mc = replace(cfg.model, dtype=dtype, lora=replace(cfg.model.lora, enabled=False))
    base, _ = assemble(replace(cfg, model=mc), processor.tokenizer)
    return PeftModel.from_pretrained(base, model_dir), processor
