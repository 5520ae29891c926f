import hashlib

import numpy as np
import pytest

from mistral_vision.data import datasets
from mistral_vision.data.datasets import DatasetSpec, load_split, split_indices
from mistral_vision.data.idx import write_idx
from mistral_vision.errors import UserError
from tests.conftest import write_dataset


def test_splits_are_fixed_disjoint_and_complete(data_dir):
    tr = load_split("mnist", "train", data_dir, True, valid_size=100)
    va = load_split("mnist", "valid", data_dir, True, valid_size=100)
    te = load_split("mnist", "test", data_dir, True, valid_size=100)
    assert (len(tr), len(va), len(te)) == (500, 100, 200)
    a, b = split_indices(600, 100, 0)
    assert not set(a) & set(b) and len(set(a) | set(b)) == 600
    assert np.array_equal(split_indices(600, 100, 0)[1], b)          # same seed, same split
    assert not np.array_equal(split_indices(600, 100, 1)[1], b)      # the seed matters
    assert list(va.indices) == list(range(100))
    assert va.label_names[0] == "0"


def test_fashion_label_names_and_raw_files(data_dir):
    te = load_split("fashion-mnist", "test", data_dir, True, valid_size=100)
    assert te.label_names[0] == "T-shirt/top" and te.label_names[9] == "Ankle boot"


def test_env_var_and_explicit_dir(tmp_path, data_dir, monkeypatch):
    other = tmp_path / "other"
    write_dataset(other, "mnist", n_train=300, n_test=0)
    monkeypatch.setenv("MISTRAL_VISION_DATA", str(other))
    assert len(load_split("mnist", "train", None, True, valid_size=100)) == 200   # env
    assert len(load_split("mnist", "train", data_dir, True, valid_size=100)) == 500  # explicit wins


def test_missing_test_files_offline(tmp_path):
    write_dataset(tmp_path / "d", "mnist", n_test=0)
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.*not found.*official t10k"):
        load_split("mnist", "test", tmp_path / "d", offline=True)


def test_unknown_dataset_and_split(data_dir):
    with pytest.raises(UserError, match="unknown dataset 'cifar'; known: fashion-mnist, mnist"):
        load_split("cifar", "train", data_dir)
    with pytest.raises(UserError, match="unknown split 'dev'"):
        load_split("mnist", "dev", data_dir)


def test_label_count_mismatch(tmp_path):
    d = tmp_path / "d" / "mnist"
    write_idx(d / "train-images-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(UserError, match="10 images but .* 9 labels"):
        load_split("mnist", "train", tmp_path / "d", True, valid_size=2)


def test_download_verifies_checksum(tmp_path, monkeypatch):
    src = tmp_path / "mirror"
    write_idx(src / "train-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8))
    good = hashlib.md5((src / "train-labels-idx1-ubyte.gz").read_bytes()).hexdigest()
    spec = DatasetSpec("toy", tuple("0123456789"), (src.as_uri() + "/",), {"train-labels-idx1-ubyte.gz": good})
    path = datasets.download(spec, "train-labels-idx1-ubyte", tmp_path / "cache")
    assert path.read_bytes() == (src / "train-labels-idx1-ubyte.gz").read_bytes()
    bad = DatasetSpec("toy2", tuple("0123456789"), (src.as_uri() + "/",), {"train-labels-idx1-ubyte.gz": "0" * 32})
    with pytest.raises(UserError, match="checksum mismatch"):
        datasets.download(bad, "train-labels-idx1-ubyte", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "toy2").glob("*"))   # nothing half-written left behind
