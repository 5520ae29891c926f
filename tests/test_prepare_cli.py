"""``prepare``: the same ``--set`` keys as ``run``, checked as ``run`` checks them, and no silent wrong output."""
import json

import pytest

from mistral_vision.cli import main
from tests.conftest import write_dataset


@pytest.fixture
def data(tmp_path):
    write_dataset(tmp_path / "data", "mnist", n_train=300, n_test=0)
    return tmp_path / "data"


def _prepare(data, out, *extra):
    return main(["prepare", "--out", str(out), "--data-dir", str(data), "--offline", "--valid-size", "100", *extra])


def test_set_takes_keys_with_or_without_the_data_prefix(data, tmp_path):
    out = tmp_path / "out"
    assert _prepare(data, out, "--dataset", "mnist-vqa", "--route", "llava", "--set", "data.train_canvases=7",
                    "--set", "valid_canvases=3") == 0
    train = json.loads((out / "train.json").read_text())
    assert sum(s["type"] == "caption" for s in train) == 7            # one caption per training canvas
    assert len({s["image"] for s in json.loads((out / "valid.json").read_text())}) == 3


@pytest.mark.parametrize("extra, message", [
    (["--dataset", "mnist-vqa", "--set", "fill=1.5"], "data.fill must be in (0, 1]"),
    (["--dataset", "mnist-vqa", "--set", "data.grid=4"], "data.grid must be 1, 2 or 3"),
    (["--dataset", "mnist-vqa", "--set", "train.lr=0.1"], "prepare takes data settings only"),
    (["--dataset", "mnist-vqa", "--set", "data.colour=red"], "data.colour"),
    (["--dataset", "mnist", "--route", "llava"], "prepare --route llava writes LLaVA JSON for the VQA sets"),
    (["--dataset", "mnist", "--set", "fill=0.5"], "prepare --set is for the VQA sets"),
])
def test_bad_settings_are_one_line_exit_2_and_write_nothing(data, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert _prepare(data, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
