"""What `run` says when the official test files are absent, and what its report ends with.

The t10k download failure (every mirror's URL and errno) was printed in the log and pasted into
report.md, and the report ended with ~200 lines of config JSON. Now: one short clause, once in
the log and once in the report, and a link to the run's config.yaml.
"""
import urllib.request

import pytest

from mistral_vision.cli import main
from tests.conftest import tiny_overrides, write_dataset
from tests.test_llava_cli import LLAVA, sets

ROUTES = {"ascii": {}, "llava": LLAVA | {"stages": "[{name: instruct, trainable: {projector: 0.003}, epochs: 1}]"}}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_run_without_t10k_says_so_once_and_briefly(tmp_path, capsys, monkeypatch, route):
    def no_network(url, timeout=None):
        raise OSError(f"<urlopen error [Errno -3] Temporary failure in name resolution> {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    write_dataset(tmp_path / "data", "mnist", n_train=300, n_test=0)
    (tmp_path / "c.yaml").write_text("name: x\n")
    over = tiny_overrides(tmp_path / "data", name="n", **ROUTES[route],
                          **{"data.offline": "false", "data.valid_size": 50})
    assert main(["run", str(tmp_path / "c.yaml")] + sets(over)) == 0
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if "t10k" in line]
    assert len(skipped) == 1, out
    assert ": mnist/t10k-images-idx3-ubyte.gz is not here and could not be downloaded" in skipped[0]
    assert "Errno" not in out and "http" not in out

    report = (tmp_path / "runs/n/report.md").read_text()
    notes = [line for line in report.splitlines() if "t10k" in line]
    assert len(notes) == 1 and "Errno" not in report and "http" not in report
    assert "evaluate runs/n --dataset mnist --split test" in notes[0]
    assert "```json" not in report and report.rstrip().endswith("(the same as `config.json`).")
    assert "[config.yaml](config.yaml)" in report and (tmp_path / "runs/n/config.yaml").is_file()
