"""Training examples and batches with the loss on the answer tokens only.

A training example is ``prompt ids + label ids`` (answer + EOS); its labels are -100
everywhere but on the label ids. Batches are left-padded so that every answer ends at the
last position, which lets the loss use only the last few positions' logits
(``logits_to_keep``) - the vocabulary projection of the prompt is never computed.
Also: the per-epoch image augmentation (random translation). Not for: the optimizer loop.
"""
from __future__ import annotations

import numpy as np
import torch

from ..infer.scorer import pad_left, positions

IGNORE = -100


def example(prompt_ids: list[int], label_ids: list[int]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one example; labels keep only the answer tokens (+EOS)."""
    return prompt_ids + label_ids, [IGNORE] * len(prompt_ids) + list(label_ids)


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    ids, mask = pad_left([e[0] for e in examples], pad_id)
    labels, _ = pad_left([e[1] for e in examples], IGNORE)
    labels[mask == 0] = IGNORE
    answer_len = int((labels != IGNORE).sum(-1).max())
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions(mask),
            "labels": labels, "keep": answer_len + 1}


def answer_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over answer tokens; only the last ``keep`` logits are computed."""
    keep = batch["keep"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False)
    logits = out.logits[:, :-1].float()                              # predict positions T-keep+1 .. T-1
    targets = batch["labels"][:, -keep + 1:]
    n = int((targets != IGNORE).sum())
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE)
    return loss, n


def shift_images(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image by a random (dy, dx) in [-max_shift, max_shift], filling with 0."""
    if max_shift <= 0:
        return images
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy = rng.integers(0, 2 * max_shift + 1, n)
    dx = rng.integers(0, 2 * max_shift + 1, n)
    rows = (dy[:, None] + np.arange(h))[:, :, None]                  # (n, h, 1)
    cols = (dx[:, None] + np.arange(w))[:, None, :]                  # (n, 1, w)
    return padded[np.arange(n)[:, None, None], rows, cols]
