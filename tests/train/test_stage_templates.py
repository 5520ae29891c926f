"""A chat template per stage: validated, ``plain`` refused on questions, and every shipped recipe's stages
train on their questions' text.

LLaVA-1.5 uses ``plain`` for its caption stage only. The study this project grows out of lost its
fine-tuning because plain mode replaced every question with ``<image>``; here the shipped recipes are
run through the real training loop (its fit replaced by a recorder, the backbones by tiny random-init
ones, the data by small local stand-ins) and each stage's training examples must hold every question
of its data in the input ids and train only the answers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mistral_vision.config import inference_template, load_config
from mistral_vision.errors import UserError
from mistral_vision.models.chat_templates import CHAT_TEMPLATES
from mistral_vision.tasks.batch import IGNORE
from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[2]
RECIPES = [p for p in sorted((ROOT / "configs").rglob("*.yaml")) if "compare" not in p.parts]
TINY_LLAVA = {"route": "llava", "vision.hidden_size": 32, "vision.num_layers": 1, "vision.num_heads": 2,
              "vision.intermediate_size": 32}
VQA = ["data.dataset=mnist-vqa", "vision.image_size=56"]
TWO = "stages=[{name: align, trainable: {projector: 0.01}}, {name: instruct, trainable: {projector: 0.01, llm: 0.01}}]"


def cfg_of(data_dir, *extra, **over):
    return load_config(None, tiny_overrides(data_dir, **{**TINY_LLAVA, **over}) + [TWO] + list(extra))


# -- the config: known templates, plain refused on questions, inference uses the last stage's ----------------
def test_a_stage_template_must_be_known(data_dir):
    with pytest.raises(UserError, match=r"^config stages\[0\] \(align\): unknown chat template 'chatml'; "
                                        r"known: .*vicuna-v1"):
        cfg_of(data_dir, "stages.0.template=chatml")
    with pytest.raises(UserError, match=r"^config prompt.chat_template: unknown chat template 'chatml'"):
        cfg_of(data_dir, "prompt.chat_template=chatml")                    # named where it is set, not per stage


@pytest.mark.parametrize("extra,where,what", [
    (VQA + ["stages=[{name: instruct, data: all, template: plain}]"], r"stages\[0\] \(instruct\)", r"data \(all\)"),
    (VQA + ["stages=[{name: instruct, template: plain}]"], r"stages\[0\] \(instruct\)", r"data \(all\)"),
    (VQA + ["stages=[{name: c, data: captions}, {name: q, data: questions, template: plain}]"],
     r"stages\[1\] \(q\)", r"data \(questions\)"),
    (VQA + ["prompt.chat_template=plain"], r"stages\[0\] \(align\)", r"data \(all\)"),
    (["prompt.template=ask", "stages.1.template=plain"], r"stages\[1\] \(instruct\)", r"prompt \('ask'\) asks"),
])
def test_plain_on_a_stage_that_asks_questions_is_one_line(data_dir, extra, where, what):
    with pytest.raises(UserError, match=f"^config {where}: chat template plain is for captions only.*its {what}") as e:
        cfg_of(data_dir, *extra)
    assert "\n" not in str(e.value) and "mistral" in str(e.value)         # names the templates with roles


def test_plain_on_captions_is_taken_and_inference_uses_the_last_stage(data_dir):
    cfg = cfg_of(data_dir, *VQA, "prompt.chat_template=mistral",
                 "stages=[{name: captions, data: captions, template: plain}, {name: instruct, data: all}]")
    assert [s.template for s in cfg.stages] == ["plain", "mistral"]          # unset: the run's template
    assert inference_template(cfg) == "mistral"
    image_only = cfg_of(data_dir, "stages.0.template=plain")                 # a classification prompt of the image alone
    assert [s.template for s in image_only.stages] == ["plain", None] and inference_template(image_only) is None
    last = cfg_of(data_dir, "stages.0.template=plain", "stages.1.template=llama-2")
    assert inference_template(last) == "llama-2"


@pytest.mark.parametrize("route", ["ascii", "llava"])
def test_each_stage_trains_under_its_template_and_the_model_is_saved_with_the_last(data_dir, route):
    stages = "stages=[{name: a, template: plain}, {name: b, template: llama-2}]"
    cfg = load_config(None, tiny_overrides(data_dir, **(TINY_LLAVA if route == "llava" else {})) + [stages])
    seen = record_stages(cfg)
    first, second = ((seen[s.name][1].task.tokenizer, seen[s.name][2].pairs[0][0]) for s in cfg.stages)
    assert "[INST]" not in first[0].decode(first[1]) and "[INST]" in second[0].decode(second[1])
    from mistral_vision.models.build import load_run_processor, text_tokenizer

    saved = load_run_processor(cfg.run_dir / "model")              # built with tiny's template, prompted with
    assert text_tokenizer(saved).chat_template == CHAT_TEMPLATES["llama-2"]      # the last stage's
    assert route == "ascii" or saved.chat_template == CHAT_TEMPLATES["llama-2"]


def test_a_stage_file_of_questions_under_plain_is_refused_when_read(data_dir, tmp_path):
    """A stage's own LLaVA JSON is only known when read: ScienceQA-style options under plain are refused."""
    folder = sqa_files(tmp_path)
    cfg = load_config(None, tiny_overrides(data_dir, **TINY_LLAVA) + sqa_data(folder) + [
        f"stages=[{{name: align, data: {folder / 'train.json'}, template: plain, trainable: {{projector: 0.01}}}}]"])
    with pytest.raises(UserError, match=r"chat template plain is for captions only, but sample 'q0' is a "
                                        r"multiple-choice question"):
        record_stages(cfg)


# -- every shipped recipe ---------------------------------------------------------------------------------------
def sqa_files(root: Path) -> Path:
    """A tiny ScienceQA (QCM-LEA-style questions with options) and an LCS-558K-style caption file."""
    from PIL import Image

    folder = root / "sqa"
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(folder / "images" / f"{i}.png")
    questions = [{"id": f"q{i}", "image": f"{i}.png", "conversations": [
        {"from": "human", "value": f"Question: Which box is heavier, number {i}?\nContext: Two boxes.\n"
                                   f"Options: (A) the red box (B) the blue box\n<image>"},
        {"from": "gpt", "value": f"Heavier things weigh more. The answer is {'AB'[i % 2]}."}]} for i in range(6)]
    captions = [{"id": f"c{i}", "image": f"{i}.png", "conversations": [
        {"from": "human", "value": "<image>\nGive a brief description of the image."},
        {"from": "gpt", "value": f"noise pattern number {i}"}]} for i in range(6)]
    for name, samples in [("train", questions), ("valid", questions[:2]), ("test", questions[2:4]),
                          ("captions", captions)]:
        (folder / f"{name}.json").write_text(json.dumps(samples))
    return folder


def sqa_data(folder: Path) -> list[str]:
    return ["data.format=llava-json", f"data.path={folder / 'train.json'}", f"data.valid_path={folder / 'valid.json'}",
            f"data.test_path={folder / 'test.json'}", f"data.image_folder={folder / 'images'}",
            "data.valid_image_folder=null", "data.test_image_folder=null"]


def tiny_stand_in(path: Path, data_dir: Path, tmp_path: Path) -> list[str]:
    """Overrides that keep a recipe's route, data kind, prompt, chat templates and stages, with tiny
    random-init parts and small local data in place of hub checkpoints and real datasets."""
    from mistral_vision.models.backbones import get_backbone

    raw = load_config(path)
    spec = get_backbone(raw.model.backbone)
    over = [f"name=stand-in-{path.stem}", f"runs_dir={tmp_path / 'runs'}", "model.backbone=" +
            ("llama-tiny" if spec.family == "llama" else "mistral-tiny"), "model.lora.enabled=false",
            "model.dtype=float32", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
            "model.num_kv_heads=1", "model.intermediate_size=32", "model.max_position_embeddings=4096",
            "train.mixed_precision='no'", "train.gradient_checkpointing=false", "train.eval_every=0",
            "eval.tta=none", "tokenizer.train_images=64", "tokenizer.vocab_size=600"]
    if raw.model.pretrain:                    # the lab's pretrained tiny LLM: a random tiny one, nothing built
        over.append("model.pretrain=null")
    if not spec.is_tiny and raw.prompt.chat_template is None:      # the checkpoint's own template, offline: its family's
        over.append("prompt.chat_template=" + (spec.chat_template or ("llama-2" if spec.family == "llama" else "mistral")))
    if raw.vision is not None:
        over += ["vision.tower=clip-tiny", "vision.hidden_size=32", "vision.num_layers=1", "vision.num_heads=2",
                 "vision.intermediate_size=32", "vision.select_strategy=null"]
    if raw.data.format == "llava-json":
        folder = sqa_files(tmp_path)
        over += sqa_data(folder)
        over += [f"stages.{i}.data={folder / 'captions.json'}" for i, s in enumerate(raw.stages)
                 if s.data not in (None, "all", "captions", "questions")]
        over += [f"stages.{i}.image_folder={folder / 'images'}" for i, s in enumerate(raw.stages) if s.image_folder]
        if raw.data.select is not None and not isinstance(raw.data.select, str):
            over.append("data.select.keep=4")                  # a pruned recipe: 4 of the 6 stand-in questions
    else:
        over += [f"data.data_dir={data_dir}", "data.offline=true", "data.valid_size=100", "data.train_limit=24",
                 "data.train_canvases=12", "data.valid_canvases=2", "data.test_canvases=2"]
    from mistral_vision.config import read_yaml_mapping

    for i, s in enumerate(read_yaml_mapping(path).get("stages") or []):   # LoRA needs a checkpoint: the tiny
        if "llm-lora" in s.get("trainable", {}):                            # LLM trains whole instead
            parts = {("llm" if k == "llm-lora" else k): v for k, v in s["trainable"].items()}
            over.append(f"stages.{i}.trainable=" + json.dumps(parts))
    return over


def record_stages(cfg) -> dict:
    """Run ``train(cfg)`` with each stage's fit replaced by a recorder -> {stage name: (stage, source, examples)}."""
    from mistral_vision.train import loop

    seen = {}

    def fit(cfg, acc, model, task, source, stage, index, *args):
        seen[stage.name] = (stage, source, source.epoch_examples(0))
        return {"name": stage.name, "steps": 1, "epochs": 1.0, "wall_s": 0.0, "trainable": dict(stage.trainable),
                "trainable_params": 0, "tokens_per_sample": None}

    from mistral_vision.select.selection import resolve_run_selection

    real = loop._fit_stage
    loop._fit_stage = fit
    try:
        resolve_run_selection(cfg, log=lambda *_: None)     # data.select, as `run` / `train` do before training
        loop.train(cfg, progress=False)
    finally:
        loop._fit_stage = real
    return seen


def user_texts(cfg, source, i: int) -> tuple[list[str], list[str]]:
    """(what the user asked, what the model answers) in example ``i`` of a stage's source, from the data."""
    from mistral_vision.data.llava_json import IMAGE_PLACEHOLDER
    from mistral_vision.prompts import resolve_template

    qset = getattr(source, "qset", None)
    if qset is not None:
        turns = qset.items[i].turns
        asked = [t.replace(IMAGE_PLACEHOLDER, "").strip() for r, t in turns if r == "human"]
        return [a for a in asked if a], [t for r, t in turns if r == "gpt"]
    task = source.task
    fields = dict(labels=", ".join(task.label_names), dataset=task.dataset,
                  width=getattr(task, "width", 0), height=getattr(task, "height", 0))
    template = resolve_template(cfg.prompt.template)
    asked = [part.format(**fields).strip() for part in template.split("{art}")]
    return [a for a in asked if a], [task.label_names[int(source.labels[i])]]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_stage_of_every_recipe_trains_on_its_questions(path, data_dir, tmp_path):
    raw = load_config(path)
    if raw.backend != "local":
        pytest.skip("trained by Mistral's API from chat JSONL: no local stage or template")
    cfg = load_config(path, tiny_stand_in(path, data_dir, tmp_path))
    seen = record_stages(cfg)
    assert list(seen) == [s.name for s in cfg.stages]
    for stage, source, examples in seen.values():
        tok = getattr(source.task.tokenizer, "tokenizer", source.task.tokenizer)
        if stage.template is not None:
            assert tok.chat_template == CHAT_TEMPLATES[stage.template], stage.name
        for i in range(min(4, len(examples))):
            ids, labels = examples.pairs[i]
            text = tok.decode(ids)
            trained = tok.decode([t for t in labels if t != IGNORE])
            asked, answers = user_texts(cfg, source, i)
            for q in asked:                        # every question's text is in the input, none of it trained
                assert q in text, (stage.name, q, text)
                assert q not in trained, (stage.name, q)
            for a in answers:
                assert a in trained, (stage.name, a, trained)
            assert trained.endswith(tok.eos_token) or trained.endswith(tok.eos_token + "\n")
    saved = json.loads((cfg.run_dir / "model" / "tokenizer_config.json").read_text()).get("chat_template")
    if saved is None:
        saved = (cfg.run_dir / "model" / "chat_template.jinja").read_text()
    want = inference_template(cfg)
    assert saved == (CHAT_TEMPLATES[want] if want else seen[cfg.stages[-1].name][1].task.tokenizer.chat_template)


@pytest.mark.parametrize("recipe", ["llava-sqa-mistral-7b-instruct", "llava-sqa-prune-mistral-7b-instruct"])
def test_the_scienceqa_recipe_aligns_under_plain_and_instructs_under_mistral(recipe, data_dir, tmp_path):
    path = ROOT / "configs" / "gpu" / f"{recipe}.yaml"
    cfg = load_config(path, tiny_stand_in(path, data_dir, tmp_path))
    assert [s.template for s in cfg.stages] == ["plain", "mistral"] and inference_template(cfg) == "mistral"
    seen = record_stages(cfg)
    align, instruct = (seen[s.name] for s in cfg.stages)
    assert len(instruct[1].qset) == (4 if "prune" in recipe else 6)      # data.select prunes the question stage only
    assert len(align[1].qset) == 6
    tok = align[1].task.tokenizer
    first = tok.decode(align[2].pairs[0][0])
    assert "[INST]" not in first and first.endswith("noise pattern number 0\n</s>")
    assert "Give a brief description of the image." in first         # kept, not replaced by <image>
    second = instruct[1].task.tokenizer.decode(instruct[2].pairs[0][0])
    assert "[INST] Question: Which box is heavier, number 0?" in second and second.endswith(" [/INST] Heavier "
                                                                                            "things weigh more. "
                                                                                            "The answer is A.</s>")
