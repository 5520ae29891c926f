"""Visual instruction data end to end: prepare, validate, run, evaluate (split or LLaVA JSON file), bad input."""
import json
import string

import numpy as np
import pytest
import torch

from mistral_vision.cli import main
from tests.conftest import tiny_overrides
from tests.test_llava_cli import sets

VQA = {"data.dataset": "mnist-vqa", "data.train_canvases": 120, "data.valid_canvases": 16, "data.test_canvases": 8,
       "data.turns": 3, "vision.image_size": 56, "vision.hidden_size": 32, "vision.num_layers": 2,
       "vision.num_heads": 4, "vision.intermediate_size": 64, "model.sliding_window": 512,
       "train.loss_reduction": "token", "train.eval_every": 4, "train.eval_samples": 20, "eval.batch_size": 16,
       "stages": "[{name: align, data: captions, trainable: {projector: 0.003, vision: 0.003}, epochs: 1}, "
                 "{name: instruct, data: all, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 1}]"}


@pytest.fixture(scope="module")
def vqa_run(tmp_path_factory):
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("vqa")
    write_dataset(root / "data", "mnist")
    over = tiny_overrides(root / "data", name="vq", route="llava", **VQA) + [f"runs_dir={root / 'runs'}"]
    cfg = root / "c.yaml"
    cfg.write_text("name: x\n")
    assert main(["run", str(cfg)] + sets(over)) == 0
    return root, root / "runs" / "vq"


def test_run_writes_per_type_metrics_for_every_split(vqa_run):
    from mistral_vision.eval.metrics import wilson

    root, run = vqa_run
    for split in ("valid", "test"):
        m = json.loads((run / "eval" / f"mnist-vqa-{split}" / "metrics.json").read_text())
        recs = [json.loads(x) for x in (run / "eval" / f"mnist-vqa-{split}" / "answers.jsonl").read_text().splitlines()]
        assert m["n"] == len(recs) == {"valid": 16, "test": 8}[split] * 3
        # every count recomputed from the answers, every interval the Wilson interval of its own counts
        for part, rs in [(m, recs)] + [(m["per_type"][t], [r for r in recs if r["type"] == t])
                                      for t in sorted({r["type"] for r in recs})]:
            correct = sum(r["correct"] for r in rs)
            assert (part["n"], part["correct"], part["accuracy"]) == (len(rs), correct, correct / len(rs))
            assert part["ci95"] == pytest.approx(list(wilson(correct, len(rs))), abs=1e-12)
        assert m["per_type"].keys() == {r["type"] for r in recs}
        assert m["img"]["n"] == m["n"] and m["no_img"] is None
    assert (run / "eval" / "mnist-vqa-valid" / "per_type.png").stat().st_size > 1000
    report = (run / "report.md").read_text()
    assert "## Results (questions)" in report and "per_type.png" in report and "conversations" in report
    summary = json.loads((run / "train_summary.json").read_text())
    assert [s["name"] for s in summary["stages"]] == ["align", "instruct"]
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in curve if "valid_accuracy" in r]
    per_type = checks[-1]["valid_per_type"]                    # the monitor's scored types, for the curve
    # its last check scored the first 20 validation questions (train.eval_samples) with the final model:
    # the scored ones among them, type by type, as the final evaluation answered them
    assert checks[-1]["step"] == sum(st["steps"] for st in summary["stages"])
    valid = [json.loads(x) for x in (run / "eval" / "mnist-vqa-valid" / "answers.jsonl").read_text().splitlines()]
    first = [r for r in valid if r["index"] < 20 and r["mode"] == "scored"]
    assert len(per_type) >= 3 and "caption" not in per_type
    assert per_type == {t: round(sum(r["correct"] for r in first if r["type"] == t)
                                 / sum(r["type"] == t for r in first), 4) for t in {r["type"] for r in first}}


def test_scored_answers_are_candidates_and_captions_are_generated(vqa_run):
    _, run = vqa_run
    recs = [json.loads(line) for line in (run / "eval" / "mnist-vqa-valid" / "answers.jsonl").read_text().splitlines()]
    from mistral_vision.data.run_data import load_questions
    from mistral_vision.config import load_run_config

    qs = load_questions(load_run_config(run).data, "valid")
    for r in recs:
        item = qs.items[r["index"]]
        assert r["truth"] == item.answer and r["type"] == item.type
        if item.candidates:
            assert r["mode"] == "scored" and r["pred"] in item.candidates and 0 < r["prob"] <= 1
        else:
            assert r["mode"] == "generated" and r["type"] == "caption"
        assert r["correct"] == (r["pred"].strip(". ").lower() == r["truth"].strip(". ").lower())


def test_scored_probabilities_equal_full_sequence_likelihoods(vqa_run):
    """The cached candidate scoring gives the softmax of each candidate's teacher-forced log-likelihood."""
    _, run = vqa_run
    from mistral_vision.config import load_run_config
    from mistral_vision.data.run_data import label_names_for, load_questions
    from mistral_vision.infer.questions import QuestionAnswerer
    from mistral_vision.models.build import load_run_model
    from mistral_vision.tasks import make_task

    cfg = load_run_config(run)
    model, processor, _ = load_run_model(run / "model", "float32", cfg)
    task = make_task(cfg, processor, label_names_for(cfg.data))
    qs = load_questions(cfg.data, "valid")
    k = next(i for i, it in enumerate(qs.items) if it.type == "cell")
    it = qs.items[k]
    rec = QuestionAnswerer(model, task, score_eos=True).answer(qs, [k])[0]
    img = qs.images[it.image]
    prompt = task.question_ids(it.turns, img)
    pv = task.image_extras(img[None])["pixel_values"]
    lls = []
    with torch.no_grad():
        for cand in task.answer_ids(it.candidates):
            ids = torch.tensor([prompt + cand])
            lp = torch.log_softmax(model(input_ids=ids, pixel_values=pv).logits[0, :-1].float(), -1)
            lls.append(sum(lp[len(prompt) - 1 + j, t].item() for j, t in enumerate(cand)))
    probs = torch.softmax(torch.tensor(lls), -1)
    assert rec["pred"] == it.candidates[int(probs.argmax())]
    assert abs(rec["prob"] - float(probs.max())) < 1e-4


def test_prepare_writes_llava_json_that_validates_and_evaluates(vqa_run, capsys):
    root, run = vqa_run
    out = root / "prepared"
    assert main(["prepare", "--dataset", "mnist-vqa", "--route", "llava", "--out", str(out), "--data-dir",
                 str(root / "data"), "--offline", "--valid-size", "100", "--set", "train_canvases=30",
                 "--set", "valid_canvases=16", "--set", "test_canvases=8"]) == 0
    valid = json.loads((out / "valid.json").read_text())
    assert len(valid) == 48 and {"id", "image", "conversations", "type"} <= set(valid[0])
    assert main(["validate", str(out / "train.json"), "--image-folder", str(out / "images")]) == 0
    assert "OK, 60 samples" in capsys.readouterr().out
    # the same questions as the run's own valid split, read back from the files
    assert main(["evaluate", str(run), "--questions", str(out / "valid.json"), "--image-folder",
                 str(out / "images")]) == 0
    a = json.loads((run / "eval" / "questions-valid" / "metrics.json").read_text())
    b = json.loads((run / "eval" / "mnist-vqa-valid" / "metrics.json").read_text())
    # the PNG round trip of the canvases is lossless: the same answers, question by question
    assert a["n"] == b["n"] and a["per_type"] == b["per_type"] and a["accuracy"] == b["accuracy"]
    ra, rb = ([json.loads(x) for x in (run / "eval" / d / "answers.jsonl").read_text().splitlines()]
              for d in ("questions-valid", "mnist-vqa-valid"))
    key = lambda r: (r["index"], r["question"], r["truth"], r["pred"], r["correct"])  # noqa: E731
    assert sorted(map(key, ra)) == sorted(map(key, rb))


def test_prepare_ascii_writes_chat_jsonl_with_the_art(vqa_run):
    root, _ = vqa_run
    out = root / "prepared-ascii"
    assert main(["prepare", "--dataset", "mnist-vqa", "--route", "ascii", "--out", str(out), "--data-dir",
                 str(root / "data"), "--offline", "--valid-size", "100", "--set", "train_canvases=5",
                 "--set", "valid_canvases=2", "--set", "test_canvases=2"]) == 0
    first = json.loads((out / "valid.jsonl").read_text().splitlines()[0])
    user = first["messages"][0]["content"]
    assert "<image>" not in user and user.count("\n") >= 28 and first["messages"][1]["role"] == "assistant"
    assert main(["validate", str(out / "train.jsonl")]) == 0


def test_scienceqa_style_file_scored_and_generated(vqa_run, tmp_path, capsys):
    """A user's multiple-choice file: letters scored by default; --answers generate parses replies like LLaVA."""
    from PIL import Image

    _, run = vqa_run
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((56, 56), np.uint8)).save(tmp_path / "img" / "a.png")
    samples = [{"id": str(i), **({"image": "a.png"} if i % 2 == 0 else {}), "conversations": [
        {"from": "human", "value": f"Context: N/A\nQuestion: Pick {i}?\nOptions: (A) one (B) two (C) three\n"
                                   "Answer with the option's letter from the given choices directly."
                                   + ("\n<image>" if i % 2 == 0 else "")},
        {"from": "gpt", "value": "The answer is B."}]} for i in range(6)]
    f = tmp_path / "sqa.json"
    f.write_text(json.dumps(samples))
    assert main(["evaluate", str(run), "--questions", str(f), "--image-folder", str(tmp_path / "img")]) == 0
    m = json.loads((run / "eval" / "questions-sqa" / "metrics.json").read_text())
    assert m["n"] == 6 and m["img"]["n"] == 3 and m["no_img"]["n"] == 3 and m["failed"] == 0
    assert list(m["per_type"]) == ["multiple-choice"]
    scored = [json.loads(x) for x in (run / "eval" / "questions-sqa" / "answers.jsonl").read_text().splitlines()]
    assert all(r["mode"] == "scored" and r["pred"] in ["A", "B", "C"] for r in scored)    # one of its options
    assert [r["correct"] for r in scored] == [r["pred"] == "B" for r in scored]           # every truth is B
    assert m["correct"] == sum(r["pred"] == "B" for r in scored)
    assert main(["evaluate", str(run), "--questions", str(f), "--image-folder", str(tmp_path / "img"),
                 "--answers", "generate"]) == 0
    g = json.loads((run / "eval" / "questions-sqa-generate" / "metrics.json").read_text())
    recs = [json.loads(x) for x in (run / "eval" / "questions-sqa-generate" / "answers.jsonl").read_text().splitlines()]
    from mistral_vision.data.sqa import LETTERS, parse_answer

    assert len(recs) == 6 and g["failed"] == sum(r["pred"] == "FAILED" for r in recs)
    for r in recs:      # each reply parsed as LLaVA does: one capital letter (any, as LLaVA's regex) or FAILED
        assert r["mode"] == "generated" and r["truth"] == "B"
        assert r["pred"] == parse_answer(r["text"], list(LETTERS)) and r["pred"] in [*string.ascii_uppercase, "FAILED"]
        assert r["correct"] == (r["pred"] == "B")


@pytest.mark.parametrize("args, message", [
    (["evaluate", "RUN", "--questions", "Q", "--image-folder", "nowhere"], "image folder nowhere does not exist"),
    (["evaluate", "RUN", "--dataset", "cifar-vqa", "--split", "valid"], "not a question set"),
    (["evaluate", "RUN", "--questions", "BAD"], "sample 1 (id \"b\")"),
    (["evaluate", "RUN", "--questions", "NOLETTERS"], "has no options like '(A)"),
    (["prepare", "--dataset", "mnist-vqa", "--route", "llava", "--out", "X", "--set", "question_types=[colour]"],
     "unknown question type 'colour'; known: caption, cell"),
])
def test_bad_input_is_one_line_and_exit_2(vqa_run, tmp_path, capsys, args, message):
    _, run = vqa_run
    (tmp_path / "bad.json").write_text(json.dumps([
        {"id": "a", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "yes"}]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "yes"}, {"from": "human", "value": "Hi?"}]}]))
    (tmp_path / "noletters.json").write_text(json.dumps([{"id": "a", "conversations": [
        {"from": "human", "value": "Which? Answer with the option's letter from the given choices directly."},
        {"from": "gpt", "value": "A"}]}]))
    args = [{"RUN": str(run), "Q": str(tmp_path / "bad.json"), "BAD": str(tmp_path / "bad.json"),
             "NOLETTERS": str(tmp_path / "noletters.json"), "X": str(tmp_path / "x")}.get(a, a) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x").exists()


def test_validate_lists_every_bad_sample(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png")
    f = tmp_path / "d.json"
    f.write_text(json.dumps([
        {"id": "ok", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "yes"}]},
        {"id": "x", "image": "broken.png", "conversations": [{"from": "human", "value": "<image>\nQ?"},
                                                             {"from": "gpt", "value": "a"}]},
        {"id": "y", "image": "missing.png", "conversations": [{"from": "human", "value": "Q?"},
                                                              {"from": "gpt", "value": " "}]}]))
    assert main(["validate", str(f), "--image-folder", str(tmp_path / "img")]) == 2
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert any("sample 1" in x for x in lines) and sum("sample 2" in x for x in lines) >= 2
    assert not any("sample 0" in x for x in lines) and "problem(s) in 3 samples" in out.err


def test_ascii_route_answers_the_same_questions(tmp_path, data_dir):
    over = tiny_overrides(data_dir, name="va", **{"data.dataset": "mnist-vqa", "data.train_canvases": 60,
                                                  "data.valid_canvases": 6, "data.test_canvases": 4,
                                                  "data.question_types": "[count, present, caption]",
                                                  "ascii.width": 16, "ascii.height": 16, "ascii.crop": 0,
                                                  "model.sliding_window": 512})
    assert main(["run", str(_cfg(tmp_path))] + sets(over + [f"runs_dir={tmp_path / 'runs'}"])) == 0
    m = json.loads((tmp_path / "runs" / "va" / "eval" / "mnist-vqa-valid" / "metrics.json").read_text())
    assert set(m["per_type"]) == {"count", "present", "caption"} and m["n"] == 18


def _cfg(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\n")
    return p


def test_training_on_llava_json_files_with_a_stage_of_its_own(vqa_run, tmp_path, monkeypatch):
    """data.format llava-json: stage 0 reads its own file, stage 1 the run's; images read lazily per batch."""
    import mistral_vision.data.questions as questions

    root, _ = vqa_run
    out = root / "prepared"          # written by test_prepare_writes_llava_json_that_validates_and_evaluates
    if not (out / "train.json").exists():
        assert main(["prepare", "--dataset", "mnist-vqa", "--route", "llava", "--out", str(out), "--data-dir",
                     str(root / "data"), "--offline", "--valid-size", "100", "--set", "train_canvases=30",
                     "--set", "valid_canvases=16", "--set", "test_canvases=8"]) == 0
    captions = [s for s in json.loads((out / "train.json").read_text()) if s["type"] == "caption"]
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    monkeypatch.setattr(questions, "IN_MEMORY", 0)
    over = tiny_overrides(root / "data", name="lj", route="llava", **{
        **VQA, "data.dataset": "mnist", "data.format": "llava-json", "data.path": str(out / "train.json"),
        "data.valid_path": str(out / "valid.json"), "data.image_folder": str(out / "images"),
        "eval.splits": "[valid]", "train.eval_every": 0,
        "stages": f"[{{name: a, data: {tmp_path / 'captions.json'}, trainable: {{projector: 0.003}}, epochs: 1}}, "
                  "{name: b, trainable: {projector: 0.003, llm: 0.003}, epochs: 1}]"})
    assert main(["run", str(_cfg(tmp_path))] + sets(over + [f"runs_dir={tmp_path / 'runs'}"])) == 0
    run = tmp_path / "runs" / "lj"
    summary = json.loads((run / "train_summary.json").read_text())
    assert [s["steps"] for s in summary["stages"]] == [len(captions) // 16, 60 // 16]
    m = json.loads((run / "eval" / "llava-json-valid" / "metrics.json").read_text())
    assert m["n"] == 48 and "caption" in m["per_type"]


def test_unknown_dataset_in_a_config_lists_the_question_sets_too(tmp_path, capsys):
    assert main(["run", str(_cfg(tmp_path)), "--set", "data.dataset=mnist-qa"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'mnist-qa'; known: fashion-mnist, fashion-vqa, mnist, mnist-vqa" in err


@pytest.mark.parametrize("setting, message", [
    ("train.augment_flip=true", "swaps its left and right cells"),
    ("eval.tta=flip", "mirrored views would swap the cells"),
    ("data.question_types=[sum, colour]", "unknown question type 'colour'"),
])
def test_vqa_settings_that_would_falsify_answers_are_refused(tmp_path, capsys, setting, message):
    assert main(["run", str(_cfg(tmp_path)), "--set", "data.dataset=mnist-vqa", "--set", setting]) == 2
    assert message in capsys.readouterr().err
