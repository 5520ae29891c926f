"""The exported folder on its own: transformers' message format, a model card whose snippet runs and prompts
exactly as training did, the ASCII rendering settings, and the permissions any new folder gets."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mistral_vision.config import load_config, load_run_config
from mistral_vision.export import export_run
from tests.conftest import tiny_overrides, write_dataset
from tests.train.test_stage_templates import TINY_LLAVA, record_stages

ACCURACY = {"accuracy": 0.61, "n": 200, "correct": 122, "accuracy_ci95": [0.541, 0.675]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two tiny runs (their fit replaced by a recorder: the format is under test, not the weights), exported.
    The LLaVA run asks the `ask` question and has a measured accuracy; the ASCII run has none."""
    root = tmp_path_factory.mktemp("export")
    write_dataset(root / "data", "mnist")
    runs = {}
    for route, extra in [("llava", {**TINY_LLAVA, "prompt.template": "ask"}), ("ascii", {"prompt.template": "classify"})]:
        cfg = load_config(None, tiny_overrides(root / "data", name=route, runs_dir=root / "runs", **extra))
        record_stages(cfg)
        runs[route] = (cfg.run_dir, root / f"exp-{route}")
    metrics = runs["llava"][0] / "eval" / "mnist-test" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps(ACCURACY))
    for run, out in runs.values():
        export_run(run, out)
    return runs


def digit() -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255
    img[6:9, 9:16] = 180
    return img


def run_task(run: Path):
    from mistral_vision.data.run_data import label_names_for
    from mistral_vision.models.build import load_run_processor
    from mistral_vision.tasks import make_task

    cfg = load_run_config(run)
    return make_task(cfg, load_run_processor(run / "model"), label_names_for(cfg.data))


def test_the_exported_chat_template_takes_transformers_message_format(exported):
    from PIL import Image
    from transformers import AutoProcessor

    run, out = exported["llava"]
    proc = AutoProcessor.from_pretrained(out)
    question = "Which digit is this?"
    parts = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
             {"role": "assistant", "content": [{"type": "text", "text": "7"}]},
             {"role": "user", "content": [{"type": "text", "text": "Sure?"}]}]
    text = [{"role": "user", "content": "<image>\n" + question}, {"role": "assistant", "content": "7"},
            {"role": "user", "content": "Sure?"}]
    for render in (proc.apply_chat_template, proc.tokenizer.apply_chat_template):
        assert render(parts, tokenize=False, add_generation_prompt=True) == \
            render(text, tokenize=False, add_generation_prompt=True)
    # the image inside the message, as transformers' docs do it: the same ids and pixels as the run's own task
    img = digit()
    with_image = [{"role": "user", "content": [{"type": "image", "image": Image.fromarray(img)},
                                               {"type": "text", "text": question}]}]
    got = proc.apply_chat_template(with_image, add_generation_prompt=True, tokenize=True, return_dict=True,
                                   return_tensors="pt")
    task = run_task(run)
    assert got["input_ids"][0].tolist() == task.question_ids([("human", "<image>\n" + question)], img)
    assert torch.equal(got["pixel_values"], task.pixel_values(img[None]))


def card_code(out: Path) -> str:
    card = (out / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_the_model_card_snippet_runs_and_prompts_as_training_did(exported, route, tmp_path):
    from PIL import Image

    run, out = exported[route]
    code = card_code(out)
    assert "mistral_vision" not in code and len(code.strip().splitlines()) <= 22
    img = digit()
    Image.fromarray(img).save(tmp_path / "image.png")            # the snippet opens image.png (tests run in tmp_path)
    ns: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), ns)
    assert printed.getvalue().strip() is not None and ns["out"].shape[1] > ns["inputs"]["input_ids"].shape[1]
    task = run_task(run)
    assert ns["inputs"]["input_ids"][0].tolist() == task.encode(img[None]).ids[0]      # the training prompt, to the id
    if route == "llava":
        assert torch.equal(ns["inputs"]["pixel_values"], task.encode(img[None]).extras["pixel_values"])
    else:
        assert ns["art"] == task.render(img[None])[0]                                   # numpy alone renders as we do


def test_the_model_card_says_how_to_prompt_what_it_learned_from_and_how_well(exported):
    run, out = exported["llava"]
    card = (out / "README.md").read_text()
    task = run_task(run)
    prompt = task.tokenizer.decode(task.encode(digit()[None]).ids[0])
    assert prompt.replace("<image>" * 16, "<image>") in card                  # the prompt block, <image> unexpanded
    assert "16 image tokens" in card and "28x28 grayscale" in card and "Chat template `tiny`" in card
    assert "| mnist-test | 61.00% | 54.10% - 67.50% | 200 |" in card
    assert "| align | mnist train | tiny | projector (0.001) | 1 |" in card        # LLaVA-1.5's default stages
    assert "| instruct | mnist train | tiny | projector (2e-05), llm (2e-05) | 1 |" in card
    assert "`mnist` training split (classes: 0, 1, 2" in card
    ascii_card = (exported["ascii"][1] / "README.md").read_text()
    assert "Not measured in the run folder" in ascii_card and "AutoModelForCausalLM" in ascii_card
    info = json.loads((out / "export.json").read_text())
    assert info["chat_template"] == "tiny" and info["prompt"].startswith("<image>\nWhich mnist class")


def test_the_ascii_export_records_its_rendering_settings(exported):
    run, out = exported["ascii"]
    cfg = load_run_config(run)
    fmt = json.loads((out / "ascii_format.json").read_text())
    a = cfg.ascii
    assert (fmt["width"], fmt["height"], fmt["ramp"], fmt["invert"], fmt["crop"], fmt["image_size"]) == \
        (a.width, a.height, a.ramp, a.invert, a.crop, 28)
    assert fmt["prompt_template"] == "classify" and fmt["labels"] == [str(d) for d in range(10)]
    task = run_task(run)
    assert fmt["prompt"].replace("{art}", "ART") == task.content_messages("ART")[-1]["content"]
    card = (out / "README.md").read_text()
    assert f"{a.width}x{a.height} characters, ramp `{a.ramp!r}`, crop {a.crop}" in card


def test_sizes_that_do_not_divide_point_to_the_reference_renderer(data_dir):
    from mistral_vision.export.card import snippet

    cfg = load_config(None, tiny_overrides(data_dir, **{"data.dataset": "mnist-vqa", "ascii.width": 20,
                                                          "ascii.height": 20, "ascii.crop": 0}))
    code = snippet(cfg, Path("exp"), "{art}\n{question}", 64, 56, False)
    compile(code, "README.md", "exec")
    assert "render_ascii" in code and 'question = "' in code and '.replace("{question}", question)' in code


@pytest.mark.parametrize("umask,folder,file", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_the_export_folder_honours_the_umask(exported, tmp_path, umask, folder, file):
    run, _ = exported["ascii"]
    old = os.umask(umask)
    try:
        export_run(run, tmp_path / "exp")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "exp").stat().st_mode) == folder
    for name in ("export.json", "README.md", "ascii_format.json", "config.json", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / "exp" / name).stat().st_mode) == file, name
