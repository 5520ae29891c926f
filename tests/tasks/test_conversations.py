"""Conversations (question sets): every assistant turn trained, for both routes and every chat template."""
import re

import numpy as np
import pytest

from mistral_vision.models.chat_templates import CHAT_TEMPLATES
from mistral_vision.prompts import PromptFormat
from mistral_vision.tasks.batch import IGNORE
from mistral_vision.tasks.chat import conversation_mask
from tests.tasks.test_chat_templates import CONVERSATIONS, tokenizer_with

TURNS = [("human", "<image>\nHow many digits?"), ("gpt", "3"), ("human", "Is there a 4?"), ("gpt", "no"),
         ("human", "What is the sum?"), ("gpt", "12")]


def ascii_task(tok):
    from mistral_vision.tasks.ascii import AsciiTask

    return AsciiTask(tok, tuple(str(i) for i in range(10)), "mnist-vqa", 8, 8, " .:-=+*#%@", prompt=PromptFormat())


@pytest.mark.parametrize("template_id", sorted(CHAT_TEMPLATES))
@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_mask_without_generation_tags_equals_the_tagged_mask(template_id, conv):
    tagged = tokenizer_with(template_id)
    plain = tokenizer_with(template_id)
    plain.chat_template = re.sub(r"{%-?\s*(end)?generation\s*-?%}", "", CHAT_TEMPLATES[template_id])
    assert conversation_mask(plain, CONVERSATIONS[conv]) == conversation_mask(tagged, CONVERSATIONS[conv])


@pytest.mark.parametrize("template_id", sorted(CHAT_TEMPLATES))
def test_ascii_conversation_trains_every_answer_and_shows_the_art(template_id):
    tok = tokenizer_with(template_id)
    task = ascii_task(tok)
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255
    ids, labels = task.conversation_ids(TURNS, image)
    trained = tok.decode([t for t in labels if t != IGNORE])
    for answer in ("3", "no", "12"):
        assert answer in trained
    assert trained.count(tok.eos_token) == 3
    assert "digits" not in trained and "<image>" not in tok.decode(ids)
    assert task.render(image[None])[0] in tok.decode(ids)
    prompt = task.question_ids(TURNS[:3], image)              # up to the 2nd question, with the generation prompt
    assert ids[:len(prompt)] == prompt
    assert task.answer_ids(["no", "yes"])[0] == [t for t in labels if t != IGNORE][len(task.answer_ids(["3"])[0]):
                                                                                   ][:len(task.answer_ids(["no"])[0])]


def test_llava_conversation_expands_the_image_and_never_trains_on_it():
    from mistral_vision.config import load_config
    from mistral_vision.models.build import build_run_model
    from mistral_vision.tasks import make_task

    cfg = load_config(None, ["route=llava", "data.dataset=mnist-vqa", "vision.image_size=56", "vision.hidden_size=32",
                             "vision.num_layers=1", "vision.num_heads=2", "vision.intermediate_size=32",
                             "model.hidden_size=32", "model.num_layers=1", "model.intermediate_size=32"])
    _, processor = build_run_model(cfg, cfg.run_dir, log=lambda *a: None)
    task = make_task(cfg, processor, tuple(str(i) for i in range(10)))
    ids, labels = task.conversation_ids(TURNS, None)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert ids.count(image_id) == (56 // 7) ** 2
    assert all(lab == IGNORE for t, lab in zip(ids, labels) if t == image_id)
    assert processor.tokenizer.decode([t for t in labels if t != IGNORE]).count("</s>") == 3
    canvases = np.zeros((3, 56, 56), np.uint8)
    from mistral_vision.data.questions import Item

    items = [Item("a", 2, TURNS, "conversation"), Item("b", -1, [("human", "Hi?"), ("gpt", "yes")], "open"),
             Item("c", 0, TURNS[:2], "count")]
    ex = task.conversation_examples(items, canvases)
    batch = ex.batch([0, 1, 2], task.pad_id)
    assert batch["pixel_values"].shape == (2, 1, 56, 56)           # the text-only sample adds no image
    assert list(ex.image_of) == [2, -1, 0]
