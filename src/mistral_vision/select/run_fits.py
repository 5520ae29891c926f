"""Whether a reference run can read a question set, checked before its model is loaded: one line if not.

A run's features and losses only mean something on data the run could have been trained on:
its saved model must be whole, its route must read the images (the ASCII route renders
grayscale pictures into text; a LLaVA tower's processor takes gray or RGB of any size), its
tokenizer must represent every character of the text, and images must have the size the run
was trained on (a VQA canvas, a 28-px digit). A run trained on LLaVA JSON saw images of their
own sizes, which its processor resized, so any size fits it. Not for: computing features.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError

PROBE_FILES = 64        # LLaVA JSON images whose size is read from the file header (the rest are not opened)
TOKENIZE_CHUNK = 4096


def check_run_fits(run_dir, qset) -> None:
    """Refuse, in one line, a run whose model is missing or cannot read ``qset`` (a ``QuestionSet``)."""
    from ..config import load_run_config
    from ..models.build import check_saved_files, read_manifest

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    model_dir = run_dir / "model"
    check_saved_files(model_dir, read_manifest(model_dir))
    if not qset.items:
        raise UserError(f"{qset.name}: no samples to compute features of")
    _check_images(run_dir, cfg, qset)
    _check_text(run_dir, model_dir, qset)


def image_shapes(qset):
    """(item, (H, W) or (H, W, C)) of the first item of each image in ``qset``; a LLaVA JSON set's images
    are not decoded: their sizes come from the file headers of the first ``PROBE_FILES`` of them."""
    from ..data.questions import LazyImages

    lazy = isinstance(qset.images, LazyImages)
    seen = set()
    for it in qset.items:
        if it.image < 0 or it.image in seen:
            continue
        seen.add(it.image)
        if not lazy:
            yield it, tuple(qset.images[it.image].shape)
            continue
        if len(seen) > PROBE_FILES:
            return
        yield it, _header_shape(qset.images.folder, qset.images.paths[it.image])


def _header_shape(folder, rel: str) -> tuple:
    """The shape ``load_image`` would give, from the header alone (gray modes as it reads them)."""
    from PIL import Image

    from ..data.llava_json import _GRAY_MODES

    path = Path(folder) / rel
    if not path.is_file():
        raise UserError(f'image "{rel}" not found in {folder}')
    try:
        with Image.open(path) as im:
            (w, h), gray = im.size, im.mode in _GRAY_MODES
    except Exception as e:  # Pillow raises many types for broken files
        raise UserError(f"{path}: cannot decode image ({e}); use PNG or JPEG files") from None
    return (h, w) if gray else (h, w, 3)


def _check_images(run_dir: Path, cfg, qset) -> None:
    from ..data.run_data import image_side

    side = image_side(cfg.data)
    for it, shape in image_shapes(qset):
        where = f"{qset.name}: sample {it.id!r}"
        if cfg.route == "ascii" and len(shape) == 3:
            raise UserError(f"{where} has an RGB image, but run {run_dir.name} (route ascii) reads images as ASCII "
                            "art of grayscale pictures; use a route: llava run")
        if side is not None and tuple(shape[:2]) != (side, side):
            raise UserError(f"{where} has a {shape[1]}x{shape[0]} px image, but run {run_dir.name} was trained on "
                            f"{side}x{side} images ({cfg.data.dataset}); use a run trained on data like this")


def _check_text(run_dir: Path, model_dir: Path, qset) -> None:
    """Every character of every turn (``<image>`` aside) must be a known token of the run's tokenizer."""
    from ..data.llava_json import IMAGE_PLACEHOLDER
    from ..models.build import load_run_processor, text_tokenizer
    from ..models.tokenizer import check_no_unknown

    tok = text_tokenizer(load_run_processor(model_dir))
    unk = tok.unk_token_id
    if unk is None:
        return
    items = qset.items
    for lo in range(0, len(items), TOKENIZE_CHUNK):
        chunk = items[lo:lo + TOKENIZE_CHUNK]
        texts = ["\n".join(t.replace(IMAGE_PLACEHOLDER, "") for _, t in it.turns) for it in chunk]
        for it, text, ids in zip(chunk, texts, tok(texts, add_special_tokens=False)["input_ids"]):
            if unk in ids:
                check_no_unknown(tok, ids, text, f"{qset.name}: sample {it.id!r} (run {run_dir.name}'s tokenizer)")
