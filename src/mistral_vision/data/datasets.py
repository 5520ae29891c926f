"""Dataset registry and split logic for MNIST-style IDX datasets.

Finds the files (``--data-dir``, else ``$MISTRAL_VISION_DATA``, else a per-user cache that
missing files are downloaded into with checksum verification), reads them, and carves the
fixed, seeded validation split out of train. Splits: ``train`` (train file minus valid),
``valid`` (``valid_size`` images drawn with ``split_seed`` from the train file; all tuning
happens here) and ``test`` (the official t10k files). Not for: user image folders
(``images.py``) or rendering.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError, one_of
from .idx import read_images, read_labels

SPLITS = ("train", "valid", "test")
DEFAULT_VALID_SIZE = 5000  # 1/12 of the 60k train images: +-0.14 pp standard error at 99% accuracy
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    md5: dict = field(default_factory=dict)  # gz file name -> md5 of the official download

    def files(self, split: str) -> tuple[str, str]:
        prefix = "t10k" if split == "test" else "train"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        label_names=tuple(str(d) for d in range(10)),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        label_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise one_of("dataset", name, DATASETS)
    return DATASETS[name]


@dataclass
class ImageSet:
    """Images of one split with their labels and where each came from."""

    images: np.ndarray                 # (N, H, W) uint8, white ink on black like MNIST
    labels: np.ndarray | None          # (N,) int64 class ids, or None when unknown
    label_names: tuple[str, ...]
    indices: np.ndarray                # (N,) the sample's index within its split
    sources: list[str] | None = None   # file paths for image folders
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, n: int | None) -> "ImageSet":
        if n is None or n >= len(self):
            return self
        return ImageSet(self.images[:n], None if self.labels is None else self.labels[:n], self.label_names,
                        self.indices[:n], None if self.sources is None else self.sources[:n], self.name)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mistral-vision" / "data"


def data_roots(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for dataset files, in order of precedence."""
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("MISTRAL_VISION_DATA")
    roots = [Path(env)] if env else []
    return roots + [cache_dir()]


def _find(spec: DatasetSpec, roots: list[Path], stem: str) -> Path | None:
    for root in roots:
        for folder in (root / spec.name, root):
            for name in (stem + ".gz", stem):
                if (folder / name).is_file():
                    return folder / name
    return None


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class DataUnavailable(UserError):
    """A dataset file that is neither on disk nor downloadable. ``short`` is the one-clause version for
    places that go on without it (a run skipping the test split), where the mirrors' errors are noise."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


def download(spec: DatasetSpec, stem: str, dest_root: Path | None = None) -> Path:
    """Download ``stem``.gz from the dataset's mirrors into the cache, verifying its MD5."""
    fname = stem + ".gz"
    dest = (dest_root or cache_dir()) / spec.name / fname
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    errors = []
    for mirror in spec.mirrors:
        try:
            with urllib.request.urlopen(mirror + fname, timeout=60) as r, open(tmp, "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
        except OSError as e:
            errors.append(f"{mirror}: {e}")
            continue
        got = _md5(tmp)
        if got != spec.md5[fname]:
            errors.append(f"{mirror}: checksum mismatch ({got})")
            tmp.unlink()
            continue
        os.replace(tmp, dest)
        return dest
    if tmp.exists():
        tmp.unlink()
    raise DataUnavailable(f"could not download {spec.name}/{fname} ({'; '.join(errors)}); "
                          f"put the file in a folder and pass --data-dir or set MISTRAL_VISION_DATA",
                          short=f"{spec.name}/{fname} is not here and could not be downloaded")


def locate(spec: DatasetSpec, split: str, data_dir=None, offline: bool = False) -> tuple[Path, Path]:
    roots = data_roots(data_dir)
    paths = []
    for stem in spec.files(split):
        p = _find(spec, roots, stem)
        if p is None:
            if offline:
                where = ", ".join(str(r) for r in roots)
                hint = (" (the official t10k test files; put them beside the train files)" if split == "test" else "")
                raise DataUnavailable(f"{spec.name}: {stem}[.gz] not found in {where}{hint}; "
                                      "pass --data-dir, set MISTRAL_VISION_DATA, or drop --offline to download",
                                      short=f"{spec.name}/{stem}[.gz] is not here (offline)")
            p = download(spec, stem)
        paths.append(p)
    return paths[0], paths[1]


def split_indices(n_train: int, valid_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) positions in the train file; fixed by ``seed``, independent of anything else."""
    if not 0 < valid_size < n_train:
        raise UserError(f"valid_size must be between 1 and {n_train - 1}, got {valid_size}")
    perm = np.random.default_rng(seed).permutation(n_train)
    return np.sort(perm[valid_size:]), np.sort(perm[:valid_size])


def load_split(name: str, split: str, data_dir=None, offline: bool = False,
               valid_size: int = DEFAULT_VALID_SIZE, split_seed: int = DEFAULT_SPLIT_SEED) -> ImageSet:
    """Load one split of a registered dataset."""
    spec = get_dataset(name)
    if split not in SPLITS:
        raise one_of("split", split, SPLITS)
    img_path, lab_path = locate(spec, split, data_dir, offline)
    images, labels = read_images(img_path), read_labels(lab_path)
    if len(images) != len(labels):
        raise UserError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if labels.size and labels.max() >= len(spec.label_names):
        raise UserError(f"{lab_path}: label {int(labels.max())} out of range for {name} (10 classes)")
    if split != "test":
        train_pos, valid_pos = split_indices(len(images), valid_size, split_seed)
        pos = train_pos if split == "train" else valid_pos
        images, labels = images[pos], labels[pos]
    return ImageSet(images=images, labels=labels.astype(np.int64), label_names=spec.label_names,
                    indices=np.arange(len(images)), name=f"{name}-{split}")
