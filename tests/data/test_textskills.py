"""The text-skills corpus: deterministic, answers true to their context, balanced, held-out contexts never
trained on, and none of vqa.py's phrasings (transfer to mnist-vqa is what it is for)."""
import collections
import re

import numpy as np
import pytest

from mistral_vision.data import textskills as ts
from mistral_vision.data.datasets import DATASETS
from mistral_vision.data.vqa import MC_INSTRUCTION, PHRASINGS as VQA_PHRASINGS, VQA_DATASETS, generate_split
from mistral_vision.errors import UserError


@pytest.fixture(scope="module")
def train():
    return ts._conversations(3000, 7, 4, None)


@pytest.fixture(scope="module")
def held():
    return ts._heldout(2400, 7, None)


def _questions(train, held):
    return [q for _, _, qs in train for q in qs] + [q for _, _, q in held]


def _value(ctx, name, column=""):
    (slot,) = [s for s in ctx.slots if s.name == name and (not column or s.column == column)]
    return slot.value


def _expected(ctx, query):
    """The answer recomputed from the context's places and the structured query, without the generator's code."""
    values = [s.value for s in ctx.slots]
    filled = [v for v in values if v is not None]
    kind = query[0]
    if kind == "member":
        return "yes" if query[1] in filled else "no"
    if kind == "count":
        what = query[1]
        n = len(filled) if what == "filled" else values.count(None) if what == "empty" else filled.count(what)
        return str(n)
    if kind == "position":
        return values[query[1]] or "empty"
    if kind == "sum":
        return str(sum(int(values[i]) for i in query[1]))
    if kind == "compare":
        _, form, rel, a, b = query
        numbers = [s for s in ctx.slots if s.category in ("digit", "number") and s.value is not None]
        if numbers:
            va, vb = (int(next(s.value for s in numbers if s.name == n)) for n in (a, b))
        else:
            va, vb = filled.count(a), filled.count(b)
        if form == "which":
            return a if (va > vb) == (rel == "more") else b
        return "yes" if {"more": va > vb, "less": va < vb, "equal": va == vb}[rel] else "no"
    if kind == "extreme":
        _, group, idx = query
        vals = [int(values[i]) for i in idx]
        best = max(vals) if group == "largest" else min(vals)
        return ctx.slots[idx[vals.index(best)]].name
    raise AssertionError(query)


def _check_mentions(ctx, q):
    """The question names what its query is about (so the structured query is the question asked)."""
    kind = q.query[0]
    if kind in ("member", "count") and q.query[1] not in ("filled", "empty"):
        assert re.search(rf"(?<![\w-]){re.escape(q.query[1])}(?![\w-])", q.text), q
    if kind == "position":
        assert any(r in q.text for r in ctx.slots[q.query[1]].refs()), q
    if kind == "sum" and q.phrasing == "sum_pair":
        for i in q.query[1]:
            assert any(r in q.text for r in ctx.slots[i].refs()), q
    if kind == "compare":
        for name in q.query[3:]:
            says = {s.say for s in ctx.slots if s.name == name} or {name}
            assert any(s in q.text for s in says), q


def test_every_answer_is_true_to_its_context_and_among_its_candidates(train, held):
    seen = collections.Counter()
    for q, ctx in [(q, c) for _, c, qs in train for q in qs] + [(q, c) for _, c, q in held]:
        seen[q.skill] += 1
        assert q.answer in q.candidates, q
        if q.skill == "choice":
            _, inner, options = q.query
            letters = dict(zip(ts.LETTERS, options))
            assert len(set(options)) == 4 and q.candidates == ts.LETTERS
            for letter, option in letters.items():      # the options as written, in order
                assert re.search(rf"(^|\s){letter}[.):] {re.escape(option)}(\s|;|$)", q.text), q.text
            if inner[0] == "which_member":
                present = {s.value for s in ctx.slots if s.value is not None}
                assert [o in present for o in options].count(inner[1]) == 1
                assert (letters[q.answer] in present) == inner[1]
            else:
                assert letters[q.answer] == _expected(ctx, inner), q
                _check_mentions(ctx, q._replace(query=inner))
            continue
        assert q.answer == _expected(ctx, q.query), (ctx.text, q)
        _check_mentions(ctx, q)
    assert set(seen) == set(ts.SKILLS) and min(seen.values()) > 300


def test_the_context_text_shows_its_places_in_order(train, held):
    """Every place's item (or an empty mark) occurs in the text, in the places' order."""
    empty = "|".join(re.escape(m) for m in ts.EMPTY_MARKS)
    for ctx in [c for _, c, _ in train] + [c for _, c, _ in held]:
        pos = 0
        for s in ctx.slots:
            pattern = re.escape(s.value) if s.value is not None else f"(?:{empty})"
            m = re.compile(rf"(?<![\w-]){pattern}(?![\w])").search(ctx.text, pos)
            assert m, (ctx.text, s)
            pos = m.end()


def test_samples_are_llava_json_without_image_and_conversations_ask_distinct_skills(train, held):
    for i, (sample, ctx, qs) in enumerate(train):
        assert set(sample) == {"id", "conversations", "type"} and sample["id"] == f"ts-7-{i}"
        assert sample["type"] == "conversation"
        turns = sample["conversations"]
        assert [t["from"] for t in turns] == ["human", "gpt"] * 4
        assert turns[0]["value"].endswith(qs[0].text) and ctx.text in turns[0]["value"]
        assert [t["value"] for t in turns[1::2]] == [q.answer for q in qs]
        assert all(t["value"] == q.text for t, q in zip(turns[2::2], qs[1:]))
        assert len({q.text for q in qs}) == 4
    distinct = sum(len({q.skill for q in qs}) == len(qs) for _, _, qs in train)
    assert distinct / len(train) > 0.98
    for i, (sample, _, q) in enumerate(held):
        assert sample["type"] == ts.SKILLS[i % len(ts.SKILLS)] == q.skill       # the skills in turn
        assert [t["from"] for t in sample["conversations"]] == ["human", "gpt"]
        assert sample["candidates"] == list(q.candidates) and "image" not in sample


def test_contexts_and_conversations_are_short(train):
    for sample, ctx, _ in train:
        assert len(re.findall(r"\w+", ctx.text)) <= 48
        assert sum(len(re.findall(r"\w+", t["value"])) for t in sample["conversations"]) < 160


def test_same_seed_same_corpus_other_seed_other_corpus_and_prefixes_agree():
    a, b, c = ts.generate(300, 3), ts.generate(300, 3), ts.generate(300, 4)
    assert a == b and a != c
    assert ts.generate(120, 3) == a[:120]
    assert ts.heldout(60, 3) == ts.heldout(60, 3) != ts.heldout(60, 4)
    assert ts.generate(50, 3, turns=2, skills=("sum",)) == ts.generate(50, 3, turns=2, skills=("sum",))


def test_held_out_contexts_never_occur_in_training(train, held):
    train_keys = {ctx.key() for _, ctx, _ in train} | {ctx.key() for _, ctx, _ in ts._conversations(2000, 8, 4, None)}
    held_keys = {ctx.key() for _, ctx, _ in held}
    assert train_keys.isdisjoint(held_keys) and len(held_keys) > 1500
    # on the public output too: no held-out context text opens a training conversation of the same seed
    first = {s["conversations"][0]["value"].rsplit("\n", 1)[0] for s, _, _ in train}
    assert all(s["conversations"][0]["value"].rsplit("\n", 1)[0] not in first for s, _, _ in held)


def test_without_the_hash_split_streams_would_share_contexts(train, monkeypatch):
    """Small contexts collide by chance across independent RNG streams: the split above is doing the work."""
    monkeypatch.setattr(ts, "_heldout_bucket", lambda key: False)
    d = ts._Draws(7, ts._HELDOUT)
    unsplit = {ts._context(d, ts._TRAIN).key() for _ in range(3000)}
    assert unsplit & {ctx.key() for _, ctx, _ in train}


def test_answers_are_not_guessable_by_majority():
    member = [q.answer for _, _, q in ts._heldout(2000, 11, ("member",))]
    assert 0.4 < member.count("yes") / len(member) < 0.6
    compare = [q for _, _, q in ts._heldout(2000, 11, ("compare",))]
    yes_no = [q.answer for q in compare if q.candidates == ts.YES_NO]
    which = [q.answer == q.candidates[0] for q in compare if q.candidates != ts.YES_NO]
    assert 0.4 < yes_no.count("yes") / len(yes_no) < 0.6 and 0.4 < sum(which) / len(which) < 0.6
    letters = collections.Counter(q.answer for _, _, q in ts._heldout(2000, 11, ("choice",)))
    assert set(letters) == set(ts.LETTERS) and all(0.2 < n / 2000 < 0.3 for n in letters.values())
    for skill, limit in (("count", 0.4), ("sum", 0.1), ("position", 0.15)):
        answers = collections.Counter(q.answer for _, _, q in ts._heldout(1000, 11, (skill,)))
        assert answers.most_common(1)[0][1] / 1000 < limit, (skill, answers.most_common(3))
        assert len(answers) >= 6


def test_every_phrasing_is_used_and_each_skill_has_at_least_six(train, held):
    for skill, groups in ts.SKILL_PHRASINGS.items():
        assert sum(len(ts.PHRASINGS[g]) for g in groups) >= 6, skill
    assert len(ts.CHOICE_INSTRUCTIONS) >= 6 and len(ts.OPTION_STYLES) >= 4
    lines = collections.defaultdict(set)
    for q in _questions(train, held):
        for line in q.text.split("\n"):
            lines[q.phrasing].add(line)
    for group, templates in ts.PHRASINGS.items():
        for t in templates:
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(t)))
            assert any(pattern.fullmatch(line) for line in lines[group]), t


def _vqa_patterns():
    """vqa.py's question templates with their variable parts as wildcards (its nouns filled in), and its fixed
    strings."""
    templates = {t.replace("{noun}", spec.noun) for spec in VQA_DATASETS.values()
                 for group in VQA_PHRASINGS.values() for t in group}
    out = [re.compile(re.sub(r"\\\{\w+\\\}", r"[^\n]+?", re.escape(t)), re.IGNORECASE) for t in sorted(templates)]
    out += [re.compile(re.escape(MC_INSTRUCTION)), re.compile(r"Options: \([A-E]\)"), re.compile(r"^Question: ", re.M),
            re.compile(r"\b(top|middle|bottom)-(left|center|right|middle): ")]          # the caption's "cell: item"
    return out


def _vqa_questions():
    images = np.zeros((50, 28, 28), np.uint8)
    labels = np.arange(50) % 10
    out = set()
    for name, spec in VQA_DATASETS.items():
        for grid in (2, 3):
            names = DATASETS[spec.base].label_names
            split = generate_split(spec, images, labels, names, "valid", 200, grid=grid)
            out |= {line for q in split.questions for line in q.question.split("\n")}
    return out


def test_no_question_or_layout_of_vqa_py_is_reused(train, held):
    texts = [t["value"] for s, _, _ in train for t in s["conversations"]]
    texts += [t["value"] for s, _, _ in held for t in s["conversations"]]
    for pattern in _vqa_patterns():
        hit = next((t for t in texts if pattern.search(t)), None)
        assert hit is None, (pattern.pattern, hit)
    theirs = _vqa_questions()
    assert len(theirs) > 100
    ours = {line for t in texts for line in t.split("\n")}
    assert not ours & theirs


def test_vocabulary_covers_every_word_emitted(train, held):
    vocab = set(ts.vocabulary())
    assert {"top", "left", "empty", "yes", "no", "A", "100", "|", "Ann", "pullover"} <= vocab
    for sample in [s for s, _, _ in train] + [s for s, _, _ in held]:
        for turn in sample["conversations"]:
            missing = set(ts.words(turn["value"])) - vocab
            assert not missing, (missing, turn["value"])


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(UserError, match="unknown text skill 'colour'; known: choice, compare, count"):
        ts.generate(3, 0, skills=("member", "colour"))
    with pytest.raises(UserError, match="seed must be a whole number >= 0, got -1"):
        ts.heldout(3, -1)
    with pytest.raises(UserError, match="number of samples must be a whole number >= 0, got 2.5"):
        ts.generate(2.5, 0)
    with pytest.raises(UserError, match="turns must be at least 1"):
        ts.generate(3, 0, turns=0)
    assert ts.generate(0, 0) == [] and ts.heldout(0, 0) == []
