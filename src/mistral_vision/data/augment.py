"""Image views and augmentation on the pixels, before any route sees them (ASCII rendering or a
vision tower's image processor). Training augmentation is drawn fresh each epoch from a
seeded generator (so a resumed run sees the same data). First an exact whole-pixel
translation (lossless, no interpolation), then - only if asked - a random rotation, zoom and
left-right mirror done for the whole batch at once with torch's ``affine_grid`` /
``grid_sample`` (bilinear, black fill). Evaluation images are never randomly augmented; test-time
augmentation (``infer/tta.py``) uses the fixed ``translate_images`` / ``mirror_images`` views here.
Not for: turning images into model inputs (``tasks/``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import UserError


def translate_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, H, W) batch moved down ``dy`` and right ``dx`` whole pixels (negative: up / left), filling with 0."""
    n, h, w = images.shape
    m = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (m, m), (m, m)))
    return padded[:, m - dy:m - dy + h, m - dx:m - dx + w]


def mirror_images(images: np.ndarray) -> np.ndarray:
    """(N, H, W) batch mirrored left-right."""
    return np.ascontiguousarray(images[:, :, ::-1])


def shift_images(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by a random whole-pixel (dy, dx) in [-max_shift, max_shift], filling with 0."""
    if max_shift <= 0:
        return images
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    rows = (dy[:, None] + np.arange(h))[:, :, None]                  # (n, h, 1)
    cols = (dx[:, None] + np.arange(w))[:, None, :]                  # (n, 1, w)
    return padded[np.arange(n)[:, None, None], rows, cols]


def augment_images(images: np.ndarray, rng: np.random.Generator, shift: int = 0, rotate: float = 0.0,
                   scale: float = 0.0, flip: bool = False) -> np.ndarray:
    """Randomly transformed copy of a (N, H, W) uint8 batch.

    Args:
        shift: maximum whole-pixel translation on each axis.
        rotate: maximum rotation in degrees.
        scale: maximum relative zoom (1 +- scale).
        flip: mirror half of the images left-right (garments, not digits).
    """
    images = shift_images(images, shift, rng)
    if not (rotate or scale or flip):
        return images
    import torch
    import torch.nn.functional as F

    n = images.shape[0]
    ang = np.deg2rad(rng.uniform(-rotate, rotate, n))
    zoom = 1.0 + rng.uniform(-scale, scale, n)
    mirror = np.where(rng.random(n) < 0.5, -1.0, 1.0) if flip else np.ones(n)
    cos, sin = np.cos(ang) / zoom, np.sin(ang) / zoom
    zero = np.zeros(n)
    # theta maps output coordinates to input coordinates (normalized to [-1, 1]).
    theta = np.stack([np.stack([cos * mirror, -sin, zero], 1), np.stack([sin * mirror, cos, zero], 1)], 1)
    out = []
    for start in range(0, n, 8192):                       # bounded memory for 60k-image sets
        sl = slice(start, start + 8192)
        x = torch.from_numpy(images[sl].astype(np.float32))[:, None]
        grid = F.affine_grid(torch.from_numpy(theta[sl]).float(), list(x.shape), align_corners=False)
        y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(y[:, 0].round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out)


# -- fixed views for test-time augmentation (infer/tta.py scores them) ---------------------
View = Callable[[np.ndarray], np.ndarray]


def _identity(images: np.ndarray) -> np.ndarray:
    return images


def _shift(dy: int, dx: int) -> View:
    return lambda images: translate_images(images, dy, dx)


_AXES = [(0, 1), (0, -1), (1, 0), (-1, 0)]
_DIAGONALS = [(1, 1), (1, -1), (-1, 1), (-1, -1)]

# name -> (views, what it is); the first view is always the image itself.
TTA_VIEWS: dict[str, tuple[list[View], str]] = {
    "none": ([_identity], "the image only"),
    "shift4": ([_identity] + [_shift(*d) for d in _AXES], "the image and its 4 one-pixel shifts (up/down/left/right)"),
    "shift8": ([_identity] + [_shift(*d) for d in _AXES + _DIAGONALS], "the image and its 8 one-pixel shifts"),
    "flip": ([_identity, mirror_images], "the image and its left-right mirror (garments, not digits)"),
    "shift4-flip": ([_identity] + [_shift(*d) for d in _AXES] + [mirror_images], "shift4 plus the mirror"),
}


def tta_views(name: str) -> list[View]:
    """The views of view set ``name``; unknown names list the known ones."""
    if name not in TTA_VIEWS:
        raise UserError(f"unknown test-time augmentation {name!r}; known: {', '.join(TTA_VIEWS)}")
    return TTA_VIEWS[name][0]
