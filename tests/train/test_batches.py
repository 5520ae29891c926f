import numpy as np
import pytest
import torch

from mistral_vision.config import ModelConfig
from mistral_vision.models.backbones import (LLAMA_CHAT_TEMPLATE, MISTRAL_CHAT_TEMPLATE, build_model,
                                             get_backbone, load_tokenizer)
from mistral_vision.models.tokenizer import TINY_CHAT_TEMPLATE
from mistral_vision.task import AsciiTask
from mistral_vision.train.batches import IGNORE, answer_loss, collate, example, shift_images

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SMALL = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, sliding_window=8)


def task_with(template, labels=FASHION, prompt_template="plain"):
    from mistral_vision.prompts import PromptFormat

    tok = load_tokenizer(get_backbone("mistral-tiny"))
    tok.chat_template = template
    return AsciiTask(tok, labels, "fashion-mnist", 6, 6, " .:-=+*#%@", prompt=PromptFormat(prompt_template, "Be brief."))


@pytest.mark.parametrize("template,answer_fmt", [(TINY_CHAT_TEMPLATE, "{}</s>"),
                                                 (MISTRAL_CHAT_TEMPLATE, "{}</s>"),
                                                 (LLAMA_CHAT_TEMPLATE, " {} </s>")])
def test_loss_mask_keeps_only_answer_and_eos(template, answer_fmt):
    task = task_with(template, prompt_template="classify")
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    arts = task.render(imgs)
    for p, art, y in zip(task.encode_prompts(imgs), arts, [0, 5, 9]):
        ids, labels = example(p, task.label_ids[y])
        kept = [t for t, l in zip(ids, labels) if l != IGNORE]
        assert task.tokenizer.decode(kept) == answer_fmt.format(FASHION[y])
        full = task.tokenizer.apply_chat_template(task.messages(art, FASHION[y]), tokenize=False)
        assert task.tokenizer.decode(ids) == full            # same text as the chat template writes


def test_answer_loss_matches_hf_loss():
    task = task_with(TINY_CHAT_TEMPLATE)
    spec = get_backbone("mistral-tiny")
    torch.manual_seed(0)
    model = build_model(spec, ModelConfig(**SMALL), task.tokenizer)
    imgs = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    exs = [example(p, task.label_ids[y]) for p, y in zip(task.encode_prompts(imgs), [1, 4, 8, 9])]
    batch = collate(exs, task.tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(e[0]) for e in exs)        # left-padded
    ours, n = answer_loss(model, batch)
    ref = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], labels=batch["labels"]).loss
    assert n == sum(len(task.label_ids[y]) for y in [1, 4, 8, 9])
    assert torch.allclose(ours, ref, atol=1e-5)


def test_shift_images_translates():
    img = np.zeros((1, 5, 5), np.uint8)
    img[0, 2, 2] = 255
    rng = np.random.default_rng(0)
    out = shift_images(np.repeat(img, 50, 0), 1, rng)
    pos = {tuple(np.argwhere(o)[0]) for o in out}
    assert pos <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(pos) > 4
    assert (out.sum((1, 2)) == 255).all()
