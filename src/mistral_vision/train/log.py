"""The training log: what each logged step records, where it goes, and the lines a person reads.

Every ``train.log_every`` steps one record goes to ``metrics.jsonl`` (the run's curve, append-only),
and to the trackers ``train.report_to`` names (accelerate's: TensorBoard in ``RUN/tb``, or W&B) as
``train/loss``, ``train/lr``, ... and ``valid/accuracy``. Its ``loss`` is the per-token mean cross-entropy of the answer tokens since the last record, whatever
``train.loss_reduction`` optimises: with ``sequence`` on multi-turn conversations the optimised value
sums every turn's answer (``objective``, recorded beside it), which is no loss a reader can compare.
Not for: the loop (``loop.py``) or the validation monitor.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError

TRACKERS = {"tensorboard": ("tensorboard", "pip install 'mistral-vision[tensorboard]'"),
            "wandb": ("wandb", "pip install wandb")}        # report_to -> (its package, how to get it)
TB_DIR = "tb"                                               # RUN/tb: TensorBoard's event files


def check_tracker(report_to: str) -> None:
    """Refuse, before anything is written, a tracker whose package is not installed."""
    import importlib.util

    if report_to in TRACKERS and importlib.util.find_spec(TRACKERS[report_to][0]) is None:
        package, how = TRACKERS[report_to]
        raise UserError(f"train.report_to {report_to}: the {package} package is not installed; {how}, "
                        "or set train.report_to none")


def tracker_kwargs(cfg) -> dict:
    """``Accelerator`` arguments for the run's trackers (none: no tracker is created)."""
    report_to = cfg.train.report_to
    return {} if report_to == "none" else {"log_with": report_to, "project_dir": str(cfg.run_dir)}


class Curve:
    """The run's curve: records appended to ``metrics.jsonl`` and sent to accelerate's trackers (main process).

    Trackers start with the first stage this process fits: a resumed run's TensorBoard then drops
    the events logged after the checkpoint it continues from (``purge_step``), as metrics.jsonl does.
    """

    def __init__(self, path: Path, acc, cfg, resume_step: int | None, log=print):
        from ..io import JsonlAppender

        self.acc, self.file = acc, JsonlAppender(path)
        report_to = cfg.train.report_to
        if acc.log_with and not acc.trackers:
            if report_to == "tensorboard":
                acc.init_trackers(TB_DIR, init_kwargs={"tensorboard": {"purge_step": resume_step + 1}}
                                  if resume_step is not None else None)
                log(f"      TensorBoard: tensorboard --logdir {cfg.run_dir / TB_DIR}")
            else:
                from ..config import to_dict

                acc.init_trackers("mistral-vision", config=to_dict(cfg),
                                  init_kwargs={report_to: {"name": cfg.name, "dir": str(cfg.run_dir)}})

    def write(self, rec: dict) -> None:
        self.file.write([rec])
        if self.acc.trackers:
            self.acc.log(tracker_values(rec), step=rec["step"])

    def close(self) -> None:
        self.file.close()


def finish_trackers(acc) -> None:
    """Close the trackers (not ``acc.end_training``, which also ends the process group evaluation may use)."""
    for tracker in acc.trackers:
        tracker.finish()


def tracker_values(rec: dict) -> dict:
    """A metrics.jsonl record as tracker scalars: ``train/loss``, ``train/lr``, ``valid/accuracy``,
    ``valid/per_type/<type>`` (question sets)."""
    out = {}
    for k, v in rec.items():
        if k in ("step", "stage", "valid_n", "elapsed_s"):
            continue
        name = "valid/" + k[len("valid_"):] if k.startswith("valid_") else f"train/{k}"
        if isinstance(v, dict):
            out.update({f"{name}/{t}": x for t, x in v.items() if isinstance(x, (int, float))})
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = v
    return out


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
