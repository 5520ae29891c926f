"""The training loss: cross-entropy on the answer tokens only.

Batches come from ``tasks/batch.py`` (left-padded, labels -100 except on the answer); only
the last ``keep`` positions' logits are computed, so the vocabulary projection of the
prompt (and of LLaVA's image tokens) is never paid for. Not for: building batches.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..tasks.batch import IGNORE

BATCH_KEYS = ("input_ids", "attention_mask", "position_ids", "labels", "keep")


class AnswerLoss(NamedTuple):
    loss: torch.Tensor        # what is optimised (``reduction``)
    tokens: int               # answer tokens in the batch
    nll_sum: float            # their summed NLL: nll_sum / tokens is the per-token mean, whatever the reduction


def answer_logits(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) of the last ``keep`` - 1 positions: float32 (B, keep - 1, V) logits and the (B, keep - 1)
    tokens they predict, -100 where nothing is trained. Shared by the loss and by per-item scores (``select``)."""
    keep = batch["keep"]
    extras = {k: v for k, v in batch.items() if k not in BATCH_KEYS}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False, **extras)
    return out.logits[:, :-1].float(), batch["labels"][:, -keep + 1:]    # predict positions T-keep+1 .. T-1


def answer_loss(model, batch: dict, reduction: str = "token") -> AnswerLoss:
    """Cross-entropy on the answer tokens; only the last ``keep`` positions' logits are computed.

    ``token``: mean over answer tokens (Hugging Face's convention). ``sequence``: each sample's
    summed answer NLL, averaged over samples, so long labels are not weighted up (on multi-turn
    conversations that is every turn's answer summed: the per-token mean is what logs show).
    Other batch entries (``pixel_values``) go to the model as they are.
    """
    logits, targets = answer_logits(model, batch)
    n = int((targets != IGNORE).sum())
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=IGNORE, reduction="none")
    total = per_token.sum()
    loss = total / targets.shape[0] if reduction == "sequence" else total / max(n, 1)
    return AnswerLoss(loss, n, float(total.detach()))
