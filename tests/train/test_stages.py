"""Training in stages: each freezes all but its parts, resumes on its own, and starts only from a finished stage."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from mistral_vision.pipeline import train_run
from mistral_vision.train.loop import train
from tests.conftest import tiny_overrides

LLAVA = {"route": "llava", "vision.hidden_size": 32, "vision.num_layers": 2, "vision.num_heads": 4,
         "vision.intermediate_size": 64, "vision.patch_size": 7, "train.lr": 0.003}
TWO = "[{name: align, trainable: {projector: 0.003}, epochs: 1}, " \
      "{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 2}]"


def llava(data_dir, name, **extra):
    return load_config(None, tiny_overrides(data_dir, name=name, **{**LLAVA, "stages": TWO, **extra}))


def _weights(run):
    return load_file(run / "model" / "model.safetensors")


def test_align_stage_trains_only_the_projector(data_dir, tmp_path):
    one = "[{name: align, trainable: {projector: 0.01}, epochs: 1}]"
    cfg = llava(data_dir, "align", stages=one)
    s = train(cfg, progress=False)
    assert [st["name"] for st in s["stages"]] == ["align"] and s["trainable_params"] > 0
    init = llava(data_dir, "init", stages="[{name: align, trainable: {projector: 0.01}, epochs: 0.01}]")
    torch.manual_seed(0)
    from mistral_vision.models.build import build_run_model
    from accelerate.utils import set_seed

    set_seed(init.train.seed)
    fresh, _ = build_run_model(init, tmp_path, log=lambda *_: None)
    before = {n: p.detach() for n, p in fresh.named_parameters()}
    from mistral_vision.models.build import load_run_model

    after, _, _ = load_run_model(cfg.run_dir / "model")
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("multi_modal_projector" in n for n in changed)
    assert any("multi_modal_projector" in n for n in changed)


def test_two_stages_learn_and_log_each_stage(data_dir):
    cfg = llava(data_dir, "two", **{"train.eval_every": 20, "train.eval_samples": 100,
                                   "train.loss_reduction": "token",
                                   "stages": "[{name: align, trainable: {projector: 0.003}, epochs: 1}, "
                                             "{name: instruct, trainable: {projector: 0.003, vision: 0.003, "
                                             "llm: 0.003}, epochs: 9}]"})
    s = train_run(cfg, progress=False)
    from mistral_vision.io import read_jsonl_tolerant

    log = read_jsonl_tolerant(cfg.run_dir / "metrics.jsonl")
    assert {r["stage"] for r in log} == {"align", "instruct"}
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(steps) and steps[-1] == s["steps"] == sum(st["steps"] for st in s["stages"])
    last = [r["valid_accuracy"] for r in log if "valid_accuracy" in r][-1]
    assert last > 0.3, last             # chance is 0.1, the majority class 0.16; an image-blind model stays there
    done = json.loads((cfg.run_dir / "stages" / "1-instruct" / "done.json").read_text())
    assert done["stage"]["trainable"] == {"projector": 0.003, "vision": 0.003, "llm": 0.003}


def test_init_from_a_missing_or_incompatible_stage_is_one_line(data_dir):
    cfg = llava(data_dir, "src", stages="[{name: align, trainable: {projector: 0.01}, epochs: 1}]")
    train(cfg, progress=False)
    missing = llava(data_dir, "m", stages="[{name: instruct, trainable: {llm: 0.01}, epochs: 1, "
                                           "init_from: nowhere/stages/0-align}]")
    with pytest.raises(UserError, match="no finished stage at nowhere/stages/0-align"):
        train(missing, progress=False)
    wider = llava(data_dir, "w", **{"model.hidden_size": 64, "stages": "[{name: instruct, trainable: {llm: 0.01}, "
                                    f"epochs: 1, init_from: {cfg.run_dir}/stages/0-align}}]"})
    with pytest.raises(UserError, match="does not fit this model .*multi_modal_projector"):
        train(wider, progress=False)
    ok = llava(data_dir, "ok", stages="[{name: instruct, trainable: {llm: 0.01}, epochs: 1, "
                                      f"init_from: {cfg.run_dir}/stages/0-align}}]")
    train(ok, progress=False)
    a, b = _weights(cfg.run_dir), _weights(ok.run_dir)
    proj = [k for k in a if "multi_modal_projector" in k]
    assert proj and all(torch.equal(a[k], b[k]) for k in proj)       # the aligned projector, kept frozen


@pytest.mark.slow
def test_kill_9_in_the_second_stage_then_resume_matches_uninterrupted(data_dir, tmp_path):
    extra = {"train.save_every": 5, "train.log_every": 1}
    train(llava(data_dir, "ref", **extra), progress=False)
    over = tiny_overrides(data_dir, name="killed", **{**LLAVA, "stages": TWO, **extra})
    cfg_yaml = tmp_path / "killed.yaml"
    cfg_yaml.write_text("name: killed\n")
    cmd = [sys.executable, "-m", "mistral_vision.cli", "train", str(cfg_yaml)] + sum((["--set", o] for o in over), [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckdir = tmp_path / "runs" / "killed" / "checkpoints" / "1-instruct"
    deadline = time.time() + 180
    while time.time() < deadline:
        if ckdir.exists() and any(int(p.name.split("-")[1]) >= 10 for p in ckdir.glob("step-*")
                                  if (p / "state.json").exists()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = tmp_path / "runs" / "killed"
    assert (run / "stages" / "0-align" / "done.json").is_file() and not (run / "model").exists()
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(tmp_path / "runs" / "ref"), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
