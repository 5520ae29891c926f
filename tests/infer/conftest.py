import shutil
from dataclasses import replace

import pytest

from mistral_vision.config import load_config
from mistral_vision.train.loop import train
from tests.conftest import tiny_overrides, write_dataset


@pytest.fixture(scope="session")
def _trained_once(tmp_path_factory):
    """One tiny run trained for one epoch on the synthetic data, shared by the session (training is the
    slow part). Trained under the same isolation as every test: its own cache, no user data, cwd."""
    root = tmp_path_factory.mktemp("trained")
    write_dataset(root / "data", "mnist")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.delenv("MISTRAL_VISION_DATA", raising=False)
        mp.chdir(root)
        cfg = load_config(None, tiny_overrides(root / "data", name="p") + [f"runs_dir={root / 'runs'}"])
        train(cfg, progress=False)
    return cfg


@pytest.fixture
def trained(_trained_once, tmp_path):
    """The trained run (its config), copied into this test's folder: tests write predictions into it."""
    runs = tmp_path / "trained-runs"
    shutil.copytree(_trained_once.run_dir, runs / _trained_once.name)
    return replace(_trained_once, runs_dir=str(runs))
