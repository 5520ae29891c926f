"""ASCII rendering of image batches, and its inverse.

Vectorized over the whole batch: the resize is two small matrix products per batch (area
averaging when shrinking, bilinear when enlarging), quantization is one ``searchsorted``
style integer op, and the characters come from one table lookup on a byte array. There is
no per-pixel Python loop. Every character of the ramp is used: intensities are split into
``len(ramp)`` equal bins, bin 0 (background) is always rendered as a space.
Not for: prompt wording (``prompts.py``) or tokenization.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import UserError

# Ink ramp from faint to dark, pure ASCII. The space in front is the background.
DEFAULT_RAMP = " .:-=+*#%@"
# The original project's 100x50 format (width x height), for comparison runs.
ORIGINAL_SIZE = (100, 50)


def check_ramp(ramp: str) -> str:
    if len(ramp) < 2:
        raise UserError(f"ramp {ramp!r} needs at least 2 characters (background space + ink)")
    if ramp[0] != " ":
        raise UserError(f"ramp {ramp!r} must start with a space: the background is rendered as spaces")
    bad = [c for c in ramp if not (32 <= ord(c) < 127)]
    if bad:
        raise UserError(f"ramp {ramp!r} has non-printable-ASCII characters {bad!r}; use printable ASCII only")
    if len(set(ramp)) != len(ramp):
        raise UserError(f"ramp {ramp!r} repeats a character; each level needs its own character")
    return ramp


@lru_cache(maxsize=64)
def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: box-filter area averaging when shrinking, bilinear when enlarging."""
    m = np.zeros((n_out, n_in), dtype=np.float32)
    if n_out <= n_in:
        scale = n_in / n_out
        for o in range(n_out):
            lo, hi = o * scale, (o + 1) * scale
            for i in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                m[o, i] = min(hi, i + 1) - max(lo, i)
            m[o] /= m[o].sum()
    else:
        for o in range(n_out):
            x = (o + 0.5) * n_in / n_out - 0.5
            x0 = int(np.floor(x))
            t = x - x0
            for i, w in ((x0, 1 - t), (x0 + 1, t)):
                m[o, min(max(i, 0), n_in - 1)] += w
    return m


def resize_batch(images: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a (N, H, W) batch to (N, height, width) float32 in [0, 255]."""
    ry = _resample_matrix(images.shape[1], height)
    rx = _resample_matrix(images.shape[2], width)
    x = images.astype(np.float32)
    return np.matmul(np.matmul(ry, x), rx.T)


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"render_ascii expects a uint8 array (N, H, W); got {images.dtype} with shape {images.shape}")
    return images


def quantize(images: np.ndarray, width: int, height: int, levels: int, invert: bool = False,
             crop: int = 0) -> np.ndarray:
    """(N, height, width) uint8 ramp indices; 0 is background."""
    images = _check_images(images)
    if crop:
        if 2 * crop >= min(images.shape[1:]):
            raise UserError(f"crop {crop} removes the whole {images.shape[1]}x{images.shape[2]} image")
        images = images[:, crop:-crop, crop:-crop]
    if width < 1 or height < 1:
        raise UserError(f"ASCII size must be positive, got {width}x{height}")
    x = resize_batch(images, width, height)
    if invert:
        x = 255.0 - x
    # Equal-width bins over [0, 256): every ramp character is reachable.
    return np.minimum((x * (levels / 256.0)).astype(np.int64), levels - 1).astype(np.uint8)


def render_ascii(images, width: int = 28, height: int = 28, ramp: str = DEFAULT_RAMP,
                 invert: bool = False, crop: int = 0) -> list[str]:
    """Render a uint8 batch (N, H, W) as ASCII art, one string per image.

    Args:
        images: uint8 array (N, H, W) (or one (H, W) image), white ink on black.
        width, height: characters per line and number of lines.
        ramp: background space followed by ink characters from faint to dark.
        invert: render dark-on-light images (invert intensities first).
        crop: pixels removed from every border before resizing.
    Returns:
        ``height`` lines of exactly ``width`` characters joined by ``\\n`` (no trailing newline).
    """
    ramp = check_ramp(ramp)
    idx = quantize(images, width, height, len(ramp), invert, crop)
    table = np.frombuffer(ramp.encode("ascii"), dtype=np.uint8)
    chars = table[idx]                                             # (N, h, w) bytes
    n = chars.shape[0]
    lines = np.concatenate([chars, np.full((n, height, 1), ord("\n"), np.uint8)], axis=2)
    flat = lines.reshape(n, -1)[:, :-1]                            # drop the final newline
    blob = flat.tobytes()
    step = flat.shape[1]
    return [blob[i * step:(i + 1) * step].decode("ascii") for i in range(n)]


def ascii_to_image(art: str, ramp: str = DEFAULT_RAMP, width: int | None = None) -> np.ndarray:
    """Inverse of :func:`render_ascii`: (lines, width) uint8 with each character's bin centre.

    Short lines are padded with background; characters not in the ramp raise UserError.
    """
    ramp = check_ramp(ramp)
    lines = art.split("\n")
    w = width or max((len(line) for line in lines), default=0)
    lut = np.full(128, -1, dtype=np.int64)
    lut[np.frombuffer(ramp.encode("ascii"), dtype=np.uint8)] = np.arange(len(ramp))
    out = np.zeros((len(lines), w), dtype=np.int64)
    for r, line in enumerate(lines):
        if not line.isascii():
            col = next(i for i, ch in enumerate(line) if not ch.isascii())
            raise UserError(f"character {line[col]!r} at line {r + 1}, column {col + 1} is not in the ramp {ramp!r}")
        raw = np.frombuffer(line.ljust(w).encode("ascii"), dtype=np.uint8)[:w]
        levels = lut[raw]
        if (levels < 0).any():
            col = int(np.argmax(levels < 0))
            raise UserError(f"character {line[col]!r} at line {r + 1}, column {col + 1} is not in the ramp {ramp!r}")
        out[r] = levels
    centres = ((np.arange(len(ramp)) + 0.5) * 256.0 / len(ramp)).astype(np.int64)
    centres[0] = 0
    return np.clip(centres[out], 0, 255).astype(np.uint8)
