"""Subsets of a training pool and their manifests: the pool a selection chooses from, its hash, ``selection.json``.

A pool is what ``mistral-vision select`` chooses from and what ``data.select`` narrows: a LLaVA JSON
file (its samples as written, images in their folder), a synthetic VQA set's training conversations,
or a classification dataset's training images as one question each (the LLaVA route's ``ask``
question). A pool's hash ties a selection to its data: a file's sha256, or for a generated pool the
sha256 of its samples' canonical JSON followed by its images' bytes. ``selection.json`` holds what
was chosen (ids in the order the method chose them, a score each) and everything but the time it took,
which goes to ``selection-timing.json`` so that the same inputs give a byte-identical manifest.
Not for: choosing (``select/``, which may need a model; this module never imports one).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .questions import Item, QuestionSet

KIND = "mistral-vision selection"
MANIFEST, TIMING, SUBSET = "selection.json", "selection-timing.json", "train.json"
_OWN_KEYS = ("id", "image", "conversations", "candidates")
# The data settings that define each generated pool (data_dir / offline only say where the files are).
_SETTINGS = {"vqa": ("dataset", "valid_size", "split_seed", "grid", "fill", "train_canvases", "turns",
                     "question_types", "vqa_seed"),
             "classification": ("dataset", "valid_size", "split_seed")}


@dataclass
class Pool:
    data: str                         # the LLaVA JSON path or the dataset id, as given
    qset: QuestionSet                 # one item per sample, in order
    samples: list[dict]               # each item's LLaVA JSON sample (a file's as written)
    sha256: str
    image_folder: str | None = None   # a file's image folder as given; None: generated, images in memory
    settings: dict | None = None      # a generated pool's data settings (what regenerates it)

    def __len__(self) -> int:
        return len(self.qset.items)

    @property
    def ids(self) -> list[str]:
        return [it.id for it in self.qset.items]


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def generated_sha256(samples: list[dict], images: np.ndarray) -> str:
    """A generated pool's hash: its samples' canonical JSON, then its images' shape and bytes."""
    h = hashlib.sha256(json.dumps(samples, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    images = np.ascontiguousarray(images, dtype=np.uint8)
    h.update(repr(images.shape).encode())
    h.update(images.tobytes())
    return h.hexdigest()


def image_name(row: int) -> str:
    """Where a generated pool's image ``row`` is written, relative to the image folder (as ``prepare`` names it)."""
    return f"train/{row:06d}.png"


def file_pool(path, image_folder=None) -> Pool:
    """A LLaVA JSON file (checked; its images not read into memory) as a pool."""
    from .llava_json import read_llava_json
    from .questions import from_llava_json

    qs = from_llava_json(path, image_folder, in_memory=False)
    return Pool(str(path), qs, read_llava_json(path), file_sha256(path),
                None if image_folder is None else str(image_folder))


def vqa_pool(d, split=None) -> Pool:
    """A synthetic VQA set's training conversations (captions included) as a pool; ``split``: already generated."""
    from .questions import from_vqa, vqa_json_samples, vqa_split

    split = split if split is not None else vqa_split(d, "train")
    samples = vqa_json_samples(split, True, image_name)
    return Pool(d.dataset, from_vqa(split, True), samples, generated_sha256(samples, split.images), None,
                _settings(d, "vqa"))


def classification_pool(d, data=None) -> Pool:
    """A classification dataset's training images (after the validation carve-out), one ``ask`` question each."""
    from ..prompts import resolve_template
    from .datasets import load_split
    from .llava_json import IMAGE_PLACEHOLDER

    if data is None:
        data = load_split(d.dataset, "train", d.data_dir, d.offline, d.valid_size, d.split_seed)
    names = data.label_names
    question = resolve_template("ask").format(art=IMAGE_PLACEHOLDER, labels=", ".join(names), dataset=d.dataset,
                                              width=0, height=0)
    qs = QuestionSet(f"{d.dataset}-train", data.images, [], names)
    samples = []
    for row, label in enumerate(data.labels.tolist()):
        sid, answer = f"{d.dataset}-train-{row:05d}", names[label]
        qs.items.append(Item(sid, row, [("human", question), ("gpt", answer)], "class", tuple(names), answer))
        samples.append({"id": sid, "image": image_name(row), "conversations": [
            {"from": "human", "value": question}, {"from": "gpt", "value": answer}],
            "type": "class", "class": answer, "candidates": list(names)})
    return Pool(d.dataset, qs, samples, generated_sha256(samples, data.images), None, _settings(d, "classification"))


def config_pool(d) -> Pool:
    """The training pool a run's data section describes (before ``data.train_limit``)."""
    from .vqa import is_vqa

    if d.format == "llava-json":
        return file_pool(d.path, d.image_folder)
    return vqa_pool(d) if is_vqa(d.dataset) else classification_pool(d)


def _settings(d, kind: str) -> dict:
    out = {k: getattr(d, k) for k in _SETTINGS[kind]}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


# -- fields to stratify by ------------------------------------------------------------------------
def fields_of(pool: Pool) -> list[str]:
    """The fields some item of the pool has: ``type`` always, then every scalar sample key (class, subject...)."""
    keys = {k for s in pool.samples for k, v in s.items()
            if k not in _OWN_KEYS and isinstance(v, (str, int, float, bool))}
    return ["type"] + sorted(keys - {"type"})


def field_values(pool: Pool, field: str) -> list[str | None]:
    """Each item's value of ``field`` as text (None where the sample lacks it); one line if no item has it."""
    if field == "type":
        return [it.type for it in pool.qset.items]
    values = [None if s.get(field) is None or isinstance(s.get(field), (list, dict)) else str(s[field])
              for s in pool.samples]
    if all(v is None for v in values):
        raise UserError(f"field {field!r}: no sample of {pool.data} has it; fields present: "
                        f"{', '.join(fields_of(pool))}")
    return values


# -- keep ------------------------------------------------------------------------------------------
def resolve_keep(keep, pool_size: int, flag: str = "--keep") -> int:
    """A count (whole, >= 1) or a fraction (0 < f < 1, rounded half up) of ``pool_size``, within the pool."""
    if isinstance(keep, bool) or not (keep >= 1 and float(keep).is_integer() or 0 < keep < 1):
        raise UserError(f"{flag} {keep}: a count of examples (1 or more, whole) or a fraction of the pool "
                        "(between 0 and 1)")
    n = int(keep) if keep >= 1 else math.floor(keep * pool_size + 0.5)
    if n < 1:
        raise UserError(f"{flag} {keep}: keeps no example of a pool of {pool_size}")
    if n > pool_size:
        raise UserError(f"{flag} {keep}: larger than the pool, which has {pool_size} examples")
    return n


# -- manifests ---------------------------------------------------------------------------------------
def manifest(pool: Pool, method: str, params: dict, seed: int, keep, count: int, ids: list[str],
             scores: list, groups: list | None = None) -> dict:
    """The ``selection.json`` of a finished selection: everything but the time it took."""
    out = {"kind": KIND, "version": 1, "method": method, "params": params, "seed": seed,
           "keep": {"asked": keep, "count": count},
           "source": {"data": pool.data, "image_folder": pool.image_folder, "sha256": pool.sha256, "pool": len(pool)},
           "ids": list(ids), "scores": [_score(s) for s in scores]}
    if pool.settings is not None:
        out["source"]["settings"] = pool.settings
    if groups is not None:
        out["groups"] = [g if g is None or isinstance(g, str) else int(g) for g in groups]
    return out


def _score(s):
    """Six significant digits: what a method's score says, and last-bit noise cannot change the file."""
    if s is None or not math.isfinite(float(s)):
        return None
    return float(f"{float(s):.6g}")


def write_selection(out, pool: Pool, chosen: dict, seconds: float, subset: bool = True, log=print) -> Path:
    """``out/selection.json`` (+ ``selection-timing.json``; with ``subset``, ``train.json``: the chosen samples in
    pool order, their images where they are, or for a generated pool written once into ``out/images``).
    Each file is written atomically, the manifest last, so a manifest means the rest is there."""
    from ..io import atomic_dir, write_json
    from .llava_json import write_llava_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if subset:
        rows = sorted(pool_positions(pool, chosen["ids"]))
        if pool.settings is not None:
            from PIL import Image

            with atomic_dir(out / "images") as tmp:
                for r in sorted({pool.qset.items[i].image for i in rows}):
                    (tmp / image_name(r)).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.asarray(pool.qset.images[r])).save(tmp / image_name(r))
            log(f"{out / 'images'}: the chosen images (a generated pool has no image folder of its own)")
        write_llava_json(out / SUBSET, [pool.samples[i] for i in rows])
    write_json(out / TIMING, {"seconds": round(seconds, 3)})
    write_json(out / MANIFEST, chosen)
    return out / MANIFEST


def pool_positions(pool: Pool, ids: list[str]) -> list[int]:
    where = {sid: i for i, sid in enumerate(pool.ids)}
    missing = [sid for sid in ids if sid not in where]
    if missing:
        raise UserError(f"selection: id {missing[0]!r} is not in {pool.data}")
    return [where[sid] for sid in ids]


def is_manifest(path) -> bool:
    """True if ``path`` is a selection.json (a JSON object), not a LLaVA JSON file (a list): the first byte tells."""
    try:
        with open(path, "rb") as f:
            head = f.read(256).lstrip()
    except OSError:
        return False
    return head.startswith(b"{")


def read_manifest(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such selection file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a selection.json ({e})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UserError(f"{path}: not a selection.json written by `mistral-vision select`")
    return data


def check_source(m: dict, path, sha: str, what: str) -> None:
    """One line if manifest ``m`` (read from ``path``) was made from another pool than ``what`` (hash ``sha``)."""
    made = m["source"]["sha256"]
    if made != sha:
        raise UserError(f"{path}: this selection was made from {m['source']['data']} (sha256 {made[:12]}...), but "
                        f"{what} hashes to {sha[:12]}...; select again from this data")


def selection_file(d, run_dir) -> Path | None:
    """The manifest a run's ``data.select`` names: the path given, or what a spec resolved into
    (``RUN/selection/selection.json``, written by ``mistral-vision run`` / ``train`` before training)."""
    if d.select is None:
        return None
    if isinstance(d.select, str):
        return Path(d.select)
    path = Path(run_dir) / "selection" / MANIFEST
    if not path.is_file():
        raise UserError(f"data.select: {path} is not made yet; `mistral-vision run` and `train` select before "
                        "they train")
    return path


def select_questions(qs: QuestionSet, path, sha: str, what: str) -> QuestionSet:
    """The items of ``qs`` a manifest chose, in the pool's order, after checking it was made from this pool."""
    m = read_manifest(path)
    check_source(m, path, sha, what)
    chosen = set(m["ids"])
    items = [it for it in qs.items if it.id in chosen]
    if len(items) != len(chosen):
        raise UserError(f"{path}: {len(chosen) - len(items)} chosen ids are not in {what}")
    return QuestionSet(qs.name, qs.images, items, qs.label_names)


def select_images(data, d, path):
    """The rows of a classification training split (``ImageSet``) a manifest chose, in order."""
    from .datasets import ImageSet

    pool = classification_pool(d, data)
    m = read_manifest(path)
    check_source(m, path, pool.sha256, f"{d.dataset}'s training images")
    rows = np.array(sorted(pool_positions(pool, m["ids"])), dtype=np.int64)
    return ImageSet(data.images[rows], data.labels[rows], data.label_names, data.indices[rows],
                    None if data.sources is None else [data.sources[i] for i in rows], data.name)


def manifest_questions(path, image_folder=None) -> QuestionSet:
    """A selection of a LLaVA JSON file read as a question set (a stage's ``data``): its source file's chosen
    samples, images from ``image_folder`` or else the folder the selection was made with."""
    from .questions import from_llava_json

    m = read_manifest(path)
    src = m["source"]
    if src.get("settings") is not None:
        raise UserError(f"{path}: a selection of the generated set {src['data']}; as a stage's data use its "
                        f"train.json with the images beside it, or data.select on a run of {src['data']}")
    folder = image_folder or src.get("image_folder")
    qs = from_llava_json(src["data"], folder, Path(src["data"]).stem)
    return select_questions(qs, path, file_sha256(src["data"]), src["data"])
