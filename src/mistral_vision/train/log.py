"""The training log: what each logged step records, and the lines a person reads while it trains.

Every ``train.log_every`` steps one record goes to ``metrics.jsonl`` (the run's curve, append-only).
Its ``loss`` is the per-token mean cross-entropy of the answer tokens since the last record, whatever
``train.loss_reduction`` optimises: with ``sequence`` on multi-turn conversations the optimised value
sums every turn's answer (``objective``, recorded beside it), which is no loss a reader can compare.
Not for: the loop (``loop.py``) or the validation monitor.
"""
from __future__ import annotations

import time


class Window:
    """The steps since the last record: answer-token NLL, the optimised objective, throughput."""

    def __init__(self, world: int, reduction: str):
        self.world, self.reduction = world, reduction
        self.reset()

    def reset(self) -> None:
        self.nll = self.objective = 0.0
        self.answer_tokens = self.batches = self.images = self.tokens = 0
        self.t = time.time()

    def add(self, result, images: int, tokens: int) -> None:
        """One micro-batch: its ``AnswerLoss``, its images and the tokens the model read (all processes')."""
        self.nll += result.nll_sum
        self.answer_tokens += result.tokens
        self.objective += float(result.loss.detach())
        self.batches += 1
        self.images += images * self.world
        self.tokens += tokens * self.world

    def pause(self, seconds: float) -> None:
        """Keep ``seconds`` (validation) out of the throughput."""
        self.t += seconds

    def record(self) -> dict:
        dt = max(time.time() - self.t, 1e-9)
        rec = {"loss": self.nll / max(self.answer_tokens, 1)}
        if self.reduction != "token":
            rec["objective"] = self.objective / max(self.batches, 1)
        return {**rec, "images_per_s": self.images / dt, "tokens_per_s": self.tokens / dt}
