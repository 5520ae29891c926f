"""A run whose saved model is missing a file or truncated: one line, exit 2, before anything is built.

Without the check, a missing ``model/config.json`` let ``from_pretrained`` fall back to the
default 7B LLaVA config (23.5 GB allocated, then the OOM killer), and a truncated
``model.safetensors`` was a 29-line traceback with exit 1.
"""
import shutil

import pytest
from PIL import Image

from mistral_vision.cli import main
from tests.conftest import tiny_overrides, write_dataset
from tests.test_llava_cli import LLAVA, sets

ONE_STAGE = "[{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 1}]"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per route (a few steps each) and an image to ask about."""
    root = tmp_path_factory.mktemp("damaged")
    write_dataset(root / "data", "mnist", n_train=200, n_test=0)
    (root / "c.yaml").write_text("name: x\n")
    Image.new("L", (28, 28)).save(root / "digit.png")
    out = {}
    for route, extra in [("ascii", {}), ("llava", LLAVA | {"stages": ONE_STAGE})]:
        over = tiny_overrides(root / "data", name=route, **extra) + [f"runs_dir={root / 'runs'}"]
        assert main(["train", str(root / "c.yaml")] + sets(over)) == 0
        out[route] = root / "runs" / route
    return root, out


def _damaged(runs, tmp_path, route, damage):
    root, by_route = runs
    run = tmp_path / route
    shutil.copytree(by_route[route], run)
    damage(run / "model")
    return root, run


def _missing_config(model):
    (model / "config.json").unlink()


def _truncated_weights(model):
    w = model / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def _broken_json(model):
    (model / "config.json").write_text('{"model_type": "lla')


COMMANDS = {
    "chat": lambda root, run: ["chat", str(run), "--image", str(root / "digit.png"), "what digit?"],
    "export": lambda root, run: ["export", str(run), "--out", str(run.parent / "exported")],
    "predict": lambda root, run: ["predict", str(run), "--images", str(root / "digit.png"), "--out",
                                  str(run.parent / "p.jsonl")],
    "evaluate": lambda root, run: ["evaluate", str(run), "--dataset", "mnist", "--split", "valid",
                                   "--data-dir", str(root / "data"), "--offline"],
}
DAMAGE = {"missing config.json": (_missing_config, "config.json: missing"),
          "truncated weights": (_truncated_weights, "model.safetensors: truncated or corrupt"),
          "broken config.json": (_broken_json, "config.json: not valid JSON")}


@pytest.mark.parametrize("route", ["ascii", "llava"])
@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_damaged_model_is_one_line_and_exit_2(runs, tmp_path, capsys, route, damage, command):
    fn, expected = DAMAGE[damage]
    root, run = _damaged(runs, tmp_path, route, fn)
    capsys.readouterr()
    code = main(COMMANDS[command](root, run))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert expected in err and err.endswith("re-export or rerun"), err
    assert not (run.parent / "exported").exists()


def test_the_undamaged_runs_still_load(runs, tmp_path, capsys):
    root, by_route = runs
    for route, run in by_route.items():
        assert main(COMMANDS["export"](root, run)[:3] + [str(tmp_path / route)]) == 0
