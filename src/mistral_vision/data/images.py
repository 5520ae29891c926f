"""Users' own images: a single file, or a folder with one subfolder per class.

Images are decoded with Pillow, converted to grayscale, padded to a square (aspect kept)
and resized to ``size`` so they stack like MNIST. Dark-on-light pictures are inverted to
MNIST's light-on-dark when ``invert="auto"`` finds a light border. Not for: IDX datasets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .datasets import ImageSet

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


DIGIT_SIDE = 28              # MNIST / Fashion-MNIST images, and what classification runs are trained on


def load_image(path: str | Path, size: int | None = DIGIT_SIDE, invert: bool | str = "auto") -> np.ndarray:
    """Decode one image to a (size, size) uint8 array, white ink on black; ``size`` None keeps its longer side."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            gray = np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise UserError(f"{path}: cannot decode image ({e}); use PNG or JPEG files") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if invert is True or (invert == "auto" and border.mean() > 127):
        gray = 255 - gray
    h, w = gray.shape
    side = max(h, w)
    size = size or side
    bg = int(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])))
    square = np.full((side, side), bg, dtype=np.uint8)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = gray
    out = Image.fromarray(square).resize((size, size), Image.Resampling.BOX if side >= size else Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.uint8)


def load_images(path: str | Path, label_names: tuple[str, ...], size: int = 28,
                invert: bool | str = "auto") -> ImageSet:
    """Load a single image, or a folder of class subfolders (or of loose images).

    Subfolder names that match one of ``label_names`` give ground-truth labels; images whose
    folder matches no label (or loose images) are kept with label -1 (unknown), never dropped.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    lookup = {name.lower(): i for i, name in enumerate(label_names)}
    images, labels = [], []
    for f in files:
        images.append(load_image(f, size, invert))
        folder = f.parent.name.lower() if f.parent != path else ""
        labels.append(lookup.get(folder, -1))
    labels_arr = np.asarray(labels, dtype=np.int64)
    return ImageSet(images=np.stack(images), labels=labels_arr if (labels_arr >= 0).any() else None,
                    label_names=label_names, indices=np.arange(len(files)),
                    sources=[str(f) for f in files], name=path.stem)
