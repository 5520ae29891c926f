"""The training loss: cross-entropy on the answer tokens only.

Batches come from ``tasks/batch.py`` (left-padded, labels -100 except on the answer); only
the last ``keep`` positions' logits are computed, so the vocabulary projection of the
prompt (and of LLaVA's image tokens) is never paid for. Not for: building batches.
"""
from __future__ import annotations

import torch

from ..tasks.batch import IGNORE

BATCH_KEYS = ("input_ids", "attention_mask", "position_ids", "labels", "keep")


def answer_loss(model, batch: dict, reduction: str = "token") -> tuple[torch.Tensor, int]:
    """Cross-entropy on the answer tokens; only the last ``keep`` positions' logits are computed.

    ``token``: mean over answer tokens (Hugging Face's convention). ``sequence``: each sample's
    summed answer NLL, averaged over samples, so long labels are not weighted up. Other batch
    entries (``pixel_values``) go to the model as they are.
    """
    keep = batch["keep"]
    extras = {k: v for k, v in batch.items() if k not in BATCH_KEYS}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep, use_cache=False, **extras)
    logits = out.logits[:, :-1].float()                              # predict positions T-keep+1 .. T-1
    targets = batch["labels"][:, -keep + 1:]
    n = int((targets != IGNORE).sum())
    per_token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=IGNORE, reduction="none")
    if reduction == "sequence":
        return per_token.sum() / targets.shape[0], n
    return per_token.sum() / max(n, 1), n
