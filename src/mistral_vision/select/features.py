"""Per-item features and scores of a question set from a trained reference run, for data selection.

Every item goes through the run's own task exactly as training encodes it (``conversation_examples``:
the chat template, the image as ASCII art or as the tower's tokens, labels on every assistant
turn) and through the run's saved model, in eval mode without gradients:

- ``image-mean``: the LLM's last hidden state (after its final norm: what the LM head reads)
  averaged over the image's positions - LLaVA's image tokens, or the ASCII art's tokens;
- ``answer-hidden``: the last hidden state at the position that predicts the first token of
  the item's last answer (the prompt is every turn before it);
- ``tower-pooled``: the vision tower's pooled output (CLIP's ``pooler_output``, SigLIP's head),
  or for a tower without one the mean of the patch features the projector is given; LLaVA only;
- ``loss``: the mean NLL over every assistant turn's answer tokens, as training counts them
  (``train/batches.answer_logits``); ``el2n``: the mean over the same tokens of
  ``|| softmax(logits) - onehot(target) ||_2`` (Paul et al. 2021).

Items without an image get a zero row of the image features. Rows are cached beside the run
(``feature_cache.py``); a complete cache is read without loading the model. Batches are the
items of a shard in order of length (less padding, the same composition on every run); left
padding with position ids does not change any row. Not for: choosing items (the methods).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..errors import UserError, one_of
from .run_fits import check_run_fits

FEATURE_KINDS = ("image-mean", "answer-hidden", "tower-pooled")
MEASURES = ("loss", "el2n")

__all__ = ["FEATURE_KINDS", "MEASURES", "check_run_fits", "run_features", "run_losses"]


def run_features(run_dir, qset, kind: str, cache_dir=None, batch_size: int = 64, log=print):
    """(items, d) float32 features of ``qset`` (a ``QuestionSet``) from the run in ``run_dir``, in item order.

    ``kind``: one of ``FEATURE_KINDS``; ``cache_dir``: default ``run_dir/select-cache``."""
    if kind not in FEATURE_KINDS:
        raise one_of("feature kind", kind, FEATURE_KINDS)
    return _computed(run_dir, qset, kind, cache_dir, batch_size, log)


def run_losses(run_dir, qset, measure: str = "loss", cache_dir=None, batch_size: int = 64, log=print):
    """(items,) float32 per-item scores of ``qset`` from the run in ``run_dir``: ``loss`` or ``el2n``."""
    if measure not in MEASURES:
        raise one_of("loss measure", measure, MEASURES)
    return _computed(run_dir, qset, measure, cache_dir, batch_size, log)


def _computed(run_dir, qset, what: str, cache_dir, batch_size: int, log):
    """Rows from the cache, computing (and caching) the shards that are missing."""
    from ..config import load_run_config
    from .feature_cache import ShardCache

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if what == "tower-pooled" and cfg.route != "llava":
        raise UserError(f"tower-pooled features need a vision tower; run {run_dir.name} is on route {cfg.route} "
                        "(use image-mean or answer-hidden)")
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, not {batch_size}")
    if not qset.items:
        raise UserError(f"{qset.name}: no samples to compute features of")
    if what in ("image-mean", "tower-pooled") and all(it.image < 0 for it in qset.items):
        raise UserError(f"{qset.name}: no sample has an image, so there are no {what} features; use answer-hidden")
    cache = ShardCache(Path(cache_dir) if cache_dir is not None else run_dir / "select-cache", what, qset, run_dir)
    todo = cache.missing()
    if todo:
        check_run_fits(run_dir, qset)
        extractor = Extractor(cfg, run_dir, what, batch_size)
        done = cache.n - sum(cache.bounds(s)[1] - cache.bounds(s)[0] for s in todo)
        log(f"{what}: {len(qset.items)} items of {qset.name} from run {run_dir.name}"
            + (f" ({done} cached)" if done else ""))
        for k, s in enumerate(todo, 1):
            lo, hi = cache.bounds(s)
            t0 = time.perf_counter()
            cache.write(s, extractor.rows(qset, lo, hi))
            rate = (hi - lo) / max(time.perf_counter() - t0, 1e-9)
            log(f"  shard {k}/{len(todo)}: items {lo}-{hi - 1}, {rate:.1f} items/s")
    return cache.load()


class Extractor:
    """One computation (a feature kind or a measure) with a run's loaded model and task."""

    def __init__(self, cfg, run_dir, what: str, batch_size: int):
        from ..infer.loading import load_for_inference

        self.loaded = load_for_inference(cfg, run_dir)
        self.model, self.task = self.loaded.model, self.loaded.task
        self.what, self.batch_size, self.route = what, batch_size, cfg.route
        self.dev = next(self.model.parameters()).device

    def rows(self, qset, lo: int, hi: int):
        """Rows of items ``lo`` .. ``hi - 1``: their images are taken once each, as a shard-local list."""
        import torch

        items = qset.items[lo:hi]
        used = sorted({it.image for it in items if it.image >= 0})
        local = {r: j for j, r in enumerate(used)}
        images = _stack([qset.images[r] for r in used])
        items = [replace(it, image=local.get(it.image, -1)) for it in items]
        with _deterministic(), torch.inference_mode():
            if self.what == "tower-pooled":
                return self._tower_rows(items, images)
            return self._llm_rows(items, images)

    # -- the LLM's forward: hidden states or answer-token scores -------------------------------
    def _llm_rows(self, items, images):
        import torch

        examples = self.task.conversation_examples(items, images)
        art = (self._art_positions(items, images, examples)
               if self.what == "image-mean" and self.route == "ascii" else None)
        lengths = [len(ids) for ids, _ in examples.pairs]
        order = sorted(range(len(items)), key=lambda i: lengths[i])      # stable: ties keep item order
        out = [None] * len(items)
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            batch = self._on_device(examples.batch(idx, self.task.pad_id))
            if self.what in MEASURES:
                vals = self._scores(batch)
            else:
                width = batch["input_ids"].shape[1]
                pos = None if art is None else [[width - lengths[i] + p for p in art[i]] for i in idx]
                vals = self._hidden_rows(batch, pos)
            for i, v in zip(idx, vals):
                out[i] = v
        return torch.stack(out)

    def _on_device(self, batch: dict) -> dict:
        dtype = self.model.dtype
        return {k: (v.to(self.dev, dtype) if v.is_floating_point() else v.to(self.dev)) if hasattr(v, "to") else v
                for k, v in batch.items()}

    def _scores(self, batch):
        """Per-item mean NLL or EL2N over the answer tokens (every assistant turn)."""
        import torch

        from ..tasks.batch import IGNORE
        from ..train.batches import answer_logits

        logits, targets = answer_logits(self.model, batch)
        trained = targets != IGNORE
        safe = targets.clamp(min=0)
        if self.what == "loss":
            per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), safe, reduction="none")
        else:
            p = torch.softmax(logits, -1)
            p.scatter_add_(-1, safe.unsqueeze(-1), -torch.ones_like(safe, dtype=p.dtype).unsqueeze(-1))
            per_token = p.norm(dim=-1)
        per_token = per_token * trained
        return (per_token.sum(-1) / trained.sum(-1).clamp(min=1)).cpu()

    def _hidden_rows(self, batch, art_positions):
        """The last hidden state at the answer position, or averaged over the image's positions."""
        import torch

        from ..tasks.batch import IGNORE

        extras = {k: v for k, v in batch.items() if k not in ("labels", "keep")}
        hidden = _body(self.model)(**extras, use_cache=False).last_hidden_state.float()   # (B, T, d)
        rows = []
        for r in range(hidden.shape[0]):
            if self.what == "answer-hidden":
                trained = (batch["labels"][r] != IGNORE).nonzero().flatten()
                starts = trained[torch.cat([torch.ones(1, dtype=torch.bool, device=trained.device),
                                            trained[1:] != trained[:-1] + 1])]
                rows.append(hidden[r, int(starts[-1]) - 1])              # predicts the last answer's first token
                continue
            if art_positions is not None:
                where = torch.tensor(art_positions[r], dtype=torch.long, device=hidden.device)
            else:
                where = (batch["input_ids"][r] == self.model.config.image_token_id).nonzero().flatten()
            rows.append(hidden[r, where].mean(0) if len(where) else hidden.new_zeros(hidden.shape[-1]))
        return [row.cpu() for row in rows]

    def _art_positions(self, items, images, examples) -> list[list[int]]:
        """Token positions of each item's ASCII art in its training ids (none for text-only items)."""
        out = []
        for it, (ids, _) in zip(items, examples.pairs):
            out.append([] if it.image < 0 else art_positions(self.task, it.turns, images[it.image], ids))
        return out

    # -- the tower alone ------------------------------------------------------------------------
    def _tower_rows(self, items, images):
        import torch

        feats = [torch.zeros((0, _base(self.model).config.vision_config.hidden_size))]   # a shard of text alone
        for b in range(0, len(images), self.batch_size):
            pixels = self.task.pixel_values(images[b:b + self.batch_size]).to(self.dev, self.model.dtype)
            feats.append(tower_pooled(self.model, pixels).float().cpu())
        feats = torch.cat(feats)
        out = torch.zeros((len(items), feats.shape[-1]))
        for k, it in enumerate(items):
            if it.image >= 0:
                out[k] = feats[it.image]
        return out


def tower_pooled(model, pixel_values):
    """(N, d) pooled tower output: ``pooler_output`` where the tower has one, else the mean of the patch
    features the projector is given (the config's feature layer, CLS dropped by the ``default`` strategy)."""
    llava = _body(model)
    cfg = _base(model).config
    out = llava.vision_tower(pixel_values=pixel_values, output_hidden_states=True)
    pooled = getattr(out, "pooler_output", None)
    if pooled is not None:
        return pooled
    feats = out.hidden_states[cfg.vision_feature_layer]
    if cfg.vision_feature_select_strategy == "default":
        feats = feats[:, 1:]
    return feats.mean(1)


def art_positions(task, turns, image, ids: list[int]) -> list[int]:
    """Positions in ``ids`` (the conversation's training ids) of the tokens that hold the image's ASCII art."""
    tok = task.tokenizer
    art = task.image_text(image)
    text = tok.apply_chat_template(task.turn_messages(turns, image), tokenize=False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != list(ids):
        raise AssertionError("the conversation's text tokenizes differently from its training ids")
    needle = art if art in text else art.strip()     # a template that trims its turns cuts the art's margins
    spans, at = [], text.find(needle)
    while at >= 0 and needle:
        spans.append((at, at + len(needle)))
        at = text.find(needle, at + len(needle))
    if not spans:
        raise UserError("the chat template changes the ASCII art inside a turn, so its tokens cannot be found; "
                        "use answer-hidden features")
    return [k for k, (s, e) in enumerate(enc["offset_mapping"]) if any(s < b and e > a for a, b in spans)]


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _body(model):
    """The model without its LM head (LoRA layers stay in it): ``LlavaModel`` or the causal LM's decoder,
    whose ``last_hidden_state`` is what the head reads."""
    return _base(model).model


def _stack(images):
    import numpy as np

    if images and all(np.shape(im) == np.shape(images[0]) for im in images):
        return np.stack(images)
    return list(images)


class _deterministic:
    """torch's deterministic algorithms for the block, put back as they were after it."""

    def __enter__(self):
        import torch

        self.was = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
        torch.use_deterministic_algorithms(True, warn_only=True)

    def __exit__(self, *exc):
        import torch

        torch.use_deterministic_algorithms(self.was[0], warn_only=self.was[1])
