"""Label scoring: the log-likelihood of every class label's continuation given a prompt.

Instead of free generation (which can answer something that is no class), every class is
scored and the best one wins, so each prediction is a valid class with a probability
(softmax over the classes' sequence log-likelihoods). The prompt is run once with a KV
cache, the cache is repeated for the K labels, and only the label tokens are run again.

The closing EOS of the labels is scored only where it tells labels apart: if no label's
tokens are a prefix of another's, the answer is decided before the EOS, so it is left out
(``score_eos=True`` keeps it). Labels of one token each (digits) then need a single
forward pass over the prompts and nothing else.
Not for: choosing which images to score (``predict.py``).
"""
from __future__ import annotations

import torch

from ..tasks.batch import pad_left, positions


def prefix_free(seqs: list[list[int]]) -> bool:
    """True if no sequence is empty or a prefix of another (so each is decided on its own)."""
    seqs = sorted(tuple(s) for s in seqs)
    return all(seqs) and all(b[:len(a)] != a for a, b in zip(seqs, seqs[1:]))


def scored_labels(label_ids: list[list[int]], eos_id: int | None, score_eos: bool = False) -> list[list[int]]:
    """The label tokens to score: without the shared closing EOS when that decides nothing."""
    if score_eos or eos_id is None or not all(ids and ids[-1] == eos_id for ids in label_ids):
        return label_ids
    stripped = [ids[:-1] for ids in label_ids]
    return stripped if prefix_free(stripped) else label_ids


class LabelScorer:
    """Scores K fixed label continuations (token id lists, answer + EOS) after prompts.

    ``eos_id`` / ``score_eos``: see the module docstring; ``label_ids`` keeps what is scored.
    """

    def __init__(self, model, label_ids: list[list[int]], pad_id: int, eos_id: int | None = None,
                 score_eos: bool = False):
        self.model = model
        self.pad_id = pad_id
        self.k = len(label_ids)
        label_ids = scored_labels(label_ids, eos_id, score_eos)
        self.label_ids = label_ids
        self.first = torch.tensor([ids[0] for ids in label_ids])
        longest = max(len(ids) for ids in label_ids)
        # Tokens fed in the second pass (all but the last) and the tokens they predict.
        self.rest_in = torch.full((self.k, max(longest - 1, 0)), pad_id, dtype=torch.long)
        self.rest_out = torch.full((self.k, max(longest - 1, 0)), -1, dtype=torch.long)
        for j, ids in enumerate(label_ids):
            self.rest_in[j, :len(ids) - 1] = torch.tensor(ids[:-1])
            self.rest_out[j, :len(ids) - 1] = torch.tensor(ids[1:])

    @property
    def device(self):
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def score(self, prompts: list[list[int]], extras: dict | None = None) -> torch.Tensor:
        """(B, K) float32 log-likelihoods of each label after each prompt.

        ``extras`` (``pixel_values``) go with the prompt pass only; the cached label pass
        needs nothing but the label tokens.
        """
        dev = self.device
        ids, mask = pad_left(prompts, self.pad_id)
        ids, mask = ids.to(dev), mask.to(dev)
        need_cache = self.rest_in.shape[1] > 0
        extras = {k: v.to(dev) for k, v in (extras or {}).items()}
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions(mask),
                         use_cache=need_cache, logits_to_keep=1, **extras)
        first_lp = torch.log_softmax(out.logits[:, -1].float(), -1)          # (B, V)
        scores = first_lp[:, self.first.to(dev)]                              # (B, K)
        if not need_cache:
            return scores.cpu()
        b, t = ids.shape[0], self.rest_in.shape[1]
        cache = out["cache"] if "cache" in out else out.past_key_values
        cache.batch_repeat_interleave(self.k)
        rest_in = self.rest_in.to(dev).repeat(b, 1)                           # (B*K, T)
        full_mask = torch.cat([mask.repeat_interleave(self.k, 0),
                               torch.ones((b * self.k, t), dtype=mask.dtype, device=dev)], 1)
        pos = mask.sum(-1, keepdim=True).repeat_interleave(self.k, 0) + torch.arange(t, device=dev)
        out2 = self.model(input_ids=rest_in, attention_mask=full_mask, position_ids=pos, use_cache=False,
                          **{cache_kwarg(self.model): cache})
        lp = torch.log_softmax(out2.logits.float(), -1)                      # (B*K, T, V)
        target = self.rest_out.to(dev).repeat(b, 1)
        picked = lp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        rest = (picked * (target >= 0)).sum(-1).view(b, self.k)
        return (scores + rest).cpu()


def cache_kwarg(model) -> str:
    """The name ``forward`` takes a KV cache under: transformers 5.24 renamed ``past_key_values`` to
    ``cache`` (the old name warns, and goes in 5.40); 5.23 and older know only ``past_key_values``."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
