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


class LogLines:
    """Plain progress lines where no bar shows (stderr is not a terminal: CI, ``nohup``): the first record's
    at once, then one a minute and the stage's last, each with the elapsed time and the stage's ETA.

    The rate is steps per second of wall time since this process started the stage, validation and
    checkpoints included: they recur until the end, so the ETA counts them too.
    """

    def __init__(self, stage: str, total: int, start_step: int, every_s: float = 60.0):
        self.stage, self.total, self.start, self.every_s = stage, total, start_step, every_s
        self.t0, self.last = time.time(), None

    def due(self, step: int) -> bool:
        return self.last is None or time.time() - self.last > self.every_s or step == self.total

    def line(self, step: int, rec: dict) -> str:
        self.last = time.time()
        rate = (step - self.start) / max(self.last - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else 0.0
        return (f"[{self.stage}] step {step}/{self.total} epoch {rec['epoch']:.2f} loss {rec['loss']:.4f} "
                f"{rec['images_per_s']:.0f} img/s {rec['tokens_per_s']:.0f} tok/s {rate:.3g} it/s "
                f"elapsed {duration(rec['elapsed_s'])} eta {duration(eta)}")


def duration(seconds: float) -> str:
    """``45s``, ``9m26s``, ``2h05m``: short enough for a log line."""
    s = int(round(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
