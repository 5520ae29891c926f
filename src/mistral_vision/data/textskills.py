"""PLACEHOLDER, replaced by H9's generator at merge: a few toy templates with the final interface.

The real module is a seeded generator of structured-text skills (records, lists and tables of items;
membership, counting, positions, sums, comparisons, lettered multiple choice; many phrasings). This
stand-in keeps only its interface, so the text-pretraining plumbing (``data/textdata.py``, the ``text``
stage, ``mistral-vision pretrain``) runs and is tested before the generator lands:

- ``SKILLS``: the skill names (a held-out sample's ``type``);
- ``generate(n, seed, turns=4, skills=None)``: ``n`` LLaVA-JSON-shaped multi-turn text-only conversations
  (no ``image`` key, ``"type": "conversation"``);
- ``heldout(n, seed, skills=None)``: ``n`` single-question samples with ``"type": <skill>`` and the
  ``"candidates"`` that scoring ranks;
- ``vocabulary()``: every word the templates can write (for the tokenizer's merges).
Not for: the VQA sets' questions (``vqa.py``), whose phrasings this must never reuse.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError

SKILLS = ("member", "count", "position")
_WORDS = ("red", "blue", "green", "cat", "dog", "owl", "one", "two", "three", "four")
_ORDINALS = ("first", "second", "third", "fourth")


def _check(skills) -> tuple[str, ...]:
    skills = tuple(skills) if skills else SKILLS
    bad = [s for s in skills if s not in SKILLS]
    if bad:
        raise UserError(f"unknown text skill {bad[0]!r}; known: {', '.join(SKILLS)}")
    return skills


def _question(rng, skill: str) -> tuple[str, str, list[str]]:
    items = [str(w) for w in rng.choice(_WORDS, 4)]
    listing = "List: " + ", ".join(items) + "."
    if skill == "member":
        w = str(rng.choice(_WORDS))
        return f"{listing} Does the list hold {w}?", "yes" if w in items else "no", ["yes", "no"]
    if skill == "count":
        w = str(rng.choice(items))
        return f"{listing} How many times is {w} listed?", str(items.count(w)), [str(k) for k in range(1, 5)]
    k = int(rng.integers(4))
    return f"{listing} Which item is {_ORDINALS[k]}?", items[k], sorted(set(_WORDS))


def generate(n: int, seed: int, turns: int = 4, skills=None) -> list[dict]:
    skills = _check(skills)
    rng = np.random.default_rng([seed, 0])
    out = []
    for i in range(n):
        conv = []
        for _ in range(turns):
            q, a, _ = _question(rng, skills[int(rng.integers(len(skills)))])
            conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
        out.append({"id": f"text-{seed}-{i}", "conversations": conv, "type": "conversation"})
    return out


def heldout(n: int, seed: int, skills=None) -> list[dict]:
    skills = _check(skills)
    rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(n):
        skill = skills[i % len(skills)]
        q, a, cands = _question(rng, skill)
        out.append({"id": f"heldout-{seed}-{i}", "conversations": [{"from": "human", "value": q},
                                                                   {"from": "gpt", "value": a}],
                    "type": skill, "candidates": cands})
    return out


def vocabulary() -> list[str]:
    return sorted(set(_WORDS) | set(_ORDINALS) | {"List", "Does", "the", "list", "hold", "How", "many", "times",
                                                   "is", "listed", "Which", "item", "yes", "no"})
