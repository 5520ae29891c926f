"""The learning-rate schedule: transformers' warmup + cosine to a floor, and the same sequence after a resume."""
import math

import pytest
import torch

from mistral_vision.train.checkpoints import checkpoints, load_checkpoint, save_checkpoint
from mistral_vision.train.loop import lr_schedule


def rates(total, warmup, min_ratio, steps=None, start=None):
    """The lr each optimizer step uses, for two parameter groups (peaks 1.0 and 0.01)."""
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW([{"params": [model.weight], "lr": 1.0}, {"params": [model.bias], "lr": 0.01}])
    sched = lr_schedule(opt, total, warmup, min_ratio)
    out = []
    for _ in range(steps or total):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out, model, opt, sched


def hf_cosine(step, total, warmup, min_ratio):
    """HF Trainer's cosine_with_min_lr, written out: linear from 0 over the warmup, then half a cosine."""
    if step < warmup:
        return step / warmup
    progress = (step - warmup) / (total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def test_warmup_cosine_and_floor_as_hf_trainer_computes_them():
    got, *_ = rates(total=10, warmup=2, min_ratio=0.1)
    assert [g[0] for g in got] == pytest.approx([hf_cosine(s, 10, 2, 0.1) for s in range(10)], abs=1e-12)
    assert got[0] == [0.0, 0.0] and got[1] == pytest.approx([0.5, 0.005])        # warmup, per group
    assert got[2] == pytest.approx([1.0, 0.01])                                  # peak after warmup
    assert got[6] == pytest.approx([0.55, 0.0055])                               # cosine midpoint: halfway to the floor
    assert 0.1 < got[9][0] < 0.14 and min(g[0] for g in got[2:]) > 0.1           # never below the floor


def test_resume_continues_the_same_lr_sequence(tmp_path):
    full, *_ = rates(total=12, warmup=3, min_ratio=0.0)
    _, model, opt, sched = rates(total=12, warmup=3, min_ratio=0.0, steps=5)
    for p in model.parameters():
        p.requires_grad_(True)
    save_checkpoint(model, opt, sched, tmp_path, 5, 1.0, keep=1)               # what the loop writes
    fresh = torch.nn.Linear(2, 2)
    opt2 = torch.optim.AdamW([{"params": [fresh.weight], "lr": 1.0}, {"params": [fresh.bias], "lr": 0.01}])
    sched2 = lr_schedule(opt2, 12, 3, 0.0)
    assert load_checkpoint(fresh, opt2, sched2, checkpoints(tmp_path)[-1])["step"] == 5
    resumed = []
    for _ in range(7):
        resumed.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        sched2.step()
    assert resumed == full[5:]
