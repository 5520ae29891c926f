"""``chat`` on every kind of run: classification (covered in test_llava_cli), VQA sets and LLaVA JSON, both routes.

A VQA or LLaVA-JSON run has no classification dataset of its own; ``chat`` once looked one up
and failed with "unknown dataset 'mnist-vqa'" on every such run.
"""
import json

import numpy as np
import pytest
from PIL import Image

from mistral_vision.cli import main
from tests.conftest import tiny_overrides, write_dataset
from tests.test_llava_cli import LLAVA, greedy, sets

VQA = {"data.dataset": "mnist-vqa", "data.train_canvases": 40, "data.valid_canvases": 4, "data.test_canvases": 4,
       "data.turns": 2, "model.sliding_window": 512, "train.loss_reduction": "token"}
TOWER = {k: v for k, v in LLAVA.items() if k.startswith("vision.")} | {"vision.image_size": 56}
ONE_STAGE = "[{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 1}]"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    write_dataset(root / "data", "mnist", n_train=300, n_test=0)
    canvas = np.zeros((56, 56), np.uint8)
    canvas[6:8, 4:24] = 255                                   # a bar in the top-left cell
    Image.fromarray(canvas).save(root / "canvas.png")
    (root / "c.yaml").write_text("name: x\n")
    return root


def _train(root, name, **over):
    args = tiny_overrides(root / "data", name=name, **over) + [f"runs_dir={root / 'runs'}"]
    assert main(["train", str(root / "c.yaml")] + sets(args)) == 0
    return root / "runs" / name


def _chat(run, root, question, capsys):
    capsys.readouterr()
    code = main(["chat", str(run), "--image", str(root / "canvas.png"), question, "--max-new-tokens", "4"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out.strip()


def _llava_reference(run, root, question):
    """The greedy answer computed by hand: the processor's expanded prompt and pixels, token by token."""
    from mistral_vision.config import load_run_config
    from mistral_vision.data.images import load_image
    from mistral_vision.models.build import load_run_model
    from mistral_vision.tasks import make_task

    cfg = load_run_config(run)
    model, proc, _ = load_run_model(run / "model", cfg=cfg)
    img = load_image(root / "canvas.png", None, invert="auto")
    content = make_task(cfg, proc, ()).prompt_texts(["<image>\n" + question])[0]
    ids = proc(text=[content], images=[img[None]], add_special_tokens=False)["input_ids"][0]
    pixels = proc.image_processor(images=[img[None]], return_tensors="pt")["pixel_values"]
    return proc.tokenizer.decode(greedy(model, list(ids), {"pixel_values": pixels}, 4), skip_special_tokens=True).strip()


def test_chat_on_a_llava_vqa_run(root, capsys):
    run = _train(root, "vqa-llava", route="llava", stages=ONE_STAGE, **VQA, **TOWER)
    question = "Is there a 1 in the image?"
    assert _chat(run, root, question, capsys) == _llava_reference(run, root, question)


def test_chat_on_a_llava_json_run(root, tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "--dataset", "mnist-vqa", "--route", "llava", "--out", str(out), "--data-dir",
                 str(root / "data"), "--offline", "--valid-size", "100", "--set", "train_canvases=20",
                 "--set", "valid_canvases=4", "--set", "test_canvases=4"]) == 0
    assert json.loads((out / "train.json").read_text())
    run = _train(root, "json-llava", route="llava", stages=ONE_STAGE, **TOWER, **{
        **VQA, "data.dataset": "mnist", "data.format": "llava-json", "data.path": str(out / "train.json"),
        "data.valid_path": str(out / "valid.json"), "data.image_folder": str(out / "images")})
    question = "How many digits are there?"
    assert _chat(run, root, question, capsys) == _llava_reference(run, root, question)


def test_chat_on_an_ascii_vqa_run_puts_the_art_and_the_question_in_the_prompt(root, capsys):
    from mistral_vision.config import load_run_config
    from mistral_vision.data.images import load_image
    from mistral_vision.infer.loading import load_for_inference

    run = _train(root, "vqa-ascii", **VQA, **{"ascii.width": 16, "ascii.height": 16, "ascii.crop": 0,
                                              "data.question_types": "[count, present]"})
    question = "Is there a 1 in the image?"
    said = _chat(run, root, question, capsys)
    loaded = load_for_inference(load_run_config(run), run)
    img = load_image(root / "canvas.png", None, invert="auto")
    prompt = loaded.processor.decode(loaded.task.chat_inputs(img, question).ids[0])
    assert loaded.task.render(img[None])[0] + "\n" + question in prompt
    assert isinstance(said, str)


@pytest.fixture(scope="module")
def plain_llava(root):
    return _train(root, "plain-llava", route="llava", stages=ONE_STAGE, **TOWER)     # classification, image alone


def test_a_question_to_a_run_that_never_saw_one_is_warned_about(root, plain_llava, capsys):
    capsys.readouterr()
    chat = ["chat", str(plain_llava), "--image", str(root / "canvas.png"), "--max-new-tokens", "2"]
    assert main(chat + ["which digit?"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "never saw a question" in err and "prompt.template: ask" in err
    assert main(chat) == 0
    assert "warning" not in capsys.readouterr().err                    # asking nothing is what it was trained on


@pytest.mark.parametrize("template", ['"{art}\\nWhich digit is this?"', "ask"])
def test_a_run_trained_with_a_question_is_asked_exactly_what_it_was_trained_on(root, plain_llava, template):
    """Asked its own question, a classification run gets the very prompt it was trained and label-scored on
    (the template's question is not repeated after the asked one); asked another, the image then that question."""
    from dataclasses import replace

    import yaml

    from mistral_vision.config import load_run_config
    from mistral_vision.data.images import load_image
    from mistral_vision.infer.chat import never_saw_questions
    from mistral_vision.models.build import load_run_processor
    from mistral_vision.prompts import resolve_template
    from mistral_vision.tasks import make_task

    cfg = load_run_config(plain_llava)
    cfg = replace(cfg, prompt=replace(cfg.prompt, template=yaml.safe_load(template)))
    assert never_saw_questions(cfg) is None
    task = make_task(cfg, load_run_processor(plain_llava / "model"), tuple("0123456789"))
    img = load_image(root / "canvas.png", None, invert="auto")
    own = resolve_template(cfg.prompt.template).format(art="", dataset="mnist", labels=", ".join("0123456789"),
                                                       width=0, height=0).strip()
    assert task.chat_inputs(img, own).ids[0] == task.encode(img[None]).ids[0]
    other = task.processor.decode(task.chat_inputs(img, "How many bars?").ids[0])
    assert other.endswith("<image>\nHow many bars?<sep>") and own not in other
