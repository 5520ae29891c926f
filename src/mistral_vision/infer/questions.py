"""Answering a question set: candidates scored where the answer set is finite, greedy generation otherwise.

A question with candidates (a class, a count, a sum, yes/no, option letters) is answered by
label scoring: every candidate's continuation is scored after the prompt (``LabelScorer``,
one per candidate set) and the best one wins, so each prediction is a valid answer with a
probability. A free-form question (captions, a user's open questions) is generated greedily
and compared after :func:`normalize`. ``answers="generate"`` generates for lettered
multiple-choice questions too and parses the reply as LLaVA's ScienceQA evaluation does
(``data/sqa.py``): an exact letter, ``X. ...``, or ``The answer is X.``; anything else is
``FAILED``, kept and scored wrong. Test-time views average the candidates' log-probabilities
(generation uses the plain image). Not for: metrics or files (``eval/questions.py``).
"""
from __future__ import annotations

import re
import sys
import time

import numpy as np

ANSWER_MODES = ("score", "generate")
FAILED = "FAILED"


def normalize(text: str | None) -> str:
    """Lower case, single spaces, no surrounding spaces or closing full stop: how free answers are compared."""
    if text is None:
        return ""
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip().lower()


class QuestionAnswerer:
    """Answers items of a question set with a loaded model and its task."""

    def __init__(self, model, task, score_eos: bool = False, max_new_tokens: int = 64, answers: str = "score"):
        from ..errors import one_of

        if answers not in ANSWER_MODES:
            raise one_of("answer mode", answers, ANSWER_MODES)
        self.model, self.task, self.score_eos = model, task, score_eos
        self.max_new_tokens, self.answers = max_new_tokens, answers
        self._scorers: dict[tuple, object] = {}

    def scorer(self, candidates: tuple[str, ...]):
        """The ``LabelScorer`` of one candidate set, built once per set."""
        from .scorer import LabelScorer

        if candidates not in self._scorers:
            ids = self.task.answer_ids(candidates)
            self._scorers[candidates] = LabelScorer(self.model, ids, self.task.pad_id, self.task.eos_id, self.score_eos)
        return self._scorers[candidates]

    def _encode(self, items, images):
        from ..tasks.base import Encoded

        ids = [self.task.question_ids(it.turns, images[k] if it.image >= 0 else None) for k, it in enumerate(items)]
        rows = [k for k, it in enumerate(items) if it.image >= 0]
        extras = self.task.image_extras(_stack([images[k] for k in rows])) if rows else {}
        return Encoded(ids, extras)

    def mode_of(self, item) -> str:
        lettered = item.type in ("multiple-choice", "mc") or (
            item.candidates is not None and all(re.fullmatch(r"[A-Z]", c) for c in item.candidates))
        if item.candidates is None or (self.answers == "generate" and lettered):
            return "generate"
        return "score"

    def answer(self, qs, idx: list[int], views=None) -> list[dict]:
        """Records (in ``idx`` order) for items ``idx`` of ``qs``: pred, prob (scored) or text (generated), correct."""
        import torch

        items = [qs.items[i] for i in idx]
        base = [qs.images[it.image] if it.image >= 0 else None for it in items]
        out: dict[int, dict] = {}
        groups: dict[tuple, list[int]] = {}
        for k, it in enumerate(items):
            mode = self.mode_of(it)
            groups.setdefault((mode, it.candidates if mode == "score" else None), []).append(k)
        for (mode, cands), ks in groups.items():
            sub = [items[k] for k in ks]
            imgs = [base[k] for k in ks]
            if mode == "score":
                total = None
                for view in (views or [None]):
                    seen = imgs if view is None else _view(view, imgs)
                    enc = self._encode(sub, seen)
                    lp = torch.log_softmax(self.scorer(cands).score(enc.ids, enc.extras), -1)
                    total = lp if total is None else total + lp
                probs = torch.softmax(total / len(views or [None]), -1).numpy()
                for row, k in enumerate(ks):
                    j = int(probs[row].argmax())
                    out[k] = {"pred": cands[j], "prob": round(float(probs[row, j]), 6), "mode": "scored"}
            else:
                texts = self._generate(self._encode(sub, imgs))
                for k, text in zip(ks, texts):
                    pred = text
                    if items[k].candidates is not None:          # lettered options: LLaVA's ScienceQA parsing
                        from ..data.sqa import LETTERS, parse_answer

                        pred = parse_answer(text, list(LETTERS))
                    out[k] = {"pred": pred, "prob": None, "mode": "generated", "text": text}
        recs = []
        for k, (i, it) in enumerate(zip(idx, items)):
            r = out[k]
            truth = it.answer
            correct = truth is not None and r["pred"] != FAILED and normalize(r["pred"]) == normalize(truth)
            recs.append({"index": int(i), "id": it.id, "type": it.type, "question": it.question[:500],
                         "truth": truth, **r, "correct": bool(correct), "has_image": it.image >= 0,
                         "image": int(it.image)})
        return recs

    def _generate(self, enc) -> list[str]:
        import torch
        from transformers import GenerationConfig

        from ..tasks.batch import pad_left

        tok = self.task.tokenizer
        dev = next(self.model.parameters()).device
        ids, mask = pad_left(enc.ids, self.task.pad_id)
        greedy = GenerationConfig(do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=self.task.pad_id,
                                  eos_token_id=self.task.eos_id)
        extras = {k: v.to(device=dev, dtype=self.model.dtype if v.is_floating_point() else v.dtype)
                  for k, v in enc.extras.items()}
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), generation_config=greedy,
                                      **extras)
        return [tok.decode(row[ids.shape[1]:], skip_special_tokens=True).strip() for row in out]


def _stack(images):
    if images and all(np.shape(im) == np.shape(images[0]) for im in images):
        return np.stack(images)
    return list(images)


def _view(view, images):
    """A test-time view of each image (the views shift and mirror whole arrays of one shape)."""
    rows = [k for k, im in enumerate(images) if im is not None]
    if not rows:
        return images
    moved = view(_stack([images[k] for k in rows]))
    out = list(images)
    for j, k in enumerate(rows):
        out[k] = moved[j]
    return out


def answer_questions(cfg, run_dir, qs, todo: list[int], write, batch_size: int | None = None, progress: bool = True,
                     tta: str = "none", answers: str = "score", desc: str = "answer") -> float:
    """Answer items ``todo`` of ``qs`` with the run's model, passing records to ``write``; -> seconds."""
    from tqdm.auto import tqdm

    from ..data.augment import tta_views
    from .loading import load_for_inference

    loaded = load_for_inference(cfg, run_dir)
    answerer = QuestionAnswerer(loaded.model, loaded.task, cfg.eval.score_eos, answers=answers)
    views = tta_views(tta)
    bs = batch_size or cfg.eval.batch_size
    t0 = time.time()
    with tqdm(total=len(todo), disable=not (progress and sys.stderr.isatty()), desc=desc, unit="q",
              mininterval=1.0, dynamic_ncols=True) as bar:
        for start in range(0, len(todo), bs):
            sel = todo[start:start + bs]
            write(answerer.answer(qs, sel, views))
            bar.update(len(sel))
    return time.time() - t0
