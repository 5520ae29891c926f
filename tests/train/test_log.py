"""The training log: the loss it shows is the per-token mean on any data; progress lines for logs."""
import json
import re

import pytest
import torch

from mistral_vision.config import load_config
from mistral_vision.data.run_data import label_names_for, load_questions
from mistral_vision.models.build import build_run_model
from mistral_vision.tasks import make_task
from mistral_vision.train.batches import answer_loss
from mistral_vision.train.loop import train
from mistral_vision.train.source import training_source
from tests.conftest import tiny_overrides
from tests.models.test_llava import SHAPE

# 8 multi-turn conversations (4 questions each), all in one batch: one step, logged.
TURNS = {"route": "llava", "data.dataset": "mnist-vqa", "data.train_canvases": 8, "data.turns": 4,
         "vision.image_size": 56, "model.sliding_window": 512, "train.batch_size": 8, "train.log_every": 1,
         "stages": "[{name: qa, data: questions, trainable: {projector: 0.001, llm: 0.001}}]"}


def test_the_logged_loss_of_multi_turn_data_is_the_per_token_mean(data_dir, capsys):
    from accelerate.utils import set_seed

    cfg = load_config(None, tiny_overrides(data_dir, name="turns", **TURNS) + SHAPE[5:])
    assert cfg.train.loss_reduction == "sequence"              # the default: each sample's answers summed
    set_seed(cfg.train.seed)                                   # the weights the single step starts from
    model, proc = build_run_model(cfg, cfg.run_dir / "init", log=lambda *_: None)
    task = make_task(cfg, proc, label_names_for(cfg.data))
    source = training_source(cfg, task, load_questions(cfg.data, "train", conversations=True), cfg.stages[0])
    assert len(source) == 8
    batch = source.epoch_examples(0).batch(list(range(8)), task.pad_id)
    with torch.no_grad():
        mean_ce, answer_tokens, nll_sum = answer_loss(model.train(), batch, "token")
    assert answer_tokens >= 8 * 4 * 2                           # every turn's answer (+ EOS) is in the loss

    train(cfg, progress=True)
    rec = json.loads((cfg.run_dir / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["step"] == 1
    assert rec["loss"] == pytest.approx(mean_ce.item(), rel=1e-4)
    assert rec["objective"] == pytest.approx(nll_sum / 8, rel=1e-4)      # what `sequence` optimised: summed
    assert rec["objective"] > 8 * rec["loss"]
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[qa] step 1/1"))
    assert f"loss {mean_ce.item():.4f} " in line


def seconds(text: str) -> int:
    h, m, s = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text).groups()
    return 3600 * int(h or 0) + 60 * int(m or 0) + int(s or 0)


def test_a_log_that_is_no_terminal_gets_elapsed_time_and_eta(tiny_config, capsys):
    """CI and nohup users see no bar: their lines say how long the stage has run and has to go."""
    cfg = tiny_config(name="eta")                              # 31 steps, logged every 5
    train(cfg, progress=True)                                  # pytest's captured stderr is not a TTY
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[train] step")]
    pattern = (r"\[train\] step (\d+)/31 epoch [\d.]+ loss [\d.]+ \d+ img/s \d+ tok/s ([\d.e+]+) it/s "
               r"elapsed (\w+) eta (\w+)")
    parsed = [re.fullmatch(pattern, ln) for ln in lines]
    assert len(lines) == 2 and all(parsed), lines              # the first record at once, then the stage's end
    (first, rate, _, eta), (last, _, _, end_eta) = (m.groups() for m in parsed)
    assert (first, last, end_eta) == ("5", "31", "0s")
    assert abs(seconds(eta) - 26 / float(rate)) <= 1           # the 26 steps left at the rate shown


@pytest.mark.parametrize("s,text", [(0.4, "0s"), (45, "45s"), (566, "9m26s"), (7500, "2h05m")])
def test_durations_are_short(s, text):
    from mistral_vision.train.log import duration

    assert duration(s) == text


def test_an_unknown_tracker_is_one_line():
    from mistral_vision.errors import UserError

    with pytest.raises(UserError, match="train.report_to must be none, tensorboard or wandb"):
        load_config(None, ["train.report_to=mlflow"])
    assert load_config(None, []).train.report_to == "none"


class Monitor:
    """A stand-in validation monitor: accuracy 0.5, or a crash at a given step's check."""

    n, details = 20, {"valid_per_type": {"count": 0.25, "color": 0.75}}

    def __init__(self, crash_at=None):
        self.crash_at, self.calls = crash_at, 0

    def __call__(self, model):
        self.calls += 1
        if self.calls * 4 == self.crash_at:
            raise RuntimeError("killed during validation")
        return 0.5


def test_tensorboard_gets_the_curve_and_a_resume_replaces_what_it_redoes(tiny_config, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(name="tb", **{"train.report_to": "tensorboard", "train.log_every": 1, "train.save_every": 2,
                                    "train.eval_every": 4, "data.train_limit": 160})         # 10 steps
    with pytest.raises(RuntimeError, match="killed"):              # after step 4's record, before its checkpoint
        train(cfg, progress=True, monitor_factory=lambda *_: Monitor(crash_at=4))
    assert f"tensorboard --logdir {cfg.run_dir / 'tb'}" in capsys.readouterr().out
    train(cfg, resume=True, progress=False, monitor_factory=lambda *_: Monitor())   # from step 2's checkpoint

    records = [json.loads(ln) for ln in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in records if "loss" in r}
    events = EventAccumulator(str(cfg.run_dir / "tb"))
    events.Reload()
    tb_loss = events.Scalars("train/loss")
    assert [e.step for e in tb_loss] == sorted(losses) == list(range(1, 11))      # steps 3 and 4 once: purged
    assert [e.value for e in tb_loss] == pytest.approx([losses[s] for s in range(1, 11)], rel=1e-6)
    assert {"train/lr", "train/objective", "train/images_per_s"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("valid/accuracy")] == [(4, 0.5), (8, 0.5), (10, 0.5)]
    assert [e.value for e in events.Scalars("valid/per_type/count")] == [0.25] * 3


def test_wandb_without_its_package_is_one_line(tiny_config):
    import importlib.util

    from mistral_vision.errors import UserError

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here: the run would log to W&B")
    cfg = tiny_config(name="wb", **{"train.report_to": "wandb"})
    with pytest.raises(UserError, match=r"train.report_to wandb: the wandb package is not installed; pip install wandb"):
        train(cfg, progress=False)
    assert not cfg.run_dir.exists()                                # refused before anything is written
