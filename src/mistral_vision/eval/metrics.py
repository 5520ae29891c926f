"""Classification metrics from prediction records.

Accuracy with a Wilson 95% interval, the majority-class baseline (the original API run
scored below it), per-class precision / recall / F1, macro F1, confusion matrix, top
confusions, mean negative log-likelihood, and how many answers were unparseable
(``pred`` null: kept and counted, never dropped). Not for: plotting.
"""
from __future__ import annotations

import math

import numpy as np


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = correct / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def compute_metrics(records: list[dict], label_names: tuple[str, ...]) -> dict:
    """Metrics over records that have a ground-truth label."""
    k = len(label_names)
    rec = [r for r in records if r.get("label") is not None]
    y = np.asarray([r["label"] for r in rec], dtype=np.int64)
    pred = np.asarray([-1 if r.get("pred") is None else r["pred"] for r in rec], dtype=np.int64)
    n = len(rec)
    unknown = int((pred < 0).sum())
    conf = np.zeros((k, k + 1), dtype=np.int64)          # last column: unparseable answers
    np.add.at(conf, (y, np.where(pred < 0, k, pred)), 1)
    correct = int((y == pred).sum())
    per_class = []
    for c in range(k):
        tp = int(conf[c, c])
        pp = int(conf[:, c].sum())
        support = int(conf[c].sum())
        precision = tp / pp if pp else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"label": label_names[c], "precision": precision, "recall": recall, "f1": f1,
                          "support": support})
    counts = np.bincount(y, minlength=k) if n else np.zeros(k, dtype=np.int64)
    confusions = [(int(conf[a, b]), label_names[a], label_names[b]) for a in range(k) for b in range(k)
                  if a != b and conf[a, b]]
    confusions.sort(key=lambda t: -t[0])
    nll = [-math.log(max(r["probs"][r["label"]], 1e-12)) for r in rec if r.get("probs")]
    lo, hi = wilson(correct, n)
    return {
        "accuracy": correct / n if n else float("nan"),
        "n": n,
        "correct": correct,
        "accuracy_ci95": [lo, hi],
        "majority_baseline": float(counts.max() / n) if n else float("nan"),
        "majority_class": label_names[int(counts.argmax())] if n else None,
        "macro_f1": float(np.mean([c["f1"] for c in per_class])) if n else float("nan"),
        "mean_nll": float(np.mean(nll)) if nll else None,
        "unknown": unknown,
        "unlabeled": len(records) - n,
        "per_class": per_class,
        "confusion": conf[:, :k].tolist(),
        "top_confusions": [{"count": c, "true": a, "pred": b} for c, a, b in confusions[:10]],
    }
