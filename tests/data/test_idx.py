import gzip

import numpy as np
import pytest

from mistral_vision.data.idx import read_images, read_labels, write_idx
from mistral_vision.errors import UserError


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_round_trip_raw_and_gz(tmp_path, name):
    arr = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, arr)
    assert np.array_equal(read_images(tmp_path / name), arr)


def test_wrong_magic(tmp_path):
    write_idx(tmp_path / "labels", np.arange(5, dtype=np.uint8))
    with pytest.raises(UserError, match="wrong magic number 0x00000801"):
        read_images(tmp_path / "labels")


def test_truncated_and_trailing(tmp_path):
    write_idx(tmp_path / "a", np.zeros((3, 4, 4), np.uint8))
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(UserError, match="truncated.*3x4x4 = 48 bytes, found 43"):
        read_images(tmp_path / "short")
    (tmp_path / "long").write_bytes(raw + b"xx")
    with pytest.raises(UserError, match="trailing bytes"):
        read_images(tmp_path / "long")


def test_corrupt_gzip(tmp_path):
    blob = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5))
    (tmp_path / "l.gz").write_bytes(blob[:-6])
    with pytest.raises(UserError, match="corrupt or truncated gzip"):
        read_labels(tmp_path / "l.gz")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_labels(tmp_path / "nope")
