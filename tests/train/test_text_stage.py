"""Text stages: the LLM alone on text (generated skills, plain text, chat or text-only LLaVA JSON files), as a run of
their own or as stage 0 of a LLaVA run whose later stages read its images."""
import json
import re

import numpy as np
import pytest
import torch

from mistral_vision.config import load_config, resolve_stages
from mistral_vision.errors import UserError
from mistral_vision.tasks.batch import IGNORE
from tests.conftest import tiny_overrides
from tests.test_vqa_cli import VQA

TEXT = {"data.text_samples": 32, "data.text_turns": 2, "data.text_valid": 6, "train.eval_every": 0}


def llava_vqa(data_dir, name, stages, **extra):
    return load_config(None, tiny_overrides(data_dir, name=name, route="llava", **{**VQA, **TEXT, "stages": stages,
                                                                                  **extra}))


def test_a_text_stage_trains_only_the_llm(data_dir, tmp_path):
    from accelerate.utils import set_seed

    from mistral_vision.models.build import build_run_model, load_run_model
    from mistral_vision.train.loop import train

    cfg = llava_vqa(data_dir, "lm", "[{name: lm, kind: text, data: text-skills, trainable: {llm: 0.01}}]")
    summary = train(cfg, progress=False)
    assert summary["train_samples"] == 32 and summary["steps"] == 2        # the text's 32 conversations, not images
    set_seed(cfg.train.seed)
    fresh, _ = build_run_model(cfg, tmp_path, log=lambda *_: None)
    before = {n: p.detach() for n, p in fresh.named_parameters()}
    after, _, _ = load_run_model(cfg.run_dir / "model")
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".language_model." in n for n in changed), changed
    assert any("vision_tower" in n for n in before) and any("multi_modal_projector" in n for n in before)
    saved = torch.load(cfg.run_dir / "stages" / "0-lm" / "state.pt", weights_only=True)
    assert saved and all(k.startswith("model.language_model.") for k in saved)
    vocab = json.loads((cfg.run_dir / "stages" / "0-lm" / "vocab.json").read_text())
    assert vocab["<image>"] == len(vocab) - 1


def test_stage_0_reads_text_and_later_stages_the_run_images(data_dir):
    from mistral_vision.data.run_data import load_questions
    from mistral_vision.models.build import build_run_model
    from mistral_vision.tasks import make_task
    from mistral_vision.train.source import training_source

    cfg = llava_vqa(data_dir, "two", "[{name: lm, kind: text, data: text-skills}, {name: align, data: captions, "
                                     "trainable: {projector: 0.01}}]")
    _, processor = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    task = make_task(cfg, processor, ())
    data = load_questions(cfg.data, "train", conversations=True)
    text, images = (training_source(cfg, task, data, st) for st in resolve_stages(cfg))
    assert len(text) == 32 and all(it.image == -1 and it.type == "conversation" for it in text.qset.items)
    batch = text.epoch_examples(0).batch(np.arange(4), task.pad_id)
    assert "pixel_values" not in batch and processor.tokenizer.convert_tokens_to_ids("<image>") not in batch["input_ids"]
    assert len(images) == 120 and {it.type for it in images.qset.items} == {"caption"}
    assert "pixel_values" in images.epoch_examples(0).batch(np.arange(4), task.pad_id)


def test_a_plain_text_corpus_trains_every_token_in_windows(data_dir, tmp_path):
    from mistral_vision.models.build import is_saved
    from mistral_vision.models.tokenizer import build_char_tokenizer
    from mistral_vision.tasks.ascii import AsciiTask
    from mistral_vision.train.loop import train
    from mistral_vision.train.source import PlainTextSource

    text = " ".join(f"line {i}: the {['red', 'blue'][i % 2]} owl counts {i % 7} stars." for i in range(40))
    (tmp_path / "corpus.txt").write_text(text)
    tok = build_char_tokenizer()
    src = PlainTextSource(str(tmp_path / "corpus.txt"), AsciiTask(tok, (), "text", 1, 1, " #"), window=32)
    assert all(len(ids) <= 32 and ids[0] == tok.bos_token_id and labels == [IGNORE] + ids[1:]
               for ids, labels in src.examples.pairs)
    assert tok.decode([t for ids, _ in src.examples.pairs for t in ids[1:]]) == text
    cfg = load_config(None, tiny_overrides(data_dir, name="txt", **{"data.format": "text",
                                                                    "data.path": str(tmp_path / "corpus.txt"),
                                                                    "data.text_window": 32, "eval.splits": "[valid]"}))
    assert [(st.name, st.kind) for st in cfg.stages] == [("train", "text")]
    s = train(cfg, progress=False)
    assert s["train_samples"] == len(src) and is_saved(cfg.run_dir / "model")


def test_chat_files_train_every_assistant_turn_and_image_samples_are_refused(tmp_path):
    from mistral_vision.data.textdata import conversations_file
    from mistral_vision.models.tokenizer import build_char_tokenizer
    from mistral_vision.tasks.ascii import AsciiTask

    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Two plus two?"},
                                             {"role": "assistant", "content": "four"},
                                             {"role": "user", "content": "And one more?"},
                                             {"role": "assistant", "content": "five"}]}) + "\n")
    qs = conversations_file(str(chat))
    tok = build_char_tokenizer()
    ids, labels = AsciiTask(tok, (), "text", 1, 1, " #").conversation_ids(qs.items[0].turns, None)
    assert tok.decode(ids).startswith("<s>Be brief.\nTwo plus two?<sep>four</s>")
    assert tok.decode([t for t in labels if t != IGNORE]) == "four</s>five</s>"
    pics = tmp_path / "pics.json"
    pics.write_text(json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "hi"},
                                                               {"from": "gpt", "value": "yo"}]},
                                {"id": "b", "image": "x.png", "conversations": [{"from": "human", "value": "<image>"},
                                                                                 {"from": "gpt", "value": "a cat"}]}]))
    with pytest.raises(UserError, match="sample 'b' has an image; a text stage trains on text only"):
        conversations_file(str(pics))


@pytest.mark.parametrize("override,message", [
    (["data.format=text", "data.path=corpus.csv"], "a text corpus is .txt (plain text), .jsonl"),
    (["data.format=text"], "data.format text needs data.path"),
    (["data.dataset=text-skills", "data.text_skills=[juggling]"], "unknown skill 'juggling'"),
    (["data.dataset=text-skills", "stages=[{name: v}]"], "the run's data is text only; give this stage kind: text"),
    (["stages=[{name: t, kind: text, data: captions}]"], "not 'captions'"),
    (["stages=[{name: t, kind: prose}]"], "unknown stage kind 'prose'; known: vision, text"),
])
def test_bad_text_configs_are_one_line(override, message):
    with pytest.raises(UserError, match=re.escape(message)) as e:
        load_config(None, override)
    assert "\n" not in str(e.value)
