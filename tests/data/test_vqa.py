"""The synthetic VQA sets: answers true to the canvas, deterministic, no image shared between splits."""
import re

import numpy as np
import pytest

from mistral_vision.config import DataConfig
from mistral_vision.data.questions import from_vqa, vqa_split
from mistral_vision.data.vqa import (CELL, EMPTY, MC_INSTRUCTION, QUESTION_TYPES, QuestionMaker, cell_names,
                                     check_types, generate_split, get_vqa)
from mistral_vision.errors import UserError


def _data(data_dir, **kw):
    base = dict(dataset="mnist-vqa", data_dir=str(data_dir), offline=True, valid_size=100, train_canvases=150,
                valid_canvases=60, test_canvases=40)
    base.update(kw)
    return DataConfig(**base)


def _blocks(canvas, grid):
    return [canvas[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] for r in range(grid) for c in range(grid)]


def _expected(q, cells, names, grid):
    """The answer recomputed from the canvas's cells and the question's words."""
    cn = cell_names(grid)
    filled = [v for v in cells if v >= 0]
    named = [c for c in sorted(cn, key=len, reverse=True) if re.search(rf"\b{c}\b", q.question)]
    if q.type == "cell":
        (c,) = named
        v = cells[cn.index(c)]
        return names[v] if v >= 0 else EMPTY
    if q.type == "count":
        return str(len(filled))
    if q.type in ("count_class", "present"):
        (digit,) = re.findall(r"\b(\d)\b", q.question)
        n = sum(v == int(digit) for v in cells)
        return str(n) if q.type == "count_class" else ("yes" if n else "no")
    if q.type == "sum":
        return str(sum(filled))
    if q.type == "larger":
        a, b = [cn.index(c) for c in cn if re.search(rf"\b{c}\b", q.question)]
        return cn[a] if cells[a] > cells[b] else cn[b]
    if q.type == "caption":
        return ", ".join(f"{c}: {names[v] if v >= 0 else EMPTY}" for c, v in zip(cn, cells)) + "."
    raise AssertionError(q.type)


def test_every_answer_is_true_to_its_canvas(data_dir):
    sp = vqa_split(_data(data_dir), "valid")
    names = sp.label_names
    seen_types = set()
    for q in sp.questions:
        cells = [int(v) for v in sp.cells[q.canvas]]
        seen_types.add(q.type)
        if q.type == "mc":
            opts = dict(re.findall(r"\(([A-E])\) (\S+)", q.question))
            assert q.question.endswith(MC_INSTRUCTION) and q.answer in opts and len(set(opts.values())) == len(opts)
            assert q.candidates == tuple(sorted(opts))
            continue
        assert q.answer == _expected(q, cells, names, sp.grid), q
        if q.candidates:
            assert q.answer in q.candidates
    assert seen_types == set(QUESTION_TYPES)


def test_canvas_pixels_match_the_cells_and_come_from_the_split_only(data_dir):
    from mistral_vision.data.datasets import load_split

    d = _data(data_dir)
    pools = {s: {im.tobytes() for im in load_split("mnist", s, str(data_dir), True, 100).images}
             for s in ("train", "valid", "test")}
    for split in ("train", "valid", "test"):
        sp = vqa_split(d, split)
        others = set().union(*(pools[o] for o in pools if o != split)) - pools[split]
        for canvas, cells in zip(sp.images, sp.cells):
            assert (cells >= 0).any()
            for block, v in zip(_blocks(canvas, sp.grid), cells):
                if v < 0:
                    assert not block.any()
                else:
                    assert block.tobytes() in pools[split] and block.tobytes() not in others


def test_same_seed_same_questions_other_seed_other_questions(data_dir):
    a, b = vqa_split(_data(data_dir), "valid"), vqa_split(_data(data_dir), "valid")
    c = vqa_split(_data(data_dir, vqa_seed=1), "valid")
    assert np.array_equal(a.images, b.images) and [q.question for q in a.questions] == [q.question for q in b.questions]
    assert not np.array_equal(a.images, c.images)


def test_training_conversations_are_multi_turn_with_distinct_types_and_captions(data_dir):
    sp = vqa_split(_data(data_dir, turns=4), "train")
    convs = [c for c in sp.conversations if c[0].type != "caption"]
    captions = [c for c in sp.conversations if c[0].type == "caption"]
    assert len(captions) == len(sp.images) and all(len(c) == 1 for c in captions)
    assert all(2 <= len(c) <= 4 and len({q.type for q in c}) == len(c) for c in convs)
    qs = from_vqa(sp, True)
    multi = [it for it in qs.items if it.type == "conversation"][0]
    assert multi.turns[0][1].startswith("<image>\n") and all("<image>" not in t for _, t in multi.turns[1:])
    assert [r for r, _ in multi.turns] == ["human", "gpt"] * (len(multi.turns) // 2)


def test_answers_are_balanced_enough_to_mean_something(data_dir):
    sp = vqa_split(_data(data_dir, valid_canvases=400, question_types=["present", "count_class"]), "valid")
    present = [q.answer for q in sp.questions if q.type == "present"]
    assert 0.3 < present.count("yes") / len(present) < 0.7
    zeros = [q.answer for q in sp.questions if q.type == "count_class"].count("0")
    assert zeros / len(present) < 0.7


def test_fashion_has_no_digit_questions_and_unknown_types_list_the_known():
    assert "sum" not in check_types(None, get_vqa("fashion-vqa"))
    assert "sum" in check_types(None, get_vqa("mnist-vqa"))
    with pytest.raises(UserError, match="unknown question type 'colour'; known: .*caption.*sum"):
        check_types(["colour"], get_vqa("mnist-vqa"))
    with pytest.raises(UserError, match="unknown dataset 'cifar-vqa'; known: .*fashion-vqa.*mnist-vqa"):
        get_vqa("cifar-vqa")


def test_multiple_choice_options_hold_the_true_answer_once():
    rng = np.random.default_rng(0)
    maker = QuestionMaker(get_vqa("mnist-vqa"), tuple(str(i) for i in range(10)), 2)
    for _ in range(200):
        cells = rng.integers(-1, 10, 4)
        got = maker.multiple_choice(rng, "sum", cells)
        text, letter, letters = got
        opts = dict(re.findall(r"\(([A-E])\) (\S+)", text))
        assert opts[letter] == str(sum(v for v in cells if v >= 0))
        assert list(opts.values()).count(opts[letter]) == 1 and len(letters) == 4


def test_generate_split_refuses_zero_canvases():
    with pytest.raises(UserError, match="at least 1"):
        generate_split(get_vqa("mnist-vqa"), np.zeros((3, 28, 28), np.uint8), np.zeros(3), [str(i) for i in range(10)],
                       "valid", 0)
