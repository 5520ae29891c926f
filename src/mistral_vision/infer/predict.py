"""Batched, resumable prediction over a dataset split, an image folder or one image.

Predictions are appended to a JSONL (one record per image, carrying the image's index in
its split) and fsynced batch by batch; a rerun reads what is there, drops a torn last
line, and scores only the missing indices, so an interrupted run resumes without
recomputing or duplicating. A sidecar ``.meta.json`` ties the file to the model that wrote
it; predictions from another model are refused, not mixed. Not for: metrics.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import JsonlAppender, read_jsonl_tolerant, write_json


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


def load_run_config(run_dir: str | Path):
    from ..config import RunConfig, from_dict

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.json); run `mistral-vision train` first")
    return from_dict(RunConfig, json.loads(path.read_text()))


def model_fingerprint(run_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted((run_dir / "model").glob("*")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
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


def api_model(cfg, run_dir: Path, model: str | None = None) -> str:
    """The fine-tuned model an API-backed run predicts with: given, configured, or recorded."""
    if model or cfg.api.fine_tuned_model:
        return model or cfg.api.fine_tuned_model
    from ..api.jobs import recorded_job

    rec = recorded_job(run_dir)
    if not rec.get("fine_tuned_model"):
        raise UserError(f"{run_dir}: job {rec.get('job_id')} has no fine-tuned model yet (status "
                        f"{rec.get('status')}); `mistral-vision api wait {rec.get('job_id')} --run-dir {run_dir}`")
    return rec["fine_tuned_model"]


def predict(run_dir: str | Path, dataset: str | None = None, split: str | None = None, images: str | None = None,
            data_dir: str | None = None, offline: bool = False, limit: int | None = None,
            out: str | Path | None = None, batch_size: int | None = None, progress: bool = True,
            backend: str | None = None, model: str | None = None, server_url: str | None = None,
            tta: str | None = None) -> PredictResult:
    """Predict a split / folder / image with the run's model (local, or its API fine-tune).

    ``backend`` defaults to the run's; ``model`` / ``server_url`` apply to ``mistral-api``.
    ``tta`` (test-time augmentation views, ``infer/tta.py``) defaults to the run's ``eval.tta``;
    another choice writes to its own file (``<source>-tta-<name>.jsonl``).
    """
    from .tta import tta_views

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    backend = backend or cfg.backend
    if backend not in ("local", "mistral-api"):
        raise UserError(f"unknown backend {backend!r}; known: local, mistral-api")
    tta = tta or cfg.eval.tta
    tta_views(tta)                      # unknown names fail before any work
    if backend == "mistral-api" and tta != "none":
        raise UserError(f"test-time augmentation ({tta}) is for local models; use --tta none with the API backend")
    data, stem = resolve_images(cfg, dataset, split, images, data_dir, offline, limit)
    if tta != cfg.eval.tta:              # not the run's own views: a file of their own
        stem = f"{stem}-tta-{tta}"
    out = Path(out) if out else run_dir / "predictions" / f"{stem}.jsonl"
    meta_path = meta_path_of(out)
    if backend == "mistral-api":
        model = api_model(cfg, run_dir, model)
        fp = f"mistral-api:{model}"
    else:
        fp = model_fingerprint(run_dir)
    if meta_path.is_file() and out.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("model") != fp:
            raise UserError(f"{out} holds predictions of another model (run retrained?); delete it to predict again")
        if meta.get("tta", "none") != tta:
            raise UserError(f"{out} holds predictions made with test-time augmentation {meta.get('tta', 'none')!r}, "
                            f"not {tta!r}; choose another --out or delete it")
    done = {r["index"] for r in read_jsonl_tolerant(out)}
    todo = [i for i in range(len(data)) if int(data.indices[i]) not in done]
    write_json(meta_path, {"model": fp, "tta": tta, "run": str(run_dir), "source": stem, "n": len(data)})
    if not todo:
        return PredictResult(out, len(done), 0, 0.0, tta, data)
    if backend == "mistral-api":
        from ..api.predict import score_with_api

        with JsonlAppender(out) as log:
            written, seconds = score_with_api(cfg, data, np.asarray(todo), log.write, model, server_url, progress)
        return PredictResult(out, len(done) + written, written, seconds, tta, data)
    return _predict_local(cfg, run_dir, data, todo, out, stem, batch_size, progress, len(done), tta)


def _predict_local(cfg, run_dir, data, todo, out, stem, batch_size, progress, n_done, tta) -> PredictResult:
    import torch
    from tqdm.auto import tqdm

    from ..models.backbones import load_trained
    from ..task import AsciiTask
    from .scorer import LabelScorer
    from .tta import score_views, tta_views
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tok, _ = load_trained(run_dir / "model", cfg.model.dtype if device == "cuda" else "float32")
    model.to(device)
    task = AsciiTask.from_config(cfg, tok, data.label_names)
    scorer = LabelScorer(model, task.label_ids, tok.pad_token_id, tok.eos_token_id, cfg.eval.score_eos)
    bs = batch_size or cfg.eval.batch_size
    views = tta_views(tta)
    t0 = time.time()
    show_bar = progress and sys.stderr.isatty()
    with JsonlAppender(out) as log, tqdm(total=len(todo), disable=not show_bar, desc=f"predict {stem}",
                                         unit="img", mininterval=1.0, dynamic_ncols=True) as bar:
        for start in range(0, len(todo), bs):
            sel = np.asarray(todo[start:start + bs])
            probs = torch.softmax(score_views(scorer, task, data.images[sel], views), -1).numpy()
            recs = []
            for row, i in enumerate(sel.tolist()):
                pred = int(probs[row].argmax())
                recs.append(prediction_record(data, i, pred, prob=round(float(probs[row, pred]), 6),
                                              probs=[round(float(p), 6) for p in probs[row]]))
            log.write(recs)
            bar.update(len(sel))
    seconds = time.time() - t0
    return PredictResult(out, n_done + len(todo), len(todo), seconds, tta, data)
