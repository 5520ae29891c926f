import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mistral_vision.errors import UserError
from mistral_vision.eval.evaluate import evaluate
from mistral_vision.predict import predict
from mistral_vision.data.augment import TTA_VIEWS, tta_views
from mistral_vision.io import read_jsonl_tolerant
from mistral_vision.data.augment import mirror_images, translate_images
from mistral_vision.train.loop import train


def test_translate_moves_whole_pixels_and_fills_with_zero():
    img = np.zeros((1, 5, 6), np.uint8)
    img[0, 2, 3] = 200
    img[0, 0, 0] = 9                       # moved out of the frame by (1, -1)
    out = translate_images(img, 1, -1)
    assert out.shape == img.shape
    assert out[0, 3, 2] == 200 and out.sum() == 200
    assert np.array_equal(translate_images(out, -1, 1)[0, 2, 3], 200)
    assert np.array_equal(translate_images(img, 0, 0), img)
    assert np.array_equal(mirror_images(img)[0, 2], img[0, 2, ::-1])


def test_view_sets_start_with_the_image_itself_and_unknown_names_fail():
    img = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in TTA_VIEWS:
        views = tta_views(name)
        assert np.array_equal(views[0](img), img)
        outs = [v(img) for v in views]
        assert all(o.shape == img.shape for o in outs)
        assert len({o.tobytes() for o in outs}) == len(views)      # no view repeated
    assert len(tta_views("shift4")) == 5 and len(tta_views("shift8")) == 9
    with pytest.raises(UserError, match="known: none, shift4, shift8"):
        tta_views("rotate")


def test_predictions_average_the_views_log_probabilities(trained, data_dir):
    from mistral_vision.config import load_run_config
    from mistral_vision.infer.records import resolve_images
    from mistral_vision.infer.scorer import LabelScorer
    from mistral_vision.models.backbones import load_trained
    from mistral_vision.tasks.ascii import AsciiTask

    run = trained.run_dir
    r = predict(run, "mnist", "valid", data_dir=str(data_dir), limit=40, progress=False, tta="shift4")
    assert r.path.name == "mnist-valid-tta-shift4.jsonl"
    recs = read_jsonl_tolerant(r.path)
    plain = read_jsonl_tolerant(predict(run, "mnist", "valid", data_dir=str(data_dir), limit=40,
                                        progress=False).path)
    # by hand: each view scored on its own, log-softmax over the classes, averaged
    cfg = load_run_config(run)
    data, _ = resolve_images(cfg, "mnist", "valid", data_dir=str(data_dir), limit=40)
    model, tok, _ = load_trained(run / "model")
    task = AsciiTask.from_config(cfg, tok, data.label_names)
    scorer = LabelScorer(model, task.label_ids, tok.pad_token_id, tok.eos_token_id)
    per_view = [torch.log_softmax(scorer.score(task.encode(v(data.images)).ids), -1) for v in tta_views("shift4")]
    want = torch.softmax(torch.stack(per_view).mean(0), -1).numpy()
    got = np.array([x["probs"] for x in recs])
    assert np.abs(got - want).max() < 1e-5
    assert [x["pred"] for x in recs] == want.argmax(-1).tolist()
    # the first view is the plain prediction
    assert np.abs(np.array([x["probs"] for x in plain]) - torch.softmax(per_view[0], -1).numpy()).max() < 1e-5
    assert not np.allclose(got, np.array([x["probs"] for x in plain]), atol=1e-3)


def test_tta_files_are_kept_apart(trained, data_dir, tmp_path):
    run = trained.run_dir
    out = tmp_path / "p.jsonl"
    predict(run, "mnist", "valid", data_dir=str(data_dir), limit=10, progress=False, out=out)
    with pytest.raises(UserError, match="made with test-time augmentation 'none', not 'flip'"):
        predict(run, "mnist", "valid", data_dir=str(data_dir), limit=10, progress=False, out=out, tta="flip")
    with pytest.raises(UserError, match="for local models"):
        predict(run, "mnist", "valid", data_dir=str(data_dir), limit=10, progress=False, tta="shift4",
                backend="mistral-api")
    m = evaluate(run, "mnist", "valid", data_dir=str(data_dir), limit=30, progress=False, tta="shift8")
    saved = json.loads((run / "eval" / "mnist-valid-tta-shift8" / "metrics.json").read_text())
    assert saved["tta"] == "shift8" and saved["n"] == 30 and m["eval_dir"].endswith("mnist-valid-tta-shift8")
    assert not (run / "eval" / "mnist-valid").exists()


def test_the_runs_own_views_keep_the_plain_names(tiny_config, data_dir):
    cfg = tiny_config(name="tta-own", **{"eval.tta": "shift4", "train.epochs": 0.2})
    train(cfg, progress=False)
    m = evaluate(cfg.run_dir, "mnist", "valid", data_dir=str(data_dir), limit=20, progress=False)
    assert m["tta"] == "shift4" and m["eval_dir"].endswith("eval/mnist-valid")
    meta = json.loads((cfg.run_dir / "predictions" / "mnist-valid.jsonl.meta.json").read_text())
    assert meta["tta"] == "shift4"
    from mistral_vision.eval.report import write_report

    report = Path(write_report(cfg.run_dir)).read_text()
    assert "| mnist-valid | 20 |" in report and report.count("| shift4 |") == 1
    assert "Test-time views `shift4`: the image and its 4 one-pixel shifts" in report
