"""ASCII rendering of image batches, and its inverse.

Vectorized over the whole batch: sizes that divide evenly are box-averaged with a reshape
and binned in exact integer arithmetic; other sizes use two large matrix products (area
averaging when shrinking, bilinear when enlarging); the characters come from one table
lookup on a byte array. There is
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
    """Resize a (N, H, W) batch to (N, height, width) float32 in [0, 255].

    Two large matrix products over the whole batch (rows then columns), not N small ones.
    """
    n, h_in, w_in = images.shape
    x = images.astype(np.float32)
    if w_in != width:
        x = (x.reshape(n * h_in, w_in) @ _resample_matrix(w_in, width).T).reshape(n, h_in, width)
    if h_in != height:
        xt = np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(n * width, h_in)
        x = (xt @ _resample_matrix(h_in, height).T).reshape(n, width, height).transpose(0, 2, 1)
    return x


@lru_cache(maxsize=64)
def _level_table(levels: int) -> np.ndarray:
    """Ramp index of every uint8 intensity: floor(v * levels / 256)."""
    return ((np.arange(256, dtype=np.uint32) * levels) >> 8).astype(np.uint8)


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"render_ascii expects a uint8 array (N, H, W); got {images.dtype} with shape {images.shape}")
    return images


def quantize(images: np.ndarray, width: int, height: int, levels: int, invert: bool = False,
             crop: int = 0) -> np.ndarray:
    """(N, height, width) uint8 ramp indices; 0 is background.

    Bins are equal-width over [0, 256), so every ramp character is reachable. When the size
    divides evenly (same size, or 28 -> 14, 20 -> 10 ...), each cell's mean is binned with
    exact integer arithmetic; other sizes go through float area / bilinear resampling.
    """
    images = _check_images(images)
    if crop:
        if 2 * crop >= min(images.shape[1:]):
            raise UserError(f"crop {crop} removes the whole {images.shape[1]}x{images.shape[2]} image")
        images = images[:, crop:-crop, crop:-crop]
    if width < 1 or height < 1:
        raise UserError(f"ASCII size must be positive, got {width}x{height}")
    if invert:
        images = 255 - images
    n, h_in, w_in = images.shape
    if h_in % height == 0 and w_in % width == 0:
        fy, fx = h_in // height, w_in // width
        if fy == fx == 1:                                  # one pixel per character: one lookup
            return np.take(_level_table(levels), images)
        cells = fy * fx
        dtype = np.uint16 if 255 * cells * levels < 2 ** 16 else np.uint32
        sums = images.reshape(n, height, fy, width, fx).sum(axis=(2, 4), dtype=dtype)
        # floor(mean * levels / 256) without rounding error
        return ((sums * dtype(levels)) // dtype(256 * cells)).astype(np.uint8)
    x = resize_batch(images, width, height)
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
    images = _check_images(images)
    table = np.frombuffer(ramp.encode("ascii"), dtype=np.uint8)
    n = images.shape[0]
    out = np.empty((n, height, width + 1), dtype=np.uint8)
    out[:, :, width] = ord("\n")
    inner = out[:, :, :width]
    if crop == 0 and images.shape[1:] == (height, width):
        # One pixel per character: a single 256-entry lookup from intensity to character.
        char_of = np.take(table, _level_table(len(ramp)))
        np.take(char_of[::-1] if invert else char_of, images, out=inner, mode="clip")
    else:
        np.take(table, quantize(images, width, height, len(ramp), invert, crop), out=inner, mode="clip")
    blob = out.tobytes()
    step = height * (width + 1)
    return [blob[i * step:(i + 1) * step - 1].decode("ascii") for i in range(n)]


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
        codes = np.frombuffer(line.ljust(w)[:w].encode("utf-32-le"), dtype=np.uint32)
        levels = np.where(codes < 128, lut[np.minimum(codes, 127)], -1)   # non-ASCII is never in the ramp
        if (levels < 0).any():
            col = int(np.argmax(levels < 0))
            raise UserError(f"character {line[col]!r} at line {r + 1}, column {col + 1} is not in the ramp {ramp!r}")
        out[r] = levels
    centres = ((np.arange(len(ramp)) + 0.5) * 256.0 / len(ramp)).astype(np.int64)
    centres[0] = 0
    return np.clip(centres[out], 0, 255).astype(np.uint8)
