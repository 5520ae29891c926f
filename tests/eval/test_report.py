"""The run report: names the run, one results row per evaluated split, figures that exist."""
import json
import re

import pytest

from mistral_vision.errors import UserError
from mistral_vision.eval.report import write_report


@pytest.fixture
def one_thread():
    """train.threads=1 keeps the tiny run fast on a busy machine; give later tests their threads back."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_report_of_a_tiny_run(tiny_config, one_thread):
    from mistral_vision.eval.evaluate import evaluate
    from mistral_vision.pipeline import train_run

    cfg = tiny_config(name="rep", **{"data.train_limit": 160, "train.threads": 1})   # 10 steps, 2 logged losses
    train_run(cfg, progress=False)
    run = cfg.run_dir
    limits = {"valid": 24, "test": 40}                 # different n, so the rows cannot be swapped unnoticed
    for split, limit in limits.items():
        evaluate(run, "mnist", split, limit=limit, progress=False)
    text = write_report(run).read_text()
    assert text.startswith("# Report: rep\n")
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in text.splitlines() if ln.startswith("| mnist-")}
    assert sorted(rows) == ["mnist-test", "mnist-valid"]
    for split, limit in limits.items():
        m = json.loads((run / "eval" / f"mnist-{split}" / "metrics.json").read_text())
        assert m["n"] == limit
        assert rows[f"mnist-{split}"].startswith(f"| mnist-{split} | {limit} | **{100 * m['accuracy']:.2f}%** | ")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"curves.png", "eval/mnist-valid/confusion.png", "eval/mnist-test/confusion.png"} <= set(links)
    assert all((run / link).is_file() for link in links), links


def test_report_without_a_trained_model_is_one_line(tiny_config, tmp_path):
    from mistral_vision.config import dump_config

    cfg = tiny_config(name="untrained")
    dump_config(cfg, cfg.run_dir)                      # a run directory, but never trained
    with pytest.raises(UserError) as e:
        write_report(cfg.run_dir)
    assert "train_summary.json missing" in str(e.value) and "\n" not in str(e.value)
    assert not (cfg.run_dir / "report.md").exists()
    with pytest.raises(UserError, match="not a run directory") as e:
        write_report(tmp_path / "empty")
    assert "\n" not in str(e.value)
