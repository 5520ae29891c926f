"""Token batches: left padding, position ids, and training examples whose labels keep only the answer.

A training example is ``prompt ids + label ids`` (answer + EOS); its labels are -100
everywhere but on the label ids. Batches are left-padded so that every answer ends at the
last position, which lets the loss and label scoring use only the last few positions'
logits (``logits_to_keep``) - the vocabulary projection of the prompt is never computed.
Per-sample tensors (``pixel_values``) ride along unchanged. Not for: the loss (``train/``).
"""
from __future__ import annotations

import torch

IGNORE = -100


def pad_left(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask), left-padded to the longest sequence."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
    return ids, mask


def positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.cumsum(-1) - 1).clamp(min=0)


def example(prompt_ids: list[int], label_ids: list[int]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one example; labels keep only the answer tokens (+EOS)."""
    return prompt_ids + label_ids, [IGNORE] * len(prompt_ids) + list(label_ids)


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int, extras: dict | None = None) -> dict:
    """Left-padded batch; ``keep`` is how many last positions' logits the loss needs (first answer token - 1 on)."""
    ids, mask = pad_left([e[0] for e in examples], pad_id)
    labels, _ = pad_left([e[1] for e in examples], IGNORE)
    labels[mask == 0] = IGNORE
    answered = labels != IGNORE
    first = torch.where(answered.any(-1), answered.float().argmax(-1), torch.full_like(labels[:, 0], labels.shape[1]))
    keep = int(labels.shape[1] - first.min()) + 1
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions(mask),
            "labels": labels, "keep": keep, **(extras or {})}
