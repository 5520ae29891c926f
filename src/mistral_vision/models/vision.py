"""Vision-tower and projector registries for the LLaVA route.

Towers by id: ``clip-tiny`` / ``siglip-tiny`` are random-init ``CLIPVisionConfig`` /
``SiglipVisionConfig`` models for 28x28 grayscale (one channel, patch size from the config:
patch 7 gives 16 patches, patch 4 gives 49); ``clip-vit-l-14-336`` is LLaVA-1.5's tower
(``openai/clip-vit-large-patch14-336``), ``siglip-so400m`` is ``google/siglip-so400m-patch14-384``,
and ``hf:<path or hub id>`` loads any CLIP or SigLIP vision checkpoint. Each tower brings its
own image processor (transformers' ``CLIPImageProcessorPil`` for the tiny ones, the
checkpoint's own otherwise), so a 28x28 digit becomes whatever the tower expects. Projectors:
``mlp2x-gelu`` only - LLaVA-1.5's, which is transformers' ``LlavaMultiModalProjector``;
LLaVA-1's single linear layer would need a fork of the model class, so it is not offered.
Not for: assembling the LLaVA model (``llava.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError, one_of
from .hub import hf_checkpoint, local_model_type

PROJECTORS = ("mlp2x-gelu",)
# transformers 5.x picks an image processor's backend when it loads one: torchvision's if torchvision
# imports, else PIL's, and the two resize differently. Pinned, so a run's pixels do not depend on what
# else is installed: PIL is a dependency of this package (torchvision is not) and LLaVA's own
# preprocessing (CLIPImageProcessor before the fast classes) is PIL's.
IMAGE_BACKEND = "pil"
STRATEGIES = ("default", "full")
TINY_IMAGE_SIZE = 28         # the tiny towers' default side (vision.image_size)


@dataclass(frozen=True)
class TowerSpec:
    id: str
    kind: str                  # clip | siglip
    checkpoint: str | None     # None: tiny random init
    description: str

    @property
    def is_tiny(self) -> bool:
        return self.checkpoint is None

    @property
    def default_strategy(self) -> str:
        return "full" if self.kind == "siglip" else "default"   # SigLIP has no CLS token to drop


TOWERS: dict[str, TowerSpec] = {t.id: t for t in [
    TowerSpec("clip-tiny", "clip", None, "random-init CLIP ViT for 28x28 grayscale (trained with the run)"),
    TowerSpec("siglip-tiny", "siglip", None, "random-init SigLIP ViT for 28x28 grayscale, no CLS (strategy full)"),
    TowerSpec("clip-vit-l-14-336", "clip", "openai/clip-vit-large-patch14-336", "LLaVA-1.5's CLIP ViT-L/14, 336 px"),
    TowerSpec("siglip-so400m", "siglip", "google/siglip-so400m-patch14-384", "SigLIP so400m/14, 384 px"),
]}


def get_tower(tower: str) -> TowerSpec:
    ckpt = hf_checkpoint(tower, "vision tower", "hf:openai/clip-vit-base-patch16")
    if ckpt is not None:
        return TowerSpec(tower, _detect_kind(ckpt), ckpt, "Hugging Face vision checkpoint")
    if tower not in TOWERS:
        raise one_of("vision tower", tower, list(TOWERS) + ["hf:<path or hub id>"])
    return TOWERS[tower]


def _detect_kind(ckpt: str) -> str:
    """clip or siglip, from a local checkpoint's config.json; hub ids by their name."""
    model_type = local_model_type(ckpt)
    return "siglip" if "siglip" in (ckpt if model_type is None else model_type).lower() else "clip"


def strategy_of(vc) -> str:
    return vc.select_strategy or get_tower(vc.tower).default_strategy


def check_vision(vc) -> None:
    """Refuse a vision section that cannot work, in one line each."""
    spec = get_tower(vc.tower)
    if vc.projector not in PROJECTORS:
        raise one_of("projector", vc.projector, PROJECTORS)
    strategy = strategy_of(vc)
    if strategy not in STRATEGIES:
        raise UserError(f"config vision.select_strategy {strategy!r}: known: {', '.join(STRATEGIES)}")
    if spec.kind == "siglip" and strategy == "default":
        raise UserError("config vision.select_strategy default drops a CLS token, which SigLIP does not have; use full")
    if spec.is_tiny:
        side = vc.image_size
        if side < 1 or vc.patch_size < 1 or side % vc.patch_size:
            raise UserError(f"config vision.patch_size {vc.patch_size}: the tiny tower takes {side}x{side} images "
                            f"(vision.image_size), so it must divide {side}")
        if vc.hidden_size % vc.num_heads:
            raise UserError("config vision.hidden_size must be divisible by vision.num_heads")
        if not -(vc.num_layers + 1) <= vc.feature_layer <= vc.num_layers:
            raise UserError(f"config vision.feature_layer {vc.feature_layer}: the tower has {vc.num_layers} layers "
                            f"(hidden states -{vc.num_layers + 1} .. {vc.num_layers})")


def tower_config(vc):
    """transformers vision config of the tower (a tiny one built here, else the checkpoint's)."""
    import transformers

    spec = get_tower(vc.tower)
    if spec.is_tiny:
        kw = dict(image_size=vc.image_size, patch_size=vc.patch_size, num_channels=1, hidden_size=vc.hidden_size,
                  intermediate_size=vc.intermediate_size, num_hidden_layers=vc.num_layers,
                  num_attention_heads=vc.num_heads)
        if spec.kind == "siglip":
            return transformers.SiglipVisionConfig(vision_use_head=False, **kw)
        return transformers.CLIPVisionConfig(**kw)
    try:
        cfg = transformers.AutoConfig.from_pretrained(spec.checkpoint)
    except OSError as e:
        raise UserError(f"cannot load vision tower {spec.checkpoint!r}: {str(e).splitlines()[0]}") from None
    return getattr(cfg, "vision_config", cfg)


def load_tower(vc, dtype):
    """The pretrained vision model of a checkpoint tower (tiny towers are built inside the LLaVA model)."""
    import transformers

    spec = get_tower(vc.tower)
    cls = transformers.SiglipVisionModel if spec.kind == "siglip" else transformers.CLIPVisionModel
    try:
        return cls.from_pretrained(spec.checkpoint, dtype=dtype)
    except OSError as e:
        raise UserError(f"cannot load vision tower {spec.checkpoint!r}: {str(e).splitlines()[0]}") from None


def image_processor(vc):
    """The tower's own image processor: grayscale ``vision.image_size`` px as it is for tiny towers (the
    task resizes other sizes first), the checkpoint's otherwise.

    The PIL backend (``IMAGE_BACKEND``) is named explicitly in both cases: transformers' default is
    torchvision's when torchvision is installed.
    """
    spec = get_tower(vc.tower)
    if spec.is_tiny:
        from transformers import CLIPImageProcessorPil

        side = {"height": vc.image_size, "width": vc.image_size}
        return CLIPImageProcessorPil(do_resize=False, do_center_crop=False, do_convert_rgb=False,
                                     image_mean=[0.5], image_std=[0.5], size=side, crop_size=side)
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(spec.checkpoint, backend=IMAGE_BACKEND)
    except OSError as e:
        raise UserError(f"cannot load the image processor of {spec.checkpoint!r}: {str(e).splitlines()[0]}") from None


def processor_inputs(images, image_processor) -> list:
    """(N, H, W) uint8 grayscale, or a list of (H, W) gray / (H, W, 3) RGB images -> what ``image_processor``
    takes: one channel for a one-channel tower, RGB for an RGB tower (gray repeated into R, G and B, as a
    processor's own ``do_convert_rgb`` does for PIL images; some, e.g. SigLIP's, do not convert arrays)."""
    import numpy as np

    mean = getattr(image_processor, "image_mean", None)
    rgb = isinstance(mean, (list, tuple)) and len(mean) == 3
    if isinstance(images, np.ndarray) and images.ndim == 3:
        return list(np.repeat(images[..., None], 3, -1) if rgb else images[:, None])
    out = []
    for im in images:
        im = np.asarray(im)
        if rgb:
            out.append(np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3])
        else:
            gray = im if im.ndim == 2 else (im[..., :3].astype(np.float32) @ [0.299, 0.587, 0.114]).round()
            out.append(gray.astype(np.uint8)[None])
    return out


def features_per_image(vc, vision_config) -> int:
    """Projected features, so ``<image>`` tokens, per image: the tower's patches, plus CLIP's CLS token
    when the ``full`` strategy keeps it (``default`` drops it; SigLIP has none)."""
    side, patch = vision_config.image_size, vision_config.patch_size
    cls = 1 if get_tower(vc.tower).kind == "clip" and strategy_of(vc) == "full" else 0
    return (side // patch) ** 2 + cls


def image_tokens(vc, vision_config) -> tuple[int, int]:
    """(patch size, tokens added beyond the patches) for the processor's ``<image>`` expansion.

    CLIP yields a CLS token besides the patches; the ``default`` strategy then drops one
    feature, so ``num_additional_image_tokens`` must be 1 for the count to match.
    """
    extra = 1 if get_tower(vc.tower).kind == "clip" else 0
    return vision_config.patch_size, extra
