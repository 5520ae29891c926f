"""Prediction records and their resumable file: one JSONL line per image, plus a sidecar.

Predictions are appended to a JSONL (one record per image, carrying the image's index in its
split) and fsynced batch by batch; a rerun reads what is there, drops a torn last line, and
scores only the missing indices, so an interrupted run resumes without recomputing or
duplicating. A sidecar ``.meta.json`` ties the file to the model (and test-time views) that
wrote it; predictions from another model are refused, not mixed. Both the local scorer and
the API backend write through here. Not for: scoring, or choosing a backend (``predict.py``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io import read_jsonl_tolerant, write_json


@dataclass
class PredictResult:
    path: Path
    n: int
    new: int
    seconds: float
    tta: str = "none"                # the test-time views the file was predicted with
    data: object = None              # the ImageSet predicted (labels, indices, images), for evaluate

    @property
    def images_per_s(self) -> float:
        return self.new / self.seconds if self.seconds > 0 else float("nan")


def model_fingerprint(run_dir: Path) -> str:
    """Changes whenever the run's saved model files change (a retrained run)."""
    h = hashlib.sha256()
    for f in sorted((Path(run_dir) / "model").rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(Path(run_dir) / 'model')}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def resolve_images(cfg, dataset=None, split=None, images=None, data_dir=None, offline=False, limit=None):
    """-> (ImageSet, default output stem)."""
    from ..data.datasets import get_dataset, load_split
    from ..data.images import load_images

    names = get_dataset(cfg.data.dataset).label_names
    if images is not None:
        data = load_images(images, names, invert="auto")
        return data.subset(limit), f"images-{Path(images).stem or 'input'}"
    if dataset is None or split is None:
        raise UserError("predict needs --dataset and --split, or --images PATH")
    if get_dataset(dataset).label_names != names:
        raise UserError(f"this run's model knows the {cfg.data.dataset} classes; it cannot predict {dataset}")
    d = cfg.data
    data = load_split(dataset, split, data_dir if data_dir is not None else d.data_dir, offline or d.offline,
                      d.valid_size, d.split_seed)
    return data.subset(limit), f"{dataset}-{split}"


def meta_path_of(predictions: Path) -> Path:
    """The sidecar naming the model that wrote a predictions file."""
    return predictions.with_name(predictions.name + ".meta.json")


def prediction_record(data, i: int, pred: int, **extra) -> dict:
    """One JSONL record for image ``i`` of ``data`` predicted as class ``pred`` (-1: unknown)."""
    y = None if data.labels is None or data.labels[i] < 0 else int(data.labels[i])
    rec = {"index": int(data.indices[i]), "label": y, "label_name": None if y is None else data.label_names[y],
           "pred": pred, "pred_name": data.label_names[pred] if pred >= 0 else "unknown", **extra}
    if data.sources is not None:
        rec["source"] = data.sources[i]
    return rec


def open_predictions(out: Path, fingerprint: str, tta: str, run_dir: Path, stem: str, data) -> tuple[int, list[int]]:
    """Check ``out`` belongs to this model and views, record that, -> (records kept, positions still to predict)."""
    meta_path = meta_path_of(out)
    if meta_path.is_file() and out.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("model") != fingerprint:
            raise UserError(f"{out} holds predictions of another model (run retrained?); delete it to predict again")
        if meta.get("tta", "none") != tta:
            raise UserError(f"{out} holds predictions made with test-time augmentation {meta.get('tta', 'none')!r}, "
                            f"not {tta!r}; choose another --out or delete it")
    done = {r["index"] for r in read_jsonl_tolerant(out)}
    todo = [i for i in range(len(data)) if int(data.indices[i]) not in done]
    write_json(meta_path, {"model": fingerprint, "tta": tta, "run": str(run_dir), "source": stem, "n": len(data)})
    return len(done), todo
