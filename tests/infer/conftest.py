import pytest

from mistral_vision.train.loop import train


@pytest.fixture
def trained(tiny_config):
    """A tiny run trained for one epoch on the synthetic data (its config)."""
    cfg = tiny_config(name="p")
    train(cfg, progress=False)
    return cfg
