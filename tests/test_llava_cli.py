"""The LLaVA route through the same commands as the ASCII route: run, evaluate, report, predict, chat, export."""
import json

import numpy as np
import pytest
import torch

from mistral_vision.cli import main
from tests.conftest import tiny_overrides

LLAVA = {"route": "llava", "vision.hidden_size": 32, "vision.num_layers": 2, "vision.num_heads": 4,
         "vision.intermediate_size": 64, "train.loss_reduction": "token",
         "stages": "[{name: align, trainable: {projector: 0.003}, epochs: 1}, "
                   "{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 2}]"}


def sets(overrides):
    return sum((["--set", o] for o in overrides), [])


@pytest.fixture(scope="module")
def llava_run(tmp_path_factory):
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("llava")
    write_dataset(root / "data", "mnist")
    cfg = root / "c.yaml"
    cfg.write_text("# Run: mistral-vision run c.yaml\nname: x\n")
    over = tiny_overrides(root / "data", name="lv", **LLAVA) + [f"runs_dir={root / 'runs'}"]
    assert main(["run", str(cfg)] + sets(over)) == 0
    return root, root / "runs" / "lv"


def test_run_writes_the_same_outputs_as_the_ascii_route(llava_run):
    root, run = llava_run
    for f in ["report.md", "curves.png", "eval/mnist-valid/metrics.json", "eval/mnist-valid/confusion.png",
              "eval/mnist-test/metrics.json", "model/manifest.json", "predictions/mnist-test.jsonl"]:
        assert (run / f).is_file(), f
    m = json.loads((run / "eval/mnist-test/metrics.json").read_text())
    recs = [json.loads(x) for x in (run / "predictions/mnist-test.jsonl").read_text().splitlines()]
    assert m["n"] == len(recs) == 200
    assert m["accuracy"] == sum(r["pred"] == r["label"] for r in recs) / len(recs)
    assert all(abs(sum(r["probs"]) - 1) < 1e-4 for r in recs)
    report = (run / "report.md").read_text()
    assert "route **llava**" in report and "| align | projector (0.003)" in report
    manifest = json.loads((run / "model/manifest.json").read_text())
    assert manifest["route"] == "llava" and manifest["parts"]["processor"]["image_tokens"] == 16


def test_gallery_shows_what_the_tower_saw(llava_run):
    root, run = llava_run
    m = json.loads((run / "eval/mnist-valid/metrics.json").read_text())
    recs = [json.loads(x) for x in (run / "predictions/mnist-valid.jsonl").read_text().splitlines()]
    right = sum(r["pred"] == r["label"] for r in recs)
    # the numbers agree everywhere: predictions, metrics.json and the report's row
    assert (m["n"], m["correct"], m["accuracy"]) == (len(recs), right, right / len(recs)) and len(recs) == 100
    assert m["confusion"] == [[sum(r["label"] == t and r["pred"] == p for r in recs) for p in range(10)]
                              for t in range(10)]
    lo, hi = m["accuracy_ci95"]
    assert f"| mnist-valid | 100 | **{100 * right / 100:.2f}%** | {100 * lo:.2f}% - {100 * hi:.2f}% |" in (
        run / "report.md").read_text()
    # two short stages on noisy data leave errors to show: the gallery is drawn exactly when there are some
    assert m["gallery"] == (right < len(recs)) and right < len(recs)
    assert (run / "eval/mnist-valid/misclassified.png").stat().st_size > 10_000
    assert m["gallery_examples"] == []                 # no ASCII text: the tower saw pixels


def greedy(model, ids, extras, n):
    """n greedily decoded token ids, by hand: one full forward per token."""
    ids = torch.tensor([ids])
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=ids, **extras).logits[0, -1].argmax())
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    return out


def test_chat_answers_the_question_about_the_image_it_was_given(llava_run, tmp_path, capsys):
    from PIL import Image

    from mistral_vision.config import load_run_config
    from mistral_vision.models.build import load_run_model
    from mistral_vision.tasks import make_task

    root, run = llava_run
    img = np.zeros((28, 28), np.uint8)
    img[13:15, 6:22] = 255
    Image.fromarray(img).save(tmp_path / "q.png")
    assert main(["chat", str(run), "--image", str(tmp_path / "q.png"), "which digit?", "--max-new-tokens", "3"]) == 0
    said = capsys.readouterr().out.strip()
    cfg = load_run_config(run)
    model, proc, _ = load_run_model(run / "model", cfg=cfg)
    task = make_task(cfg, proc, tuple(str(d) for d in range(10)))
    content = task.prompt_texts(["<image>\nwhich digit?"])[0]
    ids = proc(text=[content], images=[img[None]], add_special_tokens=False)["input_ids"][0]
    pixels = proc.image_processor(images=[img[None]], return_tensors="pt")["pixel_values"]
    ref = greedy(model, list(ids), {"pixel_values": pixels}, 3)
    assert said == proc.tokenizer.decode(ref, skip_special_tokens=True).strip()


def test_predict_images_and_chat(llava_run, tmp_path, capsys):
    from PIL import Image

    root, run = llava_run
    img = np.zeros((28, 28), np.uint8)
    img[11:13, 6:22] = 255
    Image.fromarray(img).save(tmp_path / "one.png")
    assert main(["predict", str(run), "--images", str(tmp_path / "one.png")]) == 0
    assert "one.png" in capsys.readouterr().out
    assert main(["chat", str(run), "--image", str(tmp_path / "missing.png"), "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.png: no such image file" in err


def test_export_loads_in_plain_transformers_with_identical_label_scores(llava_run, tmp_path, capsys):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from mistral_vision.config import load_run_config
    from mistral_vision.infer.scorer import LabelScorer
    from mistral_vision.models.build import load_run_model
    from mistral_vision.tasks import make_task

    root, run = llava_run
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path / "exp").eval()
    proc = AutoProcessor.from_pretrained(tmp_path / "exp")
    cfg = load_run_config(run)
    names = tuple(str(d) for d in range(10))
    mine, mproc, _ = load_run_model(run / "model")
    imgs = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    a, b = make_task(cfg, mproc, names), make_task(cfg, proc, names)
    ea, eb = a.encode(imgs), b.encode(imgs)
    sa = LabelScorer(mine, a.label_ids, a.pad_id, a.eos_id).score(ea.ids, ea.extras)
    sb = LabelScorer(model, b.label_ids, b.pad_id, b.eos_id).score(eb.ids, eb.extras)
    assert torch.equal(sa, sb)


def test_ascii_export_and_chat(data_dir, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from PIL import Image

    cfg = tmp_path / "a.yaml"
    cfg.write_text("name: a\n")
    assert main(["train", str(cfg)] + sets(tiny_overrides(data_dir, name="asc"))) == 0
    run = tmp_path / "runs" / "asc"
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "exp").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "exp")
    from mistral_vision.models.build import load_run_model

    mine, mtok, _ = load_run_model(run / "model")
    msgs = [{"role": "user", "content": "ab\ncd"}]
    ids = lambda t: t(t.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),  # noqa: E731
                      add_special_tokens=False)["input_ids"]
    x = torch.tensor([ids(mtok)])
    assert ids(tok) == x[0].tolist()
    with torch.no_grad():
        assert torch.equal(mine(input_ids=x).logits, model(input_ids=x).logits)
    img = np.zeros((28, 28), np.uint8)
    img[9:11, 6:22] = 255
    Image.fromarray(img).save(tmp_path / "i.png")
    capsys.readouterr()
    assert main(["chat", str(run), "--image", str(tmp_path / "i.png"), "what is it?", "--max-new-tokens", "3"]) == 0
    said = capsys.readouterr().out.strip()
    from mistral_vision.config import load_run_config
    from mistral_vision.tasks import make_task

    task = make_task(load_run_config(run), mtok, tuple(str(d) for d in range(10)))
    art = task.render(img[None])[0]
    prompt = mtok(mtok.apply_chat_template(task.content_messages(art + "\nwhat is it?"),
                                                                   tokenize=False, add_generation_prompt=True),
                                          add_special_tokens=False)["input_ids"]
    assert said == mtok.decode(greedy(mine, prompt, {}, 3), skip_special_tokens=True).strip()
    # export refuses to write over the run or a folder that is not an earlier export
    (tmp_path / "keep").mkdir()
    for out in (run, run.parent, tmp_path / "keep"):
        assert main(["export", str(run), "--out", str(out)]) == 2
    assert (run / "model").is_dir()
    assert main(["export", str(run), "--out", str(tmp_path / "exp")]) == 0          # an earlier export is replaced


def test_export_of_an_unfinished_run_is_one_line(data_dir, tmp_path, capsys):
    (tmp_path / "runs" / "half").mkdir(parents=True)
    (tmp_path / "runs" / "half" / "config.json").write_text("{}")
    assert main(["export", str(tmp_path / "runs" / "half"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no finished model to export" in err
    assert not (tmp_path / "o").exists()


def test_an_image_that_does_not_decode_is_one_line(llava_run, tmp_path, capsys):
    root, run = llava_run
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    for cmd in (["predict", str(run), "--images", str(tmp_path / "bad.png")],
                ["chat", str(run), "--image", str(tmp_path / "bad.png"), "what is it?"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "bad.png: cannot decode image" in err
