"""Reading and writing IDX files (the MNIST container format), gzipped or raw.

Validates the magic number, the dimensions and that the payload holds exactly the
announced number of items, so a truncated or corrupt download is reported, not silently
used. Not for: deciding which files a dataset has (see ``datasets.py``).
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte) and the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"{path}: corrupt or truncated gzip data ({e}); delete it and download it again") from None
    return raw


def read_idx(path: str | Path, expect_magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes; raise UserError on any inconsistency."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expect_magic:
        kind = "images (0x00000803)" if expect_magic == IMAGES_MAGIC else "labels (0x00000801)"
        raise UserError(f"{path}: wrong magic number 0x{magic:08x}, expected IDX {kind}; is this the right file?")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise UserError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims)) if dims else 0
    payload = len(data) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise UserError(f"{path}: {what}: header announces {'x'.join(map(str, dims))} = {expected} bytes, found {payload}; download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_images(path: str | Path) -> np.ndarray:
    arr = read_idx(path, IMAGES_MAGIC)
    if arr.ndim != 3:
        raise UserError(f"{path}: expected 3 dimensions (count, rows, cols), found {arr.ndim}")
    return arr


def read_labels(path: str | Path) -> np.ndarray:
    arr = read_idx(path, LABELS_MAGIC)
    if arr.ndim != 1:
        raise UserError(f"{path}: expected 1 dimension (count), found {arr.ndim}")
    return arr


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (used by tests and by users exporting their own data)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, mtime=0)
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
