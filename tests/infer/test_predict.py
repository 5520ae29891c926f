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
    assert abs(sum(first["probs"]) - 1) < 1e-4 and 0 <= first["pred"] < 10


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
