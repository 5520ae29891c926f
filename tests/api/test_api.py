"""The API backend against the local stand-in server: the real SDK over loopback, faults injected."""
import json
import random

import numpy as np
import pytest

from mistral_vision.api.client import RetryPolicy, retry_after_seconds
from mistral_vision.api.predict import normalise_answer
from mistral_vision.cli import main
from mistral_vision.io import read_jsonl_tolerant
from tests.api.fake_server import KEY, FakeMistral
from tests.conftest import write_dataset

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@pytest.mark.parametrize("answer,expected", [
    ("Shirt", 6), ("  shirt.\n", 6), ('"Ankle boot"', 9), ("T-shirt/top", 0), ("It is a T-shirt/top.", 0),
    ("**Sneaker**", 7), ("Coat or Dress", -1), ("a boot", -1), ("", -1), (None, -1), ("Shirts", -1)])
def test_normaliser(answer, expected):
    assert normalise_answer(answer, FASHION) == expected


def test_normaliser_digits():
    digits = tuple(str(d) for d in range(10))
    assert normalise_answer("7", digits) == 7
    assert normalise_answer("The digit is 7.", digits) == 7
    assert normalise_answer("17", digits) == -1 and normalise_answer("seven", digits) == -1


def test_backoff_grows_is_jittered_capped_and_honours_retry_after():
    pol, rng = RetryPolicy(max_retries=5, base_s=1.0, cap_s=8.0), random.Random(0)
    for attempt in range(8):
        d = [pol.delay(attempt, None, rng) for _ in range(200)]
        assert 0 <= min(d) and max(d) <= min(8.0, 2 ** attempt) and len(set(d)) > 100
    assert pol.delay(0, 12.0, rng) == 12.0          # the server asked for longer than the backoff

    class E:
        headers = {"retry-after": "3"}
    assert retry_after_seconds(E()) == 3.0


@pytest.fixture
def server(monkeypatch):
    fake = FakeMistral()
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    monkeypatch.setenv("MISTRAL_SERVER_URL", fake.url)
    yield fake
    fake.close()


def _cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def _api_config(tmp_path, data_dir, **api):
    cfg = {"name": "apirun", "backend": "mistral-api",
           "data": {"dataset": "mnist", "data_dir": str(data_dir), "offline": True, "valid_size": 1000,
                    "train_limit": 50, "test_limit": 20},
           "ascii": {"width": 10, "height": 10, "crop": 4}, "prompt": {"template": "classify"},
           "api": {"poll_s": 0.01, "backoff_s": 0.01, "backoff_cap_s": 0.05, "concurrency": 16, **api},
           "eval": {"splits": ["valid", "test"]}}
    p = tmp_path / "api.yaml"
    p.write_text("# Run: mistral-vision run api.yaml\n" + json.dumps(cfg))
    return p


def _teach(fake, data_dir, valid_size=1000, split="valid"):
    """The stand-in 'fine-tuned model' answers every rendered prompt with its label (some verbosely)."""
    from mistral_vision.ascii.render import render_ascii
    from mistral_vision.data.datasets import load_split
    from mistral_vision.prompts import PromptFormat

    data = load_split("mnist", split, data_dir, True, valid_size)
    fmt = PromptFormat("classify")
    users = []
    for k, (art, y) in enumerate(zip(render_ascii(data.images, 10, 10, crop=4), data.labels.tolist())):
        users.append(fmt.messages(art, data.label_names, "mnist", 10, 10)[-1]["content"])
        fake.answers[users[-1]] = [str(y), f"The digit is {y}.", "no idea"][k % 3] if k % 10 in (0, 3) else str(y)
    return data, users


@pytest.fixture
def big_data(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, "mnist", n_train=1200, n_test=20)
    return root


def _failures_before(successes: int, fail_rate: float, seed: int) -> int:
    """The 429s / 500s a FakeMistral seeded ``seed`` injects before ``successes`` chat requests succeed.

    Its rolls are one seeded sequence drawn under a lock, so the count does not depend on which
    thread drew which roll: it is the number of rolls below ``fail_rate`` before the n-th one above.
    """
    rng, failed, ok = random.Random(seed), 0, 0
    while ok < successes:
        if rng.random() < fail_rate:
            failed += 1
        else:
            ok += 1
    return failed


def test_run_end_to_end_with_20_percent_failures(server, tmp_path, capsys):
    n_valid, n_test = 200, 20           # 16 requests in flight, so every split still races its threads
    data_dir = tmp_path / "data"
    write_dataset(data_dir, "mnist", n_train=n_valid + 100, n_test=n_test)
    server.fail_rate, server.rng = 0.2, random.Random(7)
    data, users = _teach(server, data_dir, valid_size=n_valid)
    cfg = _api_config(tmp_path, data_dir)
    code, out, err = _cli(["run", str(cfg), "--set", f"data.valid_size={n_valid}", "--set", "eval.misclassified=4"],
                          capsys)                  # a smaller gallery: drawing 24 wrong answers took a third of it
    assert code == 0, err
    run = tmp_path / "runs" / "apirun"
    job = json.loads((run / "api_job.json").read_text())
    assert job["status"] == "SUCCESS" and job["fine_tuned_model"].startswith("ft:open-mistral-7b")
    assert KEY not in "".join(p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file())
    recs = read_jsonl_tolerant(run / "predictions" / "mnist-valid.jsonl")
    assert len(recs) == n_valid and len({r["index"] for r in recs}) == n_valid      # exactly, no duplicates
    assert {r["index"] for r in recs} == set(data.indices.tolist())
    m = json.loads((run / "eval" / "mnist-valid" / "metrics.json").read_text())
    mt = json.loads((run / "eval" / "mnist-test" / "metrics.json").read_text())
    # every injected failure was retried once, and nothing else was: the counts are exact. The splits
    # run one after the other, so valid's retries are the failures drawn before its n-th success.
    injected = server.counts["429"] + server.counts["500"]
    assert injected == _failures_before(n_valid + n_test, 0.2, seed=7) and server.counts["429"] > 0
    assert server.counts["chat"] == n_valid + n_test + injected
    assert m["api"]["retries"] == sum(r["retries"] for r in recs) == _failures_before(n_valid, 0.2, seed=7)
    assert m["api"]["retries"] + mt["api"]["retries"] == injected
    # every answer parsed to its class ("7", "The digit is 7.") or kept as unknown ("no idea", 1 prompt in 15)
    want = {int(i): -1 if server.answers[u] == "no idea" else int(y)
            for i, u, y in zip(data.indices, users, data.labels)}
    assert {r["index"]: r["pred"] for r in recs} == want
    assert m["unknown"] == sum(p == -1 for p in want.values()) > 0
    assert m["accuracy"] == pytest.approx(1 - m["unknown"] / n_valid)
    report = (run / "report.md").read_text()
    assert f"{m['api']['retries']} retried requests" in report and "unknown" in report


def test_interrupted_predictions_resume_without_duplicates(server, big_data, tmp_path, capsys):
    data, users = _teach(server, big_data)
    cfg = _api_config(tmp_path, big_data, fine_tuned_model="ft:open-mistral-7b:x:1", max_retries=2)
    code, _, err = _cli(["run", str(cfg), "--set", "eval.splits=[valid]"], capsys)
    assert code == 0, err
    run = tmp_path / "runs" / "apirun"
    pred = run / "predictions" / "mnist-valid.jsonl"
    # lose the last 300 records and tear the last line, as a kill -9 would
    lines = pred.read_text().splitlines(keepends=True)
    pred.write_text("".join(lines[:700]) + lines[700][:15])
    # and make some prompts fail for good: the run stops with one line and keeps the rest
    lost = [json.loads(x)["index"] for x in lines[700:]]
    pos = {i: int(np.flatnonzero(data.indices == i)[0]) for i in lost}
    server.always_fail = {users[pos[i]] for i in lost[:5]}
    n_fail = sum(users[pos[i]] in server.always_fail for i in lost)
    code, _, err = _cli(["predict", str(run), "--dataset", "mnist", "--split", "valid"], capsys)
    assert code == 2 and f"{n_fail} of 300 requests still failed after 2 retries" in err, err
    assert len(err.strip().splitlines()) == 1
    assert len(read_jsonl_tolerant(pred)) == 1000 - n_fail
    server.always_fail = set()
    code, out, err = _cli(["predict", str(run), "--dataset", "mnist", "--split", "valid"], capsys)
    assert code == 0, err
    recs = read_jsonl_tolerant(pred)
    assert len(recs) == 1000 and len({r["index"] for r in recs}) == 1000


def test_slow_responses_past_the_timeout_are_retried(server, big_data, tmp_path, capsys):
    server.slow_rate, server.slow_s = 0.3, 1.0
    _teach(server, big_data, split="test")
    cfg = _api_config(tmp_path, big_data, fine_tuned_model="ft:m", timeout_s=0.3)
    code, _, err = _cli(["run", str(cfg), "--set", "eval.splits=[test]", "--set", "api.concurrency=8"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "runs" / "apirun" / "eval" / "mnist-test" / "metrics.json").read_text())
    assert m["n"] == 20 and m["api"]["retries"] >= 1 and server.counts["slow"] >= 1


def test_manual_sequence_upload_finetune_wait_predict_evaluate(server, data_dir, tmp_path, capsys):
    out_dir = tmp_path / "runs" / "manual" / "data"
    assert _cli(["prepare", "--dataset", "mnist", "--data-dir", str(data_dir), "--offline", "--ascii-size", "10",
                 "--crop", "4", "--valid-size", "100", "--out", str(out_dir)], capsys)[0] == 0
    code, out, err = _cli(["api", "upload", str(out_dir / "valid.jsonl")], capsys)
    assert code == 0 and len(out.strip()) == 36
    code, out, err = _cli(["api", "finetune", "--train", str(out_dir / "train.jsonl"), "--valid",
                           str(out_dir / "valid.jsonl"), "--model", "open-mistral-7b", "--steps", "10",
                           "--no-start"], capsys)
    assert code == 0, err
    job_id = out.splitlines()[0]
    run = tmp_path / "runs" / "manual"
    assert json.loads((run / "api_job.json").read_text())["job_id"] == job_id
    assert json.loads((run / "config.json").read_text())["backend"] == "mistral-api"
    for _ in range(2):
        code, out, err = _cli(["api", "status", job_id], capsys)
        assert code == 0 and f"{job_id} QUEUED" in out                # not started yet
    assert _cli(["api", "start", job_id], capsys)[0] == 0
    code, out, err = _cli(["api", "wait", job_id, "--run-dir", str(run), "--poll", "0.01"], capsys)
    assert code == 0 and "SUCCESS" in out and "train_loss 1.2500" in out
    code, out, _ = _cli(["api", "list"], capsys)
    assert job_id in out
    _teach(server, data_dir, valid_size=100)
    code, out, err = _cli(["predict", str(run), "--dataset", "mnist", "--split", "valid", "--data-dir", str(data_dir)],
                          capsys)
    assert code == 0, err
    code, out, err = _cli(["evaluate", str(run), "--dataset", "mnist", "--split", "valid", "--data-dir",
                           str(data_dir)], capsys)
    assert code == 0 and json.loads((run / "eval" / "mnist-valid" / "metrics.json").read_text())["n"] == 100
    code, out, _ = _cli(["api", "cancel", job_id], capsys)
    assert code == 0 and "CANCELLED" in out


def test_estimate_counts_tokens_offline_and_compares_formats(tmp_path, capsys):
    data_dir = tmp_path / "data"
    write_dataset(data_dir, "mnist", n_train=5600, n_test=0)      # the default 5,000-image valid split fits
    out_dir = tmp_path / "d"
    main(["prepare", "--dataset", "mnist", "--data-dir", str(data_dir), "--offline", "--ascii-size", "14",
          "--valid-size", "100", "--out", str(out_dir)])
    code, out, err = _cli(["api", "estimate", str(out_dir / "train.jsonl"), "--epochs", "2", "--predict", "100",
                           "--dataset", "mnist", "--data-dir", str(data_dir)], capsys)
    assert code == 0, err
    assert "5500 samples" in out and "2.00 epochs" in out and "$" in out and "100x50 (original)" in out
    rows = {ln.split()[0]: float(ln.split("tokens")[0].split()[-1]) for ln in out.splitlines() if "per 10k" in ln}
    assert rows["10x10,"] < rows["14x14"] < rows["28x28"] < rows["100x50"]


@pytest.mark.parametrize("setup,args,msg", [
    ("nokey", ["api", "list"], "MISTRAL_API_KEY is not set"),
    ("badkey", ["api", "list"], "rejected the API key (401"),
    ("", ["api", "status", "no-such-job"], "job no-such-job: not found (404)"),
    ("", ["api", "wait", "FAILJOB", "--poll", "0.01"], "ended FAILED: internal training error"),
    ("", ["api", "wait", "INVALIDJOB", "--poll", "0.01"], "ended FAILED_VALIDATION: line 3"),
    ("", ["api", "upload", "BAD"], "invalid chat JSONL: line 2"),
    ("", ["api", "estimate", "GOOD", "--model", "gpt-4"], "unknown fine-tunable model 'gpt-4'"),
])
def test_errors_are_one_line_exit_2(server, tmp_path, capsys, monkeypatch, setup, args, msg):
    good = tmp_path / "good.jsonl"
    good.write_text('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "7"}]}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '{"messages": [{"role": "user", "content": "x"}]}\n')
    if setup == "nokey":
        monkeypatch.delenv("MISTRAL_API_KEY")
    if setup == "badkey":
        monkeypatch.setenv("MISTRAL_API_KEY", "wrong")
    from mistral_vision.api import jobs
    from mistral_vision.api.client import make_client
    for name in ("FAILJOB", "INVALIDJOB"):
        if name in args:
            client = make_client()
            fid = jobs.upload(client, good)
            job = jobs.create_job(client, "open-mistral-7b-fail" if name == "FAILJOB" else "open-mistral-7b-invalid",
                                  [fid], [], steps=5)
            args = [job.id if a == name else a for a in args]
    args = [str(good) if a == "GOOD" else str(bad) if a == "BAD" else a for a in args]
    code, out, err = _cli(args, capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert KEY not in err and "wrong" not in err


def test_dry_run_creates_nothing(server, tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "7"}]}\n')
    code, out, err = _cli(["api", "finetune", "--train", str(good), "--model", "open-mistral-7b", "--dry-run"], capsys)
    assert code == 0 and "nothing was created" in out and server.counts["requests"] == 0
