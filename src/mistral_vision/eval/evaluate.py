"""Evaluate a trained run on one dataset split: predict what is missing, compute metrics,
write ``eval/<dataset>-<split>/metrics.json`` and its figures. Not for: the run report.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import read_jsonl_tolerant, write_json


def evaluate(run_dir: str | Path, dataset: str, split: str, data_dir: str | None = None, offline: bool = False,
             limit: int | None = None, progress: bool = True, backend: str | None = None,
             model: str | None = None, server_url: str | None = None, tta: str | None = None) -> dict:
    """Metrics of ``run_dir``'s model on ``dataset``/``split``, predicting what is missing first.

    ``tta`` (test-time augmentation) defaults to the run's ``eval.tta``; another choice is
    written to ``eval/<dataset>-<split>-tta-<name>/``. Returns the metrics plus ``eval_dir``.
    """
    from ..config import load_run_config
    from ..infer.records import meta_path_of
    from ..predict import predict
    from ..models.build import load_run_processor
    from ..tasks import make_task
    from .metrics import compute_metrics
    from .plots import plot_confusion, plot_gallery

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    res = predict(run_dir, dataset=dataset, split=split, data_dir=data_dir, offline=offline, limit=limit,
                  progress=progress, backend=backend, model=model, server_url=server_url, tta=tta)
    data = res.data                      # the images predict loaded, not read a second time
    stem = res.path.stem                 # <dataset>-<split>, tagged -tta-<name> for views not the run's
    records = read_jsonl_tolerant(res.path)
    by_index = {r["index"]: r for r in records}
    if len(by_index) != len(records):
        raise UserError(f"{res.path}: duplicate predictions; delete the file and predict again")
    records = [by_index[int(i)] for i in data.indices if int(i) in by_index]
    if len(records) != len(data):
        raise UserError(f"{res.path}: {len(data) - len(records)} of {len(data)} predictions missing; rerun evaluate")
    m = compute_metrics(records, data.label_names)
    m.update({"dataset": dataset, "split": split, "tta": res.tta, "predictions": str(res.path)})
    if res.new:
        m["predict_images_per_s"] = res.images_per_s
    if any("retries" in r for r in records):       # API predictions: how hard the server was to reach
        m["api"] = {"model": json.loads(meta_path_of(res.path).read_text())["model"],
                    "requests": len(records), "retries": sum(r.get("retries", 0) for r in records),
                    "unparseable_answers": m["unknown"]}
    out_dir = run_dir / "eval" / stem
    write_json(out_dir / "metrics.json", m)          # the numbers first: the figures below only illustrate them
    plot_confusion(m["confusion"], data.label_names, out_dir / "confusion.png",
                   f"{cfg.name}: {stem}  accuracy {m['accuracy']:.2%} (n={m['n']})")
    wrong = [r for r in records if r["label"] is not None and r["pred"] != r["label"]]
    wrong.sort(key=lambda r: -r["prob"] if r.get("prob") is not None else 0)   # most confident errors first
    wrong = wrong[:cfg.eval.misclassified]
    images = data.images[[int(np.flatnonzero(data.indices == r["index"])[0]) for r in wrong]] if wrong else data.images[:0]
    # What each image became for the model, with the run's own saved processor (none for API runs: render only).
    task = make_task(cfg, load_run_processor(run_dir / "model"), data.label_names)
    items = []
    for r, img, seen in zip(wrong, images, task.seen(images)):
        items.append({"image": img, "seen": seen.image, "art": seen.text, "seen_title": task.seen_title,
                      "caption": f"#{r['index']} true {r['label_name']} -> {r['pred_name']} " + (
                          f"({r['prob']:.2f})" if r.get("prob") is not None else f"({r.get('answer', '')[:20]!r})")})
    m["gallery"] = plot_gallery(items, out_dir / "misclassified.png",
                                f"most confident errors, {stem}")
    m["gallery_examples"] = [{"index": it["caption"], "art": it["art"]} for it in items[:3] if it["art"]]
    write_json(out_dir / "metrics.json", m)
    return {**m, "eval_dir": str(out_dir)}


def load_metrics(run_dir: Path) -> dict[str, dict]:
    out = {}
    for p in sorted((Path(run_dir) / "eval").glob("*/metrics.json")):
        out[p.parent.name] = json.loads(p.read_text())
    return out
