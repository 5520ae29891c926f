"""compare: cells are ordinary runs, reused when complete, with seed statistics and a paired test."""
import json

import pytest

from mistral_vision.cli import main
from mistral_vision.compare.runner import collect, mcnemar_p, plan
from mistral_vision.errors import UserError
from tests.conftest import tiny_overrides


def _config(tmp_path, data_dir, name="tinyascii"):
    path = tmp_path / f"{name}.yaml"
    path.write_text("# Run: mistral-vision run x.yaml\nname: x\n")
    sets = [o for o in tiny_overrides(data_dir, name="x", **{"data.train_limit": 320, "data.valid_limit": 60,
                                                             "eval.splits": "[valid]"}) if not o.startswith("name=")]
    return str(path), sets


def test_mcnemar_matches_the_binomial_by_hand():
    assert mcnemar_p(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_p(4, 4) == 1.0 and mcnemar_p(0, 0) == 1.0


def test_bad_input_is_refused_before_any_cell_runs(tmp_path, data_dir, capsys):
    cfg, sets = _config(tmp_path, data_dir)
    with pytest.raises(UserError, match="unknown backbone 'gpt2'"):
        plan([cfg], ["mistral-tiny", "gpt2"], 2, sets, tmp_path / "out")
    with pytest.raises(UserError, match="--seeds 0: need at least 1 seed"):
        plan([cfg], ["mistral-tiny"], 0, sets, tmp_path / "out")
    with pytest.raises(UserError, match="unknown config key 'train.nope'"):
        plan([cfg], ["mistral-tiny"], 1, sets + ["train.nope=1"], tmp_path / "out")
    for args in (["compare", cfg, "--backbones", "mistral-tiny,gpt2"], ["compare", cfg, "--seeds", "0"],
                 ["compare", str(tmp_path / "missing.yaml")]):
        assert main(args + sum((["--set", s] for s in sets), [])) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_plan_prints_one_ordinary_run_command_per_cell(tmp_path, data_dir, capsys):
    cfg, sets = _config(tmp_path, data_dir)
    assert main(["compare", cfg, "--seeds", "2", "--plan", "--out", str(tmp_path / "o")]
                + sum((["--set", s] for s in sets), [])) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"mistral-vision run {cfg} ") for line in lines)
    assert sum("model.backbone=llama-tiny" in line and "train.seed=1" in line and
               "name=tinyascii-llama-tiny-s1" in line for line in lines) == 1


@pytest.mark.slow
def test_compare_runs_collects_and_reuses_cells_deterministically(tmp_path, data_dir):
    from mistral_vision.compare.runner import run_cells

    cfg, sets = _config(tmp_path, data_dir)
    out = tmp_path / "cmp"
    cells = plan([cfg], ["mistral-tiny", "llama-tiny"], 2, sets, out)
    run_cells(cells, out, log=lambda *_: None, ceiling_epochs=1)
    res = collect(cells, out)
    ceiling = res["rendering"]["tinyascii"]
    assert 0 <= ceiling["cnn_on_art"] <= 1 and ceiling["cost"] == ceiling["cnn_on_pixels"] - ceiling["cnn_on_art"]
    assert not res["missing"] and len(res["rows"]) == 2
    for row in res["rows"]:
        assert row["seeds"] == [0, 1] and len(row["accuracy"]) == 2
        accs = [json.loads((out / "cells" / f"tinyascii-{row['backbone']}-s{s}" / "eval" / "mnist-valid" /
                            "metrics.json").read_text())["accuracy"] for s in (0, 1)]
        assert row["accuracy"] == accs
        assert row["accuracy_mean"] == pytest.approx(sum(accs) / 2)
    mistral, llama = sorted(res["rows"], key=lambda r: r["backbone"], reverse=True)
    assert mistral["sliding_window"] and not llama["sliding_window"]
    assert mistral["params"] == llama["params"]                    # matched presets: same shapes
    (pair,) = res["paired"]
    assert pair["pairs"] == 2 * 60 and pair["verdict"] in ("within noise", "difference larger than seed spread")
    # A-only minus B-only right answers is the accuracy difference, counted image by image
    by = {r["backbone"]: r for r in res["rows"]}
    diff_images = 60 * (sum(by[pair["a"]]["accuracy"]) - sum(by[pair["b"]]["accuracy"]))
    assert pair["a_only"] - pair["b_only"] == pytest.approx(diff_images, abs=1e-6)
    md = (out / "compare" / "results.md").read_text()
    assert "| tinyascii | mistral-tiny |" in md and "McNemar" in md and (out / "compare" / "accuracy.png").is_file()
    # a second compare reuses every finished cell and gives the same table
    stamps = {c.name: (out / "cells" / c.name / "train_summary.json").stat().st_mtime_ns for c in cells}
    run_cells(cells, out, log=lambda *_: None, ceiling_epochs=1)
    again = collect(cells, out)
    assert [r["accuracy"] for r in again["rows"]] == [r["accuracy"] for r in res["rows"]]
    assert stamps == {c.name: (out / "cells" / c.name / "train_summary.json").stat().st_mtime_ns for c in cells}
    # and retraining the same cells from scratch elsewhere gives identical accuracies (deterministic on CPU)
    other = plan([cfg], ["mistral-tiny", "llama-tiny"], 2, sets, tmp_path / "cmp2")
    run_cells(other, tmp_path / "cmp2", log=lambda *_: None, ceiling_epochs=1)
    assert [r["accuracy"] for r in collect(other, tmp_path / "cmp2")["rows"]] == [r["accuracy"] for r in res["rows"]]
