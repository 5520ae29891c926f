"""The validation monitor: label-scored accuracy on the first ``train.eval_samples`` validation
images, run by the training loop every ``train.eval_every`` steps for the training curve (not
the result: ``evaluate`` is). Built here and handed to ``train`` so that training code never
imports scoring. Not for: final metrics.
"""
from __future__ import annotations


class ValidationMonitor:
    def __init__(self, task, images, labels, batch_size: int, score_eos: bool):
        self.task, self.labels, self.batch_size, self.score_eos = task, labels, batch_size, score_eos
        self.encoded = task.encode(images)
        self.n = len(labels)

    def __call__(self, model) -> float:
        from .scorer import LabelScorer

        model.eval()
        scorer = LabelScorer(model, self.task.label_ids, self.task.pad_id, self.task.eos_id, self.score_eos)
        correct = 0
        for i in range(0, self.n, self.batch_size):
            part = self.encoded.take(range(i, min(i + self.batch_size, self.n)))
            s = scorer.score(part.ids, part.extras)
            correct += int((s.argmax(-1).numpy() == self.labels[i:i + self.batch_size]).sum())
        return correct / self.n


class QuestionMonitor:
    """Accuracy on the first validation questions whose answers are scored (free-form ones are skipped:
    generating them every few hundred steps would cost more than the training it watches)."""

    def __init__(self, task, qset, batch_size: int, score_eos: bool):
        self.task, self.qset, self.batch_size, self.score_eos = task, qset, batch_size, score_eos
        self.idx = [i for i, it in enumerate(qset.items) if it.candidates is not None]
        self.n = len(self.idx)
        self.details: dict = {}     # the last check's accuracy per question type, for the log

    def __call__(self, model) -> float:
        from .questions import QuestionAnswerer

        model.eval()
        answerer = QuestionAnswerer(model, self.task, self.score_eos)
        recs = []
        for i in range(0, self.n, self.batch_size):
            recs += answerer.answer(self.qset, self.idx[i:i + self.batch_size])
        types = sorted({r["type"] for r in recs})
        self.details = {"valid_per_type": {t: round(sum(r["correct"] for r in recs if r["type"] == t)
                                                    / sum(r["type"] == t for r in recs), 4) for t in types}}
        return sum(r["correct"] for r in recs) / max(self.n, 1)


def validation_monitor(cfg, task):
    from ..data.datasets import load_split
    from ..data.run_data import is_question_set, load_questions

    d = cfg.data
    if is_question_set(d):
        if d.format in ("llava-json", "text") and not d.valid_path:
            return None
        qs = load_questions(d, "valid").subset(cfg.train.eval_samples)
        return QuestionMonitor(task, qs, cfg.eval.batch_size, cfg.eval.score_eos)
    valid = load_split(d.dataset, "valid", d.data_dir, d.offline, d.valid_size, d.split_seed).subset(cfg.train.eval_samples)
    return ValidationMonitor(task, valid.images, valid.labels, cfg.eval.batch_size, cfg.eval.score_eos)
