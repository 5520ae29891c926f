import json

import pytest

from mistral_vision.errors import UserError
from mistral_vision.predict import predict
from mistral_vision.io import read_jsonl_tolerant


def test_predict_resumes_without_duplicates(trained, data_dir):
    run = trained.run_dir
    r = predict(run, "mnist", "test", data_dir=str(data_dir), limit=120, progress=False)
    assert (r.n, r.new) == (120, 120)
    lines = r.path.read_bytes().splitlines(keepends=True)
    # an interrupted run: 70 complete records plus half of the 71st
    r.path.write_bytes(b"".join(lines[:70]) + lines[70][:25])
    r2 = predict(run, "mnist", "test", data_dir=str(data_dir), limit=120, progress=False)
    assert (r2.n, r2.new) == (120, 50)
    recs = read_jsonl_tolerant(r2.path)
    assert sorted(x["index"] for x in recs) == list(range(120))
    first = json.loads(lines[0])
    assert set(first) >= {"index", "label", "pred", "pred_name", "prob", "probs"}


def test_predictions_are_the_models_own_label_scores(trained, data_dir):
    """Each record's probabilities and class, recomputed image by image from one plain forward pass:
    the softmax over the ten digits' next-token log-probabilities (no cache, no padding, no batching)."""
    import numpy as np
    import torch

    from mistral_vision.config import load_run_config
    from mistral_vision.data.datasets import load_split
    from mistral_vision.models.backbones import load_trained
    from mistral_vision.tasks.ascii import AsciiTask

    run = trained.run_dir
    recs = read_jsonl_tolerant(predict(run, "mnist", "test", data_dir=str(data_dir), limit=24, progress=False).path)
    cfg = load_run_config(run)
    test = load_split("mnist", "test", str(data_dir), True, cfg.data.valid_size)
    model, tok, _ = load_trained(run / "model")
    digits = [tok(str(d), add_special_tokens=False)["input_ids"] for d in range(10)]
    assert all(len(ids) == 1 for ids in digits)                       # one token each: decided by one step
    prompts = AsciiTask.from_config(cfg, tok, test.label_names).encode(test.images[:24]).ids
    assert [r["index"] for r in recs] == test.indices[:24].tolist()
    with torch.no_grad():
        for r, prompt, label in zip(recs, prompts, test.labels[:24].tolist()):
            logp = torch.log_softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
            want = torch.softmax(logp[[ids[0] for ids in digits]], -1).numpy()
            assert np.abs(np.array(r["probs"]) - want).max() < 1e-5
            assert r["pred"] == int(want.argmax()) and r["pred_name"] == str(r["pred"])
            assert r["prob"] == pytest.approx(float(want.max()), abs=1e-5) and r["label"] == label


def test_predictions_of_another_model_are_refused(trained, data_dir):
    run = trained.run_dir
    r = predict(run, "mnist", "valid", data_dir=str(data_dir), limit=10, progress=False)
    meta = r.path.with_name(r.path.name + ".meta.json")
    meta.write_text(json.dumps({"model": "someone-else"}))
    with pytest.raises(UserError, match="predictions of another model"):
        predict(run, "mnist", "valid", data_dir=str(data_dir), limit=10, progress=False)


def test_predict_folder_and_wrong_dataset(trained, data_dir, tmp_path):
    import numpy as np
    from PIL import Image

    (tmp_path / "imgs" / "3").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "imgs" / "3" / "a.png")
    r = predict(trained.run_dir, images=str(tmp_path / "imgs"), progress=False)
    rec = read_jsonl_tolerant(r.path)[0]
    assert rec["label"] == 3 and rec["source"].endswith("a.png")
    with pytest.raises(UserError, match="cannot predict fashion-mnist"):
        predict(trained.run_dir, "fashion-mnist", "test", data_dir=str(data_dir), progress=False)
