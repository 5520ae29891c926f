"""Two tiny runs to serve, trained once per session: ASCII classification, and a LLaVA run on a VQA set.

Both train for a few steps on the synthetic bars (``tests/conftest.py``); the pages built on
them are launched once, on free ports, and shared by the gradio_client and browser tests.
"""
from __future__ import annotations

import socket
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_overrides, write_dataset
from tests.test_llava_cli import LLAVA

TOWER = {k: v for k, v in LLAVA.items() if k.startswith("vision.")} | {"vision.image_size": 56}
VQA = {"route": "llava", "data.dataset": "mnist-vqa", "data.train_canvases": 40, "data.valid_canvases": 4,
       "data.test_canvases": 4, "data.turns": 2, "data.question_types": "[cell, count, present, caption]",
       "model.sliding_window": 512, "train.loss_reduction": "token",
       "stages": "[{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 1}]"}


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """The two runs, plus pictures: a bar digit (class 4's row), a VQA canvas, and a file that is no picture."""
    from mistral_vision.config import load_config
    from mistral_vision.train.loop import train

    root = tmp_path_factory.mktemp("serve")
    write_dataset(root / "data", "mnist", n_train=300, n_test=50)
    made = {}
    for name, extra in (("ascii", {}), ("vqa", {**VQA, **TOWER})):
        over = tiny_overrides(root / "data", name=name, **{"data.valid_size": 50}, **extra)
        train(load_config(None, over + [f"runs_dir={root / 'runs'}"]), progress=False)
        made[name] = root / "runs" / name
    digit = np.zeros((28, 28), np.uint8)
    digit[13:15, 6:22] = 255
    Image.fromarray(255 - digit).save(root / "digit.png")            # dark on light, as people draw
    canvas = np.zeros((56, 56), np.uint8)
    canvas[6:8, 4:24] = 255
    Image.fromarray(canvas).save(root / "canvas.png")
    (root / "notes.txt").write_text("not a picture\n")
    return SimpleNamespace(root=root, **made)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pages(runs):
    """Both runs' pages, served in this process: name -> (url, demo)."""
    pytest.importorskip("gradio", reason="the web demo needs the serve extra: pip install -e '.[serve]'")
    from mistral_vision.serve.app import build_demo, launch

    out = {}
    for name in ("ascii", "vqa"):
        demo = build_demo(getattr(runs, name))
        out[name] = (launch(demo, "127.0.0.1", free_port()), demo)
    yield out
    for _, demo in out.values():
        demo.close()
