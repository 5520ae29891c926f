"""Training examples and batches with the loss on the answer tokens only.

A training example is ``prompt ids + label ids`` (answer + EOS); its labels are -100
everywhere but on the label ids. Batches are left-padded so that every answer ends at the
last position, which lets the loss use only the last few positions' logits
(``logits_to_keep``) - the vocabulary projection of the prompt is never computed.
Not for: the optimizer loop or augmentation (``augment.py``).
"""
from __future__ import annotations

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


def answer_loss(model, batch: dict, reduction: str = "token") -> tuple[torch.Tensor, int]:
    """Cross-entropy on the answer tokens; only the last ``keep`` positions' logits are computed.

    ``token``: mean over answer tokens (Hugging Face's convention). ``sequence``: each sample's
    summed answer NLL, averaged over samples, so long labels are not weighted up.
    """
    keep = batch["keep"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False)
    logits = out.logits[:, :-1].float()                              # predict positions T-keep+1 .. T-1
    targets = batch["labels"][:, -keep + 1:]
    n = int((targets != IGNORE).sum())
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=IGNORE, reduction="none")
    if reduction == "sequence":
        return per_token.sum() / targets.shape[0], n
    return per_token.sum() / max(n, 1), n
