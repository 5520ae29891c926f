"""A run folder that training left without any checkpoint is not a run to resume.

Training writes config.json before it reads the data; when it then refused the data, the
corrected rerun was refused in turn ("--resume: ... was trained with data.valid_size=..."),
though nothing had been trained. A folder that holds a checkpoint still resumes, and still
refuses a changed config.
"""
import json

from mistral_vision.cli import main
from tests.conftest import tiny_overrides, write_dataset
from tests.infer.test_chat import ONE_STAGE, TOWER, VQA
from tests.test_llava_cli import sets


def test_a_refused_run_can_be_rerun_with_the_fix(tmp_path, capsys):
    write_dataset(tmp_path / "data", "mnist", n_train=200, n_test=0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "c.yaml").write_text("name: x\n")
    cmd = ["run", str(tmp_path / "c.yaml")]          # what a user reruns: prepare -> train -> evaluate
    # A question set: `run` has nothing to prepare, so training is the first step to read the data.
    llava = VQA | TOWER | {"route": "llava", "stages": ONE_STAGE, "eval.splits": "[valid]"}

    def overrides(data, valid_size):
        return tiny_overrides(tmp_path / data, name="r", **llava, **{"data.valid_size": valid_size})

    bad = overrides("empty", 60)
    assert main(cmd + sets(bad)) == 2
    assert "mnist" in capsys.readouterr().err
    assert (tmp_path / "runs/r/config.json").is_file()           # written before the data was refused

    fixed = overrides("data", 50)
    assert main(cmd + sets(fixed)) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "runs/r/config.json").read_text())["data"]["valid_size"] == 50
    assert (tmp_path / "runs/r/model/manifest.json").is_file()

    # A trained run is still protected: `run` resumes it and refuses a changed config, `train` refuses it.
    other = overrides("data", 40)
    assert main(cmd + sets(other)) == 2
    assert "was trained with data.valid_size=50" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "c.yaml")] + sets(other)) == 2
    assert "already holds a training run" in capsys.readouterr().err
