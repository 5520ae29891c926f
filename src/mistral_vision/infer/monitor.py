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


def validation_monitor(cfg, task) -> ValidationMonitor:
    from ..data.datasets import load_split

    d = cfg.data
    valid = load_split(d.dataset, "valid", d.data_dir, d.offline, d.valid_size, d.split_seed).subset(cfg.train.eval_samples)
    return ValidationMonitor(task, valid.images, valid.labels, cfg.eval.batch_size, cfg.eval.score_eos)
