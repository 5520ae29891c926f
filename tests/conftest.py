"""Shared fixtures: synthetic IDX datasets written by the tests, tiny configs, no network.

The synthetic images are learnable on purpose: class c is a bright horizontal bar whose row
depends on c, plus noise, so a tiny model trained for a few seconds beats chance clearly.

Markers (declared in pyproject.toml, ``--strict-markers``): ``gpu`` tests are skipped where CUDA is
absent, ``network`` tests unless ``MISTRAL_VISION_NETWORK_TESTS=1``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

NETWORK_ENV = "MISTRAL_VISION_NETWORK_TESTS"


def _missing(marker: str) -> str | None:
    """Why the tests carrying ``marker`` cannot run here, or None when they can."""
    if marker == "gpu":
        import torch

        return None if torch.cuda.is_available() else "needs a CUDA device (torch.cuda.is_available() is False)"
    return None if os.environ.get(NETWORK_ENV) == "1" else f"needs network access; set {NETWORK_ENV}=1 to run"


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` / ``network`` tests where their resource is absent (checked once per marker)."""
    reasons: dict[str, str | None] = {}
    for item in items:
        for marker in ("gpu", "network"):
            if item.get_closest_marker(marker) is None:
                continue
            if marker not in reasons:
                reasons[marker] = _missing(marker)
            if reasons[marker]:
                item.add_marker(pytest.mark.skip(reason=reasons[marker]))

from mistral_vision.data.idx import write_idx


def synthetic_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) < 0.03).astype(np.uint8) * 90
    for i, c in enumerate(labels):
        row = 5 + 2 * int(c)
        images[i, row:row + 2, 6:22] = 255
    return images, labels


def write_dataset(root, name: str, n_train: int = 600, n_test: int = 200, gz: bool = True) -> None:
    folder = root / name
    ext = ".gz" if gz else ""
    x, y = synthetic_images(n_train, 1)
    write_idx(folder / f"train-images-idx3-ubyte{ext}", x)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", y)
    if n_test:
        x, y = synthetic_images(n_test, 2)
        write_idx(folder / f"t10k-images-idx3-ubyte{ext}", x)
        write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", y)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test reads the user's cache or the real data unless it asks, and none downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MISTRAL_VISION_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, "mnist")
    write_dataset(root, "fashion-mnist", gz=False)
    return root


def tiny_overrides(data_dir, name="t", **extra) -> list[str]:
    base = {
        "name": name, "data.data_dir": str(data_dir), "data.offline": "true", "data.valid_size": 100,
        "ascii.width": 10, "ascii.height": 10, "ascii.crop": 4,
        "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 4, "model.num_kv_heads": 2,
        "model.intermediate_size": 64, "model.sliding_window": 16,
        "train.epochs": 1, "train.batch_size": 16, "train.lr": 0.005, "train.warmup_steps": 5,
        "train.log_every": 5, "train.eval_every": 0, "train.save_every": 1000, "eval.batch_size": 64,
        "eval.misclassified": 4,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny_config(data_dir):
    from mistral_vision.config import load_config

    def make(**extra):
        return load_config(None, tiny_overrides(data_dir, **extra))
    return make


def train_killed_then_resumed(tmp_path, overrides, stage_dir: str, kill_at_step: int, timeout: float = 180.0):
    """`mistral-vision train` in a subprocess, SIGKILLed once stage ``stage_dir`` has checkpointed
    ``kill_at_step``, then run again with --resume; -> (the run folder, the resumed process)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg_yaml = tmp_path / "killed.yaml"
    cfg_yaml.write_text("name: killed\n")
    cmd = [sys.executable, "-m", "mistral_vision.cli", "train", str(cfg_yaml)] + sum((["--set", o] for o in overrides), [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckdir = tmp_path / "runs" / "killed" / "checkpoints" / stage_dir
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = [p for p in ckdir.glob("step-*") if (p / "state.json").exists()] if ckdir.exists() else []
        if any(int(p.name.split("-")[1]) >= kill_at_step for p in done):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = tmp_path / "runs" / "killed"
    assert not (run / "model").exists(), "killed too late to test resume"
    return run, subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
