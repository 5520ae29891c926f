import json

import pytest
import torch
from safetensors.torch import load_file

from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from mistral_vision.predict import predict
from mistral_vision.io import read_jsonl_tolerant
from mistral_vision.pipeline import train_run
from mistral_vision.train.loop import train
from tests.conftest import tiny_overrides, train_killed_then_resumed


def test_training_learns_and_writes_the_run(tiny_config, data_dir):
    cfg = tiny_config(name="learn", **{"train.epochs": 6, "train.eval_every": 20, "train.eval_samples": 100})
    s = train_run(cfg, progress=False)
    run = cfg.run_dir
    assert (run / "config.yaml").is_file() and (run / "config.json").is_file()
    assert (run / "model" / "tokenizer.json").is_file() and (run / "model" / "manifest.json").is_file()
    log = read_jsonl_tolerant(run / "metrics.jsonl")
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    checks = [r for r in log if "valid_accuracy" in r]
    assert [r["step"] for r in checks] == list(range(20, s["steps"], 20)) + [s["steps"]]
    assert s["steps"] == 6 * (500 // 16)
    r = predict(run, "mnist", "valid", data_dir=str(data_dir), progress=False)
    recs = read_jsonl_tolerant(r.path)
    acc = sum(x["pred"] == x["label"] for x in recs) / len(recs)
    assert acc > 0.5, acc                    # chance is 0.1
    # the monitor's last check scored the first 100 validation images with the final model
    first = sum(x["pred"] == x["label"] for x in recs[:100]) / 100
    assert checks[-1]["valid_n"] == 100 and checks[-1]["valid_accuracy"] == first


# What these check is written before the first step, so 2 steps (32 images) do instead of an epoch.
SHORT = {"data.train_limit": 32}


def test_existing_run_needs_resume(tiny_config):
    cfg = tiny_config(name="again", **SHORT)
    train(cfg, progress=False)
    with pytest.raises(UserError, match="already holds a training run; pass --resume"):
        train(cfg, progress=False)


def test_resume_with_changed_settings_is_refused(tiny_config):
    cfg = tiny_config(name="inc", **SHORT)
    train(cfg, progress=False)
    changed = tiny_config(name="inc", **{"model.hidden_size": 64}, **SHORT)
    with pytest.raises(UserError, match="trained with model.hidden_size=32 but the config now says 64"):
        train(changed, resume=True, progress=False)


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(data_dir, tmp_path):
    extra = {"train.epochs": 3, "train.save_every": 10, "train.log_every": 1}
    train(load_config(None, tiny_overrides(data_dir, name="ref", **extra)), progress=False)
    over = tiny_overrides(data_dir, name="killed", **extra)
    run, resumed = train_killed_then_resumed(tmp_path, over, "0-train", 40, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(tmp_path / "runs" / "ref" / "model" / "model.safetensors")
    b = load_file(tmp_path / "runs" / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    steps = [r["step"] for r in read_jsonl_tolerant(tmp_path / "runs" / "killed" / "metrics.jsonl") if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == json.loads(
        (tmp_path / "runs" / "killed" / "train_summary.json").read_text())["steps"]


@pytest.mark.filterwarnings("error::FutureWarning")
def test_gradient_checkpointing_trains_without_deprecation_warnings(tiny_config):
    """transformers 5.x deprecated gradient_checkpointing_enable (a FutureWarning each run): the current call."""
    cfg = tiny_config(name="gc", **{"train.gradient_checkpointing": "true", "data.train_limit": 64,
                                    "train.log_every": 1})
    s = train(cfg, progress=False)
    assert s["steps"] == 4
    losses = [r["loss"] for r in read_jsonl_tolerant(cfg.run_dir / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 4 and losses[-1] < losses[0]
