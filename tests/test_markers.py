"""The `gpu` and `network` markers skip cleanly where their resource is absent, and run where it exists.

Each case runs a tiny inner test file under the project's own pytest settings (pyproject.toml) and
the skipping hook of tests/conftest.py, in this process, so CUDA and the environment can be faked.
"""
from pathlib import Path

import pytest
import torch      # imported before pytester snapshots sys.modules: a torch imported twice in one process crashes

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
INNER = """
import pytest

@pytest.mark.gpu
def test_on_gpu():
    pass

@pytest.mark.network
def test_online():
    pass

@pytest.mark.gpu
@pytest.mark.network
def test_both():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def inner(pytester):
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    pytester.makeconftest("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    pytester.makepyfile(test_inner=INNER)
    return pytester


def _outcomes(pytester):
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    return result, {r.nodeid.split("::")[-1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                    if r.when == "call" or r.skipped}


@pytest.mark.parametrize("cuda,network,ran", [
    (False, None, {"test_plain"}),
    (True, None, {"test_plain", "test_on_gpu"}),
    (False, "1", {"test_plain", "test_online"}),
    (True, "1", {"test_plain", "test_on_gpu", "test_online", "test_both"}),
    (True, "0", {"test_plain", "test_on_gpu"}),                  # only "1" turns the network tests on
])
def test_marked_tests_run_only_where_their_resource_exists(inner, monkeypatch, cuda, network, ran):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if network is None:
        monkeypatch.delenv("MISTRAL_VISION_NETWORK_TESTS", raising=False)
    else:
        monkeypatch.setenv("MISTRAL_VISION_NETWORK_TESTS", network)
    result, outcomes = _outcomes(inner)
    every = {"test_plain", "test_on_gpu", "test_online", "test_both"}
    assert outcomes == {t: "passed" if t in ran else "skipped" for t in every}
    result.assert_outcomes(passed=len(ran), skipped=4 - len(ran))
    out = result.stdout.str()
    assert ("needs a CUDA device" in out) == (not cuda)
    assert ("set MISTRAL_VISION_NETWORK_TESTS=1" in out) == (network != "1")


def test_a_misspelt_marker_is_an_error_not_a_test_that_always_runs(pytester):
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    pytester.makepyfile(test_typo="import pytest\n\n@pytest.mark.gpus\ndef test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'gpus' not found in `markers` configuration option*"])
