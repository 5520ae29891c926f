import numpy as np
import pytest
import torch

from mistral_vision.config import ModelConfig
from mistral_vision.models.backbones import (LLAMA_CHAT_TEMPLATE, MISTRAL_CHAT_TEMPLATE, build_model,
                                             get_backbone, load_tokenizer)
from mistral_vision.models.tokenizer import TINY_CHAT_TEMPLATE
from mistral_vision.tasks.ascii import AsciiTask
from mistral_vision.data.augment import augment_images
from mistral_vision.tasks.batch import IGNORE, collate, example
from mistral_vision.train.batches import answer_loss

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SMALL = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, sliding_window=8)


def task_with(template, labels=FASHION, prompt_template="plain"):
    from mistral_vision.prompts import PromptFormat

    tok = load_tokenizer(get_backbone("mistral-tiny"))
    tok.chat_template = template
    return AsciiTask(tok, labels, "fashion-mnist", 6, 6, " .:-=+*#%@", prompt=PromptFormat(prompt_template, "Be brief."))


@pytest.mark.parametrize("template,answer_fmt", [(TINY_CHAT_TEMPLATE, "{}</s>"),
                                                 (MISTRAL_CHAT_TEMPLATE, " {}</s>"),   # "[/INST] answer</s>": Mistral v1
                                                 (LLAMA_CHAT_TEMPLATE, " {} </s>")])
def test_loss_mask_keeps_only_answer_and_eos(template, answer_fmt):
    task = task_with(template, prompt_template="classify")
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    arts = task.render(imgs)
    for p, art, y in zip(task.encode(imgs).ids, arts, [0, 5, 9]):
        ids, labels = example(p, task.label_ids[y])
        kept = [t for t, l in zip(ids, labels) if l != IGNORE]
        assert task.tokenizer.decode(kept) == answer_fmt.format(FASHION[y])
        full = task.tokenizer.apply_chat_template(task.content_messages(art, FASHION[y]), tokenize=False)
        assert task.tokenizer.decode(ids) == full            # same text as the chat template writes


def test_answer_loss_matches_hf_loss():
    task = task_with(TINY_CHAT_TEMPLATE)
    spec = get_backbone("mistral-tiny")
    torch.manual_seed(0)
    model = build_model(spec, ModelConfig(**SMALL), task.tokenizer)
    imgs = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    exs = [example(p, task.label_ids[y]) for p, y in zip(task.encode(imgs).ids, [1, 4, 8, 9])]
    batch = collate(exs, task.tokenizer.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(e[0]) for e in exs)        # left-padded
    ours, n, nll_sum = answer_loss(model, batch)
    ref = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], labels=batch["labels"]).loss
    assert n == sum(len(task.label_ids[y]) for y in [1, 4, 8, 9])
    assert torch.allclose(ours, ref, atol=1e-5)
    seq, n2, seq_sum = answer_loss(model, batch, "sequence")  # summed per sample, mean over samples
    assert torch.allclose(seq, ref * n / 4, atol=1e-4)
    assert n2 == n and nll_sum == pytest.approx(seq_sum) == pytest.approx(ref.item() * n, rel=1e-5)


def test_augmentation_moves_mass_but_keeps_it():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 10:18, 12:16] = 255
    batch = np.repeat(img, 200, 0)
    rng = np.random.default_rng(0)
    assert augment_images(batch, rng) is batch                      # nothing asked, nothing done
    out = augment_images(batch, np.random.default_rng(0), shift=2)
    ys, xs = np.indices((28, 28))
    cy = (out * ys).sum((1, 2)) / out.sum((1, 2))
    cx = (out * xs).sum((1, 2)) / out.sum((1, 2))
    assert set(np.round(cy - 13.5, 6)) == {-2, -1, 0, 1, 2} == set(np.round(cx - 13.5, 6))   # whole pixels
    assert (out.astype(int).sum((1, 2)) == int(img.astype(int).sum())).all()           # lossless
    again = augment_images(batch, np.random.default_rng(0), shift=2)
    assert np.array_equal(out, again)                               # seeded: resumable
    side = np.zeros((40, 28, 28), np.uint8)
    side[:, 10:18, 3:7] = 255                                       # off-centre, so a mirror shows
    flipped = augment_images(side, np.random.default_rng(3), flip=True)
    mirrored = [np.array_equal(f, side[0, :, ::-1]) for f in flipped]
    assert all(m or np.array_equal(f, side[0]) for m, f in zip(mirrored, flipped))
    assert 5 < sum(mirrored) < 35
    rot = augment_images(batch[:20], np.random.default_rng(1), rotate=15, scale=0.1)
    assert not np.array_equal(rot[0], img[0]) and rot.dtype == np.uint8
    assert np.allclose(rot.astype(float).sum((1, 2)) / img.sum(), 1, atol=0.25)      # zoom changes area a bit
