"""Evaluate a run on a question set: answers (resumable), metrics per question type, figures.

``evaluate RUN --dataset mnist-vqa --split valid`` asks the synthetic split's questions;
``evaluate RUN --questions FILE --image-folder DIR`` a user's LLaVA JSON with answers. Both
write ``RUN/eval/<stem>/metrics.json`` with ``accuracy`` (Wilson 95% CI), ``n``, ``per_type``
(each type's accuracy, n, CI and majority baseline: the share of its commonest answer), ``img`` / ``no_img`` (questions with / without an image:
ScienceQA's IMG accuracy), ``failed`` (generated multiple-choice answers no option could be
parsed from, scored wrong), a per-type bar chart and a gallery of wrong answers with image,
question, answer and truth. Not for: answering (``infer/questions.py``).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from ..errors import UserError, one_of
from ..io import JsonlAppender, read_jsonl_tolerant, write_json
from .metrics import wilson


def _share(recs: list[dict]) -> dict:
    """Accuracy with its interval, and the majority baseline: always giving the commonest true answer."""
    from collections import Counter

    from ..infer.questions import normalize

    n = len(recs)
    c = sum(r["correct"] for r in recs)
    lo, hi = wilson(c, n)
    top = Counter(normalize(r["truth"]) for r in recs).most_common(1)
    return {"n": n, "correct": c, "accuracy": c / n if n else float("nan"), "ci95": [lo, hi],
            "majority": top[0][1] / n if top else float("nan")}


def question_metrics(records: list[dict]) -> dict:
    """Accuracy overall, per question type (and per asked type inside multiple choice), with / without image."""
    from ..infer.questions import FAILED

    scored = [r for r in records if r.get("truth") is not None]
    if not scored:
        raise UserError("no question has a reference answer to compare with")
    m = _share(scored)
    m["per_type"] = {t: _share([r for r in scored if r["type"] == t]) for t in sorted({r["type"] for r in scored})}
    m["majority"] = sum(v["majority"] * v["n"] for v in m["per_type"].values()) / m["n"]   # per type, summed
    img = [r for r in scored if r["has_image"]]
    m["img"] = _share(img) if img else None
    m["no_img"] = _share([r for r in scored if not r["has_image"]]) if len(img) < len(scored) else None
    m["failed"] = sum(r["pred"] == FAILED for r in scored)
    m["modes"] = {mode: sum(r["mode"] == mode for r in scored) for mode in sorted({r["mode"] for r in scored})}
    m["unanswered"] = len(records) - len(scored)
    return m


def resolve_questions(cfg, dataset=None, split=None, questions=None, image_folder=None, limit=None):
    """-> (QuestionSet, stem): a split of the run's question set, or a user's LLaVA JSON file."""
    from dataclasses import replace

    from ..data.questions import from_llava_json
    from ..data.run_data import load_questions
    from ..data.textdata import is_text_dataset
    from ..data.vqa import get_vqa, is_vqa

    if questions is not None:
        if image_folder is not None and not Path(image_folder).is_dir():
            raise UserError(f"image folder {image_folder} does not exist")
        qs = from_llava_json(questions, image_folder)
        return qs.subset(limit), f"questions-{Path(questions).stem}"
    if dataset is None or split is None:
        raise UserError("evaluate needs --dataset and --split, or --questions FILE --image-folder DIR")
    d = cfg.data
    if is_vqa(dataset):
        get_vqa(dataset)
        if d.format == "idx" and d.dataset != dataset:
            raise UserError(f"this run was trained on {d.dataset}; it cannot answer {dataset}")
        d = replace(d, dataset=dataset, format="idx")
    elif is_text_dataset(dataset):
        if not (d.format == "idx" and d.dataset == dataset):
            raise UserError(f"this run was not trained on {dataset}; it has no held-out {dataset} questions")
    elif not (d.format in ("llava-json", "text") and dataset == d.format):
        raise UserError(f"{dataset!r} is not a question set; known: fashion-vqa, llava-json or text (the run's "
                        "data.valid_path / test_path), mnist-vqa, text-skills; or --questions FILE")
    qs = load_questions(d, split, conversations=False)
    return qs.subset(limit), f"{dataset}-{split}"


def evaluate_questions(run_dir, dataset: str | None = None, split: str | None = None, questions: str | None = None,
                       image_folder: str | None = None, limit: int | None = None, progress: bool = True,
                       tta: str | None = None, answers: str = "score", batch_size: int | None = None) -> dict:
    """Answer what is missing, then metrics.json and figures in ``RUN/eval/<stem>``; -> metrics + ``eval_dir``."""
    from ..config import load_run_config
    from ..data.augment import tta_views
    from ..infer.questions import ANSWER_MODES, answer_questions
    from ..infer.records import model_fingerprint

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if answers not in ANSWER_MODES:                # before the model loads; the same line QuestionAnswerer gives
        raise one_of("answer mode", answers, ANSWER_MODES)
    tta = tta or cfg.eval.tta
    tta_views(tta)
    qs, stem = resolve_questions(cfg, dataset, split, questions, image_folder, limit)
    if tta != cfg.eval.tta:
        stem += f"-tta-{tta}"
    if answers != "score":
        stem += f"-{answers}"
    out_dir = run_dir / "eval" / stem
    pred_path = out_dir / "answers.jsonl"
    meta = {"model": model_fingerprint(run_dir), "tta": tta, "answers": answers, "n": len(qs)}
    meta_path = out_dir / "answers.meta.json"
    import json

    if pred_path.exists() and meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        raise UserError(f"{pred_path} holds answers of another model or setting; delete it to answer again")
    done = {r["index"]: r for r in read_jsonl_tolerant(pred_path)} if pred_path.exists() else {}
    todo = [i for i in range(len(qs)) if i not in done]
    write_json(meta_path, meta)
    seconds = 0.0
    if todo:
        with JsonlAppender(pred_path) as log:
            seconds = answer_questions(cfg, run_dir, qs, todo, log.write, batch_size, progress, tta, answers,
                                       f"answer {stem}")
        done = {r["index"]: r for r in read_jsonl_tolerant(pred_path)}
    records = [done[i] for i in range(len(qs)) if i in done]
    if len(records) != len(qs):
        raise UserError(f"{pred_path}: {len(qs) - len(records)} answers missing; rerun evaluate")
    m = question_metrics(records)
    m.update({"source": stem, "split": split, "dataset": dataset or "questions", "tta": tta, "answers": answers,
              "predictions": str(pred_path)})
    if todo:
        m["questions_per_s"] = round(len(todo) / seconds, 1) if seconds > 0 else None
    write_json(out_dir / "metrics.json", m)
    _figures(cfg, run_dir, qs, records, m, out_dir, stem)
    write_json(out_dir / "metrics.json", m)
    return {**m, "eval_dir": str(out_dir)}


def _figures(cfg, run_dir, qs, records, m, out_dir: Path, stem: str) -> None:
    from ..data.run_data import label_names_for
    from ..models.build import load_run_processor
    from ..tasks import make_task
    from .plots import plot_gallery, plot_per_type

    plot_per_type(m["per_type"], out_dir / "per_type.png",
                  f"{cfg.name}: {stem}  accuracy {m['accuracy']:.2%} (n={m['n']})")
    wrong = [r for r in records if r.get("truth") is not None and not r["correct"]]
    wrong.sort(key=lambda r: -(r["prob"] or 0))                  # most confident errors first
    wrong = wrong[:cfg.eval.misclassified]
    task = make_task(cfg, load_run_processor(run_dir / "model"), label_names_for(cfg.data))
    items = []
    for r in wrong:
        img = qs.images[r["image"]] if r["image"] >= 0 else None
        seen = task.seen(img[None])[0] if img is not None and img.ndim == 2 else None
        q = textwrap.fill(r["question"].replace("\n", " "), 34, max_lines=5, placeholder=" ...")
        pred = r["pred"] + (f" ({r['prob']:.2f})" if r.get("prob") is not None else "")
        items.append({"image": img if img is not None else _blank(), "seen": seen.image if seen else _blank(),
                      "art": seen.text if seen else None, "seen_title": task.seen_title,
                      "caption": f"[{r['type']}] {q}\nanswer: {textwrap.shorten(pred, 40)}\n"
                                 f"truth: {textwrap.shorten(str(r['truth']), 40)}"})
    m["gallery"] = plot_gallery(items, out_dir / "wrong_answers.png",
                                f"most confident wrong answers, {stem}")


def _blank():
    import numpy as np

    return np.zeros((8, 8), np.uint8)
