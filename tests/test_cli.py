"""End to end through the command line, and one clear line + exit code 2 for bad input."""
import json

import numpy as np
import pytest

from mistral_vision.cli import main
from tests.conftest import tiny_overrides


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_end_to_end(data_dir, capsys, tmp_path):
    sets = sum((["--set", o] for o in tiny_overrides(data_dir, name="e2e", **{"train.epochs": 3})), [])
    code, out, err = run_cli(["run", str(_cfg(tmp_path))] + sets, capsys)
    assert code == 0, err
    run = tmp_path / "runs" / "e2e"
    for f in ["report.md", "curves.png", "eval/mnist-valid/metrics.json", "eval/mnist-valid/confusion.png",
              "eval/mnist-test/metrics.json", "data/train.jsonl", "data/test.jsonl", "config.yaml"]:
        assert (run / f).is_file(), f
    m = json.loads((run / "eval/mnist-test/metrics.json").read_text())
    recs = [json.loads(line) for line in (run / "predictions/mnist-test.jsonl").read_text().splitlines()]
    assert m["n"] == len(recs) == 200 and len({r["index"] for r in recs}) == 200
    assert m["accuracy"] == sum(r["pred"] == r["label"] for r in recs) / len(recs)
    conf = np.array(m["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == m["n"] and np.trace(conf) / m["n"] == m["accuracy"]
    assert conf.sum(1).tolist() == np.bincount([r["label"] for r in recs], minlength=10).tolist()
    # the bar's row gives the class away: 3 tiny epochs reach 0.48 (deterministic); chance 0.1, majority 0.13
    majority = np.bincount([r["label"] for r in recs]).max() / len(recs)
    assert m["majority_baseline"] == majority and m["accuracy"] > max(0.3, 2 * majority)
    assert (run / "report.md").read_text().count("![confusion matrix]") == 2
    # the evaluate command writes the same file the pipeline did
    code, out, _ = run_cli(["evaluate", str(run), "--dataset", "mnist", "--split", "test",
                            "--data-dir", str(data_dir)], capsys)
    assert code == 0 and json.loads((run / "eval/mnist-test/metrics.json").read_text())["accuracy"] == m["accuracy"]
    # test-time augmentation beside it, and an unknown view set as one line, exit 2
    code, out, _ = run_cli(["evaluate", str(run), "--dataset", "mnist", "--split", "test", "--limit", "20",
                            "--data-dir", str(data_dir), "--tta", "shift4"], capsys)
    assert code == 0 and "eval/mnist-test-tta-shift4/" in out
    code, _, err = run_cli(["predict", str(run), "--dataset", "mnist", "--split", "test", "--tta", "zoom"], capsys)
    assert code == 2 and "unknown test-time augmentation 'zoom'" in err and len(err.strip().splitlines()) == 1
    assert main(["validate", str(run / "data" / "train.jsonl")]) == 0


def _cfg(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("# Run: mistral-vision run c.yaml\nname: x\n")
    return p


def test_prepare_writes_splits(data_dir, capsys, tmp_path):
    code, out, _ = run_cli(["prepare", "--dataset", "fashion-mnist", "--data-dir", str(data_dir), "--offline",
                            "--ascii-size", "8", "--valid-size", "100", "--out", str(tmp_path / "j")], capsys)
    assert code == 0
    lines = (tmp_path / "j" / "train.jsonl").read_text().splitlines()
    assert len(lines) == 500
    s = json.loads(lines[0])
    assert s["messages"][-1]["role"] == "assistant" and s["messages"][-1]["content"] in (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert (tmp_path / "j" / "test.jsonl").is_file()


def _corrupt(data_dir):
    p = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])


@pytest.mark.parametrize("args,setup,msg", [
    (["prepare", "--dataset", "svhn", "--out", "o"], None, "unknown dataset 'svhn'; known: fashion-mnist, mnist"),
    (["prepare", "--dataset", "mnist", "--data-dir", "{data}", "--out", "o"], _corrupt, "corrupt or truncated gzip"),
    (["prepare", "--dataset", "mnist", "--data-dir", "{tmp}/nowhere", "--offline", "--out", "o"], None, "not found"),
    (["train", "{tmp}/missing.yaml"], None, "config file not found"),
    (["train", "{cfg}", "--set", "model.backbone=gpt9"], None, "unknown backbone 'gpt9'"),
    (["train", "{cfg}", "--set", "train.speed=3"], None, "unknown config key 'train.speed'"),
    (["validate", "{tmp}/bad.jsonl"], None, "1 problem"),
    (["predict", "{tmp}", "--images", "{tmp}/x.png"], None, "not a run directory"),
    (["report", "{tmp}"], None, "not a run directory"),
])
def test_bad_input_is_one_line_exit_2(args, setup, msg, data_dir, tmp_path, capsys):
    (tmp_path / "bad.jsonl").write_text('{"messages": 3}\n')
    cfg = _cfg(tmp_path)
    if setup:
        setup(data_dir)
    args = [a.format(data=data_dir, tmp=tmp_path, cfg=cfg) for a in args]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert msg in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("o/*.jsonl"))            # nothing half-written


def test_failed_prepare_leaves_no_prepare_json(data_dir, tmp_path, capsys):
    # a prepare.json describes finished files (`api finetune` trusts it): none after a failure,
    # not even a stale one from an earlier prepare into the same folder
    args = ["prepare", "--dataset", "mnist", "--data-dir", str(data_dir), "--offline", "--ascii-size", "8",
            "--valid-size", "100", "--out", str(tmp_path / "o")]
    assert run_cli(args, capsys)[0] == 0 and (tmp_path / "o" / "prepare.json").is_file()
    _corrupt(data_dir)
    for out_dir in ("o", "fresh"):
        code, out, err = run_cli(args[:-1] + [str(tmp_path / out_dir)], capsys)
        assert code == 2 and "corrupt or truncated gzip" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (tmp_path / out_dir / "prepare.json").exists()
        assert not list((tmp_path / out_dir).glob(".*"))     # no temporary files left behind


def test_undecodable_image_and_incompatible_resume(data_dir, tmp_path, capsys):
    # a finished run is all this needs, not a trained one: 2 steps on 32 images
    sets = sum((["--set", o] for o in tiny_overrides(data_dir, name="r", **{"data.train_limit": 32})), [])
    assert main(["train", str(_cfg(tmp_path))] + sets) == 0
    (tmp_path / "x.png").write_bytes(b"\x89PNG garbage")
    code, _, err = run_cli(["predict", str(tmp_path / "runs" / "r"), "--images", str(tmp_path / "x.png")], capsys)
    assert code == 2 and "x.png: cannot decode image" in err
    code, _, err = run_cli(["train", str(_cfg(tmp_path)), "--resume"] + sets + ["--set", "ascii.width=12"], capsys)
    assert code == 2 and "was trained with ascii.width=10" in err
