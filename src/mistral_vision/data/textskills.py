"""Synthetic "structured-text skills" for pretraining the tiny LLM on text before any image.

A context is a short list, grid, record or table of items (digits, numbers, colours, animals,
fruit, clothing, vehicles, shapes, people's names; grid and table places may be empty), written
in one of several formats ("key: value" lines, comma lists, bullets, "|" tables, prose). Questions
about it exercise the lookups the visual questions need, each with many phrasings and a short
answer from a finite set:

- ``member``: does X appear (yes / no, balanced);
- ``count``: how many times X appears, how many places are filled or empty (a number 0-9);
- ``position``: the item at a named place: "the third item", "item 3", "the top-left square",
  "row 2, column 1", "Ann's pet" (an item, or ``empty``);
- ``sum``: the total of the numbers, or of two named ones;
- ``compare``: which of two places holds the larger / smaller number (or, among words, which
  occurs more often), and yes / no "is A more than B", "are A and B equal";
- ``choice``: one of these as lettered multiple choice ("A. ... B. ... C. ... D. ..."),
  answered with the letter (uniform over A-D).

:func:`generate` writes multi-turn training conversations (one context, then ``turns``
questions of distinct skills), :func:`heldout` single-question evaluation samples with their
candidate answers, in LLaVA's JSON shape without an ``"image"`` key. Every draw comes from
``np.random.default_rng([seed, stream])`` (stream 1: training, 2: held out), and a context's
content hash decides which of the two may use it, so held-out contexts never occur in training,
for any seed. The phrasings and layouts deliberately differ from ``vqa.py``'s templates and
caption format (a test checks it): what transfers from this corpus to mnist-vqa is what the
language-pretraining stage measures. Not for: image questions (``vqa.py``), training or scoring.
"""
from __future__ import annotations

import re
import zlib
from typing import NamedTuple

import numpy as np

from ..errors import UserError, one_of

TEXT_DATASETS = ("text-skills",)       # dataset ids of generated text (data/textdata.py reads them)

SKILLS: tuple[str, ...] = ("member", "count", "position", "sum", "compare", "choice")
EMPTY = "empty"              # the answer for an empty place, however the context writes it
YES_NO = ("yes", "no")
LETTERS = ("A", "B", "C", "D")
COUNTS = tuple(str(i) for i in range(10))      # no context has more than 9 places
SUMS = tuple(str(i) for i in range(101))       # 5 numbers <= 20, or 9 digits
_TRAIN, _HELDOUT = 1, 2      # RNG streams
_HELDOUT_SHARE = 5           # one content-hash bucket in five is reserved for held-out contexts

CATEGORIES = {
    "digit": tuple("0123456789"),
    "number": tuple(str(i) for i in range(21)),
    "colour": ("red", "blue", "green", "yellow", "black", "white", "pink", "brown", "grey", "orange", "purple"),
    "animal": ("cat", "dog", "fox", "owl", "cow", "pig", "hen", "bee", "ant", "frog", "horse", "sheep", "duck",
               "goat", "lion", "bear", "mouse", "fish"),
    "fruit": ("apple", "pear", "plum", "lemon", "lime", "grape", "peach", "mango", "cherry", "melon", "banana", "kiwi"),
    "clothing": ("shirt", "coat", "dress", "sock", "hat", "scarf", "boot", "sandal", "sneaker", "bag", "trouser",
                 "pullover", "skirt", "glove"),
    "vehicle": ("car", "bus", "bike", "boat", "train", "van", "plane", "truck", "tram", "ship"),
    "shape": ("circle", "star", "heart", "ring", "cross", "arrow", "moon", "diamond"),
}
WORD_CATEGORIES = ("colour", "animal", "fruit", "clothing", "vehicle", "shape")
TOPICS = {"digit": ("score", "marks", "points"), "number": ("age", "score", "points"), "colour": ("colour",),
          "animal": ("pet", "animal"), "fruit": ("fruit",), "clothing": ("garment", "outfit"),
          "vehicle": ("vehicle", "ride"), "shape": ("shape", "sign")}
NAMES = ("Ann", "Bob", "Cid", "Dana", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon", "Kim", "Leo", "Mia", "Ned", "Ola",
         "Pam", "Raj", "Sam", "Tom", "Uma", "Vic", "Wes", "Yan", "Zoe")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
EMPTY_MARKS = ("-", "empty", "none", "blank", "nothing")
ROW_WORDS = {2: ("top", "bottom"), 3: ("top", "middle", "bottom")}
COL_WORDS = {2: ("left", "right"), 3: ("left", "middle", "right")}

# Context layouts. Lists: (before, item, between, after); records the same with {k} {v} {topic};
# grids: (before, row, between cells, between rows, after) or a per-place form; tables: separators.
LIST_FORMATS = (("", "{v}", ", ", ""), ("", "- {v}", "\n", ""), ("", "* {v}", "\n", ""), ("", "{i}) {v}", "\n", ""),
                ("The items are ", "{v}", ", ", "."), ("[", "{v}", ", ", "]"), ("", "{v}", " / ", ""),
                ("First ", "{v}", ", then ", "."))
GRID_ROW_FORMATS = (("", "{cells}", " | ", "\n", ""), ("", "Row {r}: {cells}.", ", ", " ", ""),
                    ("", "{row} row: {cells}", " ", "; ", ""), ("[", "[{cells}]", ", ", ", ", "]"),
                    ("", "{cells}", " ", "\n", ""))
GRID_PLACE_FORMATS = (("", "{pos} = {v}", "; ", ""), ("", "the {pos} is {v}", ", ", "."))
RECORD_FORMATS = (("", "{k}: {v}", "\n", ""), ("", "{k} = {v}", "; ", ""), ("", "{k}'s {topic} is {v}.", " ", ""),
                  ("", "{k} {v}", ", ", ""), ("{topic}: ", "{k} {v}", " | ", ""), ("", "- {k}: {v}", "\n", ""))
TABLE_SEPARATORS = ((" | ", "", ""), (" | ", "| ", " |"), (", ", "", ""))
TABLE_PROSE = ("{k}: ", "{c} {v}", ", ", ".")
TABLE_KEY_HEADERS = ("name", "who", "person")
WHERE = {"list": ("in the list", "the list"), "grid": ("in the grid", "the grid"),
         "record": ("in the record", "the record"), "table": ("in the table", "the table")}
SUM_COLUMN = "in the {col} column"
# How questions name a place (noun phrases).
LIST_REFS = ("the {o} item", "item {i}", "the item in position {i}", "the {o} entry")
LAST_REFS = ("the last item", "the final entry")
GRID_REFS = ("the {name} square", "the {name} entry", "the entry in row {r}, column {c}", "the {spaced} spot")
CORNER_REF = "the {name} corner"
RECORD_REFS = ("{k}'s {topic}", "the {topic} of {k}", "the entry for {k}", "the value next to {k}")
TABLE_REFS = ("{k}'s {col}", "the {col} of {k}", "the {col} in row {r}", "the entry in row {r} under {col}")
_LIST_LAST_REFS = LIST_REFS + LAST_REFS
_GRID_CORNER_REFS = GRID_REFS + (CORNER_REF,)
_POSITION_CANDIDATES = {c: items + (EMPTY,) for c, items in CATEGORIES.items()}
INTROS = {"list": ("", "List:", "Here is a list.", "Items:", "Look at these items.", "A list of things:"),
          "grid": ("", "Grid:", "A {n}x{n} grid:", "Here is a grid, row by row.", "The board:"),
          "record": ("", "Notes:", "Here are some records.", "Record:", "Data:"),
          "table": ("", "Table:", "Here is a table.", "Look at this table.")}

# Question phrasings: fields {x} an item, {where} "in the list", {thing} "the list", {ref} a named place,
# {a} {b} two places or items. None starts with a field, so no capitalisation is needed.
PHRASINGS = {
    "member": ("Does {x} appear {where}?", "Is {x} one of the entries?", "Is {x} listed?",
               "Can {x} be found {where}?", "Does {thing} include {x}?", "Answer yes or no: does {x} occur {where}?",
               "Is {x} anywhere {where}?", "Does {thing} mention {x} at all?", "Do you find {x} {where}?"),
    "count_item": ("How often does {x} occur {where}?", "How many times is {x} listed?", "How many entries are {x}?",
                   "Count how many times {x} shows up.", "What is the number of {x} entries {where}?",
                   "Give the count of {x}.", "How many copies of {x} are there?", "In {thing}, how many entries say {x}?"),
    "count_filled": ("How many entries are filled in?", "How many places hold something?",
                     "How many non-empty entries are there?", "How many values are given {where}?",
                     "Give the number of entries that are not blank.", "How many of the places are taken?"),
    "count_empty": ("How many entries are empty?", "How many places are left blank?", "How many blanks are there {where}?",
                    "Give the number of empty places.", "How many spots have nothing in them?",
                    "Tally up the empty entries."),
    "position": ("What is {ref}?", "Name {ref}.", "Tell me {ref}.", "Look up {ref}. What is it?", "Read off {ref}.",
                 "What do we have as {ref}?", "What does {thing} give as {ref}?", "Give {ref}, please."),
    "sum_all": ("Sum the numbers {where}.", "Compute the total of every number {where}.",
                "Adding all the numbers {where} gives what?", "What total do the numbers {where} make?",
                "Tell me the sum of all numbers {where}.", "If you add the numbers {where} together, what do you get?",
                "Give the grand total {where}.", "What is the combined value of all numbers {where}?"),
    "sum_pair": ("What is {a} plus {b}?", "Add {a} and {b}.", "What do {a} and {b} sum to?", "Work out {a} plus {b}.",
                 "Take {a} and add {b}. What is the result?", "What is the sum of {a} and {b}?"),
    "which_more": ("Which is larger, {a} or {b}?", "Which is bigger: {a} or {b}?", "Of {a} and {b}, which is greater?",
                   "Which has the higher number, {a} or {b}?", "Between {a} and {b}, which number is higher?",
                   "Which is more, {a} or {b}?"),
    "which_less": ("Which is smaller, {a} or {b}?", "Which is less: {a} or {b}?", "Of {a} and {b}, which is lower?",
                   "Which has the lower number, {a} or {b}?", "Between {a} and {b}, which number is smaller?",
                   "Which is the smaller one, {a} or {b}?"),
    "is_more": ("Is {a} more than {b}?", "Is {a} larger than {b}?", "Does {a} exceed {b}?", "Is {a} greater than {b}?"),
    "is_less": ("Is {a} less than {b}?", "Is {a} smaller than {b}?", "Is {a} below {b}?"),
    "is_equal": ("Are {a} and {b} equal?", "Do {a} and {b} hold the same number?", "Is {a} the same as {b}?"),
    "freq_more": ("Which occurs more often, {a} or {b}?", "Which is more common, {a} or {b}?",
                  "Of {a} and {b}, which shows up more?", "Which appears more times: {a} or {b}?"),
    "freq_less": ("Which occurs less often, {a} or {b}?", "Which is rarer, {a} or {b}?",
                  "Of {a} and {b}, which shows up fewer times?"),
    "freq_is_more": ("Does {a} occur more often than {b}?", "Is {a} more common than {b}?"),
    "freq_is_less": ("Does {a} occur less often than {b}?", "Is {a} rarer than {b}?"),
    "freq_is_equal": ("Do {a} and {b} occur equally often?", "Are {a} and {b} listed the same number of times?"),
    "largest": ("Which of these holds the largest number?", "Which option has the highest value?",
                "Which of them is the biggest?"),
    "smallest": ("Which of these holds the smallest number?", "Which option has the lowest value?",
                 "Which of them is the smallest?"),
    "one_present": ("Which of these appears {where}?", "Which one is listed {where}?",
                    "Only one of these is present. Which?"),
    "one_absent": ("Which of these does not appear {where}?", "Which one is missing {where}?",
                   "Only one of these is absent. Which?"),
}
# Which phrasing groups belong to which skill (for coverage checks and docs).
SKILL_PHRASINGS = {"member": ("member",), "count": ("count_item", "count_filled", "count_empty"),
                   "position": ("position",), "sum": ("sum_all", "sum_pair"),
                   "compare": ("which_more", "which_less", "is_more", "is_less", "is_equal", "freq_more", "freq_less",
                               "freq_is_more", "freq_is_less", "freq_is_equal"),
                   "choice": ("largest", "smallest", "one_present", "one_absent")}
OPTION_STYLES = (("{L}. {o}", "  "), ("{L}. {o}", "\n"), ("{L}) {o}", " "), ("{L}) {o}", "\n"), ("{L}: {o}", "; "))
CHOICE_INSTRUCTIONS = ("Answer with the letter.", "Reply with A, B, C or D.", "Pick the right letter.",
                       "Choose one letter.", "Only give the letter.", "Respond with a single letter.",
                       "Which letter is correct?")
CHOICE_BASES = ("position", "count", "sum", "extreme", "which_member")


class _Draws:
    """Uniform draws from ``default_rng([seed, stream])``, read in blocks (numpy per-call overhead would dominate).

    ``int(u * n)`` is below ``n`` for every float ``u < 1`` and ``n < 2**53``, so no clamping is needed."""

    def __init__(self, seed: int, stream: int):
        self._gen = np.random.default_rng([seed, stream])
        self._buf: list[float] = []
        self._i = 0

    def u(self) -> float:
        i = self._i
        if i == len(self._buf):
            self._buf, i = self._gen.random(4096).tolist(), 0
        self._i = i + 1
        return self._buf[i]

    def many(self, k: int) -> list[float]:
        i = self._i
        if i + k > len(self._buf):
            self._buf, i = self._buf[i:] + self._gen.random(4096).tolist(), 0
        self._i = i + k
        return self._buf[i:i + k]

    def below(self, n: int) -> int:
        return int(self.u() * n)

    def pick(self, seq):
        return seq[int(self.u() * len(seq))]

    def chance(self, p: float) -> bool:
        return self.u() < p

    def sample(self, seq, k: int) -> list:
        """``k`` distinct elements of ``seq`` in random order."""
        pool = list(seq)
        n = len(pool)
        for i, x in enumerate(self.many(k)):
            j = i + int(x * (n - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


class Slot(NamedTuple):
    """One place of a context: how answers name it, how questions refer to it, what it holds."""

    name: str                  # the short answer naming the place: "third", "top-left", "Ann"
    say: str                   # the place in comparisons: "the third", "the top-left", "Ann's age"
    ref_formats: tuple         # noun phrases for lookups ("item {i}", ...), filled from ``fields`` when asked
    fields: dict
    value: str | None          # None: empty
    category: str
    column: str = ""           # table column; sums and comparisons stay inside one

    def refs(self) -> list[str]:
        """Every way a question can name this place: "item 3", "the entry in row 1, column 2", ..."""
        return [f.format(**self.fields) for f in self.ref_formats]

    def ref(self, d: _Draws) -> str:
        return d.pick(self.ref_formats).format(**self.fields)


class Context(NamedTuple):
    kind: str                  # list | grid | record | table
    slots: tuple               # of Slot
    text: str
    where: str                 # "in the list"
    thing: str                 # "the list"

    def key(self) -> str:
        """The content, whatever the layout: two contexts with equal keys are the same context."""
        return content_key(self.kind, [(s.name, s.column, s.value) for s in self.slots])

    def numeric(self) -> list[int]:
        """Indices of the places holding numbers (a table's number column)."""
        return [i for i, s in enumerate(self.slots) if s.category in _NUMERIC]


class Question(NamedTuple):
    skill: str
    text: str
    answer: str
    candidates: tuple
    query: tuple               # what is asked, structured (tests recompute the answer from it)
    phrasing: str              # the PHRASINGS group it came from


_NUMERIC = ("digit", "number")


def content_key(kind: str, places) -> str:
    """A context's content as text, from (name, column, value) per place, whatever the layout."""
    return kind + "|" + "|".join(f"{n}.{c}={v or ''}" for n, c, v in places)


def _slot(*fields) -> Slot:
    """A Slot without NamedTuple's Python-level ``__new__`` (contexts make ~8 of them each; speed matters)."""
    return tuple.__new__(Slot, fields if len(fields) == 7 else fields + ("",))


def _heldout_bucket(key: str) -> bool:
    return zlib.crc32(key.encode()) % _HELDOUT_SHARE == 0


# ---------------------------------------------------------------- contexts
# Each builder draws the content first and renders it only once its hash bucket fits the stream.

def _pool(d: _Draws, category: str, lo: int, hi: int) -> list[str]:
    """A few distinct items of a category, so that items repeat and counts spread."""
    items = CATEGORIES[category]
    return d.sample(items, min(len(items), lo + d.below(hi - lo + 1)))


def _values(d: _Draws, pool, n: int, empty: float) -> list[str | None]:
    us, k = d.many(2 * n), len(pool)
    vals = [None if us[2 * i] < empty else pool[int(us[2 * i + 1] * k)] for i in range(n)]
    if all(v is None for v in vals):
        vals[d.below(n)] = d.pick(pool)
    return vals


def _join(fmt, parts) -> str:
    before, _, between, after = fmt
    return before + between.join(parts) + after


def _list(d: _Draws, numeric: bool, held: bool) -> Context | None:
    cat = "digit" if numeric else d.pick(WORD_CATEGORIES)
    vals = _values(d, _pool(d, cat, 2, 5), 3 + d.below(6), 0.0)
    n = len(vals)
    if _heldout_bucket(content_key("list", [(ORDINALS[i], "", v) for i, v in enumerate(vals)])) != held:
        return None
    slots = tuple(_slot(ORDINALS[i], "the " + ORDINALS[i], _LIST_LAST_REFS if i == n - 1 else LIST_REFS,
                       {"o": ORDINALS[i], "i": i + 1}, v, cat) for i, v in enumerate(vals))
    fmt = d.pick(LIST_FORMATS)
    text = _join(fmt, [fmt[1].format(v=v, i=i + 1) for i, v in enumerate(vals)])
    return Context("list", slots, text, *WHERE["list"])


def _grid_names(g: int) -> list[tuple[str, int, int, bool]]:
    """(name, row, column, is a corner) of each place of a g x g grid, in reading order."""
    out = []
    for r, rw in enumerate(ROW_WORDS[g]):
        for c, cw in enumerate(COL_WORDS[g]):
            out.append(("middle" if rw == cw == "middle" else f"{rw}-{cw}", r, c, "middle" not in (rw, cw)))
    return out


_GRID_NAMES = {g: _grid_names(g) for g in ROW_WORDS}


def _grid(d: _Draws, numeric: bool, held: bool) -> Context | None:
    g = 2 if d.chance(0.6) else 3
    cat = "digit" if numeric else d.pick(WORD_CATEGORIES)
    vals = _values(d, _pool(d, cat, 3, 6), g * g, 0.3)
    places = _GRID_NAMES[g]
    if _heldout_bucket(content_key("grid", [(p[0], "", v) for p, v in zip(places, vals)])) != held:
        return None
    slots = tuple(_slot(name, "the " + name, _GRID_CORNER_REFS if corner else GRID_REFS,
                       {"name": name, "r": r + 1, "c": c + 1, "spaced": name.replace("-", " ")}, v, cat)
                  for (name, r, c, corner), v in zip(places, vals))
    mark = d.pick(EMPTY_MARKS)
    shown = [mark if v is None else v for v in vals]
    if d.chance(0.7):
        before, row, between, rows_between, after = d.pick(GRID_ROW_FORMATS)
        text = before + rows_between.join(row.format(r=r + 1, row=ROW_WORDS[g][r],
                                                     cells=between.join(shown[r * g:(r + 1) * g]))
                                          for r in range(g)) + after
    else:
        fmt = d.pick(GRID_PLACE_FORMATS)
        text = _join(fmt, [fmt[1].format(pos=s.name.replace("-", " "), v=v) for s, v in zip(slots, shown)])
        text = text[0].upper() + text[1:]          # a place word ("top", "the"), never an item
    return Context("grid", slots, text, *WHERE["grid"])


def _record(d: _Draws, numeric: bool, held: bool) -> Context | None:
    cat = d.pick(_NUMERIC) if numeric else d.pick(WORD_CATEGORIES)
    keys = d.sample(NAMES, 3 + d.below(3))
    vals = _values(d, CATEGORIES[cat] if numeric else _pool(d, cat, 2, 4), len(keys), 0.15)
    if _heldout_bucket(content_key("record", [(k, "", v) for k, v in zip(keys, vals)])) != held:
        return None
    topic, mark = d.pick(TOPICS[cat]), d.pick(EMPTY_MARKS[:4])
    slots = tuple(_slot(k, f"{k}'s {topic}", RECORD_REFS, {"k": k, "topic": topic}, v, cat) for k, v in zip(keys, vals))
    before, item, between, after = d.pick(RECORD_FORMATS)
    text = _join((before.format(topic=topic), item, between, after),
                 [item.format(k=k, v=mark if v is None else v, topic=topic) for k, v in zip(keys, vals)])
    return Context("record", slots, text, *WHERE["record"])


def _table(d: _Draws, numeric: bool, held: bool) -> Context | None:
    words = d.sample(WORD_CATEGORIES, 2)
    cats = [words[0], d.pick(_NUMERIC)] if numeric or d.chance(0.5) else words
    if d.chance(0.5):
        cats.reverse()
    cols = [d.pick(TOPICS[c]) for c in cats]
    keys = d.sample(NAMES, 2 + d.below(3))
    rows = [[None if d.chance(0.12) else d.pick(CATEGORIES[c]) for c in cats] for _ in keys]
    if _heldout_bucket(content_key("table", [(k, col, v) for k, row in zip(keys, rows)
                                             for col, v in zip(cols, row)])) != held:
        return None
    slots = tuple(_slot(k, f"{k}'s {col}", TABLE_REFS, {"k": k, "col": col, "r": r + 1}, v, cat, col)
                  for r, (k, row) in enumerate(zip(keys, rows)) for cat, col, v in zip(cats, cols, row))
    mark = d.pick(("-", "none"))
    shown = [[k] + [mark if v is None else v for v in row] for k, row in zip(keys, rows)]
    if d.chance(0.8):
        between, before, after = d.pick(TABLE_SEPARATORS)
        text = "\n".join(before + between.join(line) + after for line in [[d.pick(TABLE_KEY_HEADERS)] + cols] + shown)
    else:
        head, item, between, after = TABLE_PROSE
        text = " ".join(head.format(k=line[0]) + between.join(item.format(c=c, v=v) for c, v in zip(cols, line[1:]))
                        + after for line in shown)
    return Context("table", slots, text, *WHERE["table"])


_KINDS = ((0.3, _list), (0.6, _grid), (0.8, _record), (1.0, _table))   # cumulative shares


def _context(d: _Draws, stream: int, numeric: bool | None = None) -> Context:
    """A random context whose content-hash bucket belongs to ``stream`` (training or held out)."""
    want_heldout = stream == _HELDOUT
    while True:
        x = d.u()
        make = next(f for acc, f in _KINDS if x < acc)
        ctx = make(d, d.chance(0.6) if numeric is None else numeric, want_heldout)
        if ctx is not None:
            return ctx


# ---------------------------------------------------------------- questions

def _say(d: _Draws, group: str, **fields) -> str:
    return d.pick(PHRASINGS[group]).format(**fields)


def _counts(ctx: Context) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in ctx.slots:
        if s.value is not None:
            out[s.value] = out.get(s.value, 0) + 1
    return out


def _absent(d: _Draws, present, category: str) -> str | None:
    missing = [v for v in CATEGORIES[category] if v not in present]
    return d.pick(missing) if missing else None


def _member(d: _Draws, ctx: Context) -> Question | None:
    counts = _counts(ctx)
    x = d.pick(list(counts)) if d.chance(0.5) else _absent(d, counts, d.pick(ctx.slots).category)
    if x is None:
        return None
    text = _say(d, "member", x=x, where=ctx.where, thing=ctx.thing)
    return Question("member", text, "yes" if x in counts else "no", YES_NO, ("member", x), "member")


def _count(d: _Draws, ctx: Context) -> Question | None:
    counts, r = _counts(ctx), d.u()
    if r < 0.15 or (r < 0.25 and ctx.kind == "list"):
        text = _say(d, "count_filled", where=ctx.where)
        return Question("count", text, str(sum(counts.values())), COUNTS, ("count", "filled"), "count_filled")
    if r < 0.25:
        n = sum(s.value is None for s in ctx.slots)
        return Question("count", _say(d, "count_empty", where=ctx.where), str(n), COUNTS, ("count", "empty"),
                        "count_empty")
    # an item of a random filled place (so frequent items are asked more: counts spread) or an absent one
    x = d.pick([s.value for s in ctx.slots if s.value is not None]) if d.chance(0.75) else \
        _absent(d, counts, d.pick(ctx.slots).category)
    if x is None:
        return None
    text = _say(d, "count_item", x=x, where=ctx.where, thing=ctx.thing)
    return Question("count", text, str(counts.get(x, 0)), COUNTS, ("count", x), "count_item")


def _position(d: _Draws, ctx: Context) -> Question:
    i = d.below(len(ctx.slots))
    s = ctx.slots[i]
    text = _say(d, "position", ref=s.ref(d), thing=ctx.thing)
    return Question("position", text, s.value or EMPTY, _POSITION_CANDIDATES[s.category], ("position", i), "position")


def _sum(d: _Draws, ctx: Context) -> Question | None:
    idx = ctx.numeric()
    full = [i for i in idx if ctx.slots[i].value is not None]
    if not full:
        return None
    if len(full) >= 2 and d.chance(0.3):
        a, b = d.sample(full, 2)
        text = _say(d, "sum_pair", a=ctx.slots[a].ref(d), b=ctx.slots[b].ref(d))
        picked, group = (a, b), "sum_pair"
    else:
        col = ctx.slots[idx[0]].column
        text = _say(d, "sum_all", where=SUM_COLUMN.format(col=col) if col else ctx.where)
        picked, group = tuple(full), "sum_all"
    total = sum(int(ctx.slots[i].value) for i in picked)
    return Question("sum", text, str(total), SUMS, ("sum", picked), group)


def _compare(d: _Draws, ctx: Context) -> Question | None:
    """Two places' numbers, or (in a context without numbers) two items' frequencies."""
    full = [ctx.slots[i] for i in ctx.numeric() if ctx.slots[i].value is not None]
    if full:
        things = [(s.name, s.say, int(s.value)) for s in full]
        prefix = ""
    else:
        counts = _counts(ctx)
        things = [(v, v, n) for v, n in counts.items()]
        extra = _absent(d, counts, ctx.slots[0].category)
        if extra is not None and d.chance(0.3):
            things.append((extra, extra, 0))
        prefix = "freq_"
    if len(things) < 2:
        return None
    if d.chance(0.5):          # which of the two: a pair of different values, a few tries
        for _ in range(8):
            a, b = d.sample(things, 2)
            if a[2] != b[2]:
                break
        else:
            return None
        rel = d.pick(("more", "less"))
        group = (prefix or "which_") + rel
        win = a if (a[2] > b[2]) == (rel == "more") else b
        text = _say(d, group, a=a[1], b=b[1])
        return Question("compare", text, win[0], (a[0], b[0]), ("compare", "which", rel, a[0], b[0]), group)
    a, b = d.sample(things, 2)
    want = d.chance(0.5)       # yes or no first, then a relation of the pair that gives it
    if a[2] == b[2]:
        rel = "equal" if want else d.pick(("more", "less"))
    elif want:
        rel = "more" if a[2] > b[2] else "less"
    else:
        rel = "equal" if d.chance(0.25) else ("less" if a[2] > b[2] else "more")
    group = prefix + "is_" + rel
    text = _say(d, group, a=a[1], b=b[1])
    return Question("compare", text, "yes" if want else "no", YES_NO, ("compare", "is", rel, a[0], b[0]), group)


def _options(d: _Draws, answer: str, pool, prefer=()) -> list[str] | None:
    """Four distinct options, the answer at a uniformly random place; wrong ones from ``prefer`` first
    (items of the context itself, so that "the option that appears in the text" is no shortcut)."""
    first = [o for o in dict.fromkeys(prefer) if o != answer]
    first = d.sample(first, min(3, len(first)))
    rest = [o for o in pool if o != answer and o not in first]
    if len(first) + len(rest) < 3:
        return None
    opts = first + d.sample(rest, 3 - len(first))
    opts.insert(d.below(4), answer)
    return opts


def _near(answer: str, top: int) -> list[str]:
    """Numbers close to ``answer`` (plausible wrong counts and sums)."""
    n = int(answer)
    lo = max(0, min(n - 3, top - 6))
    return [str(i) for i in range(lo, min(top, lo + 6) + 1)]


def _choice(d: _Draws, ctx: Context) -> Question | None:
    for base in d.sample(CHOICE_BASES, len(CHOICE_BASES)):
        got = _choice_base(d, ctx, base)
        if got is not None:
            break
    else:
        return None
    question, answer, pool, inner, group = got
    prefer = ()
    if inner[0] == "position":
        prefer = [s.value or EMPTY for s in ctx.slots if s.category == ctx.slots[inner[1]].category]
    opts = _options(d, answer, pool, prefer)
    if opts is None:
        return None
    item, between = d.pick(OPTION_STYLES)
    listed = between.join(item.format(L=L, o=o) for L, o in zip(LETTERS, opts))
    instruction = d.pick(CHOICE_INSTRUCTIONS)
    text = f"{question}\n{listed}\n{instruction}" if d.chance(0.6) else f"{instruction}\n{question}\n{listed}"
    letter = LETTERS[opts.index(answer)]
    return Question("choice", text, letter, LETTERS, ("choice", inner, tuple(opts)), group)


def _choice_base(d: _Draws, ctx: Context, base: str):
    """(question, answer, option pool, structured query, phrasing group) of a multiple-choice base, or None."""
    if base in ("position", "count", "sum"):
        q = {"position": _position, "count": _count, "sum": _sum}[base](d, ctx)
        if q is None:
            return None
        pool = q.candidates if base == "position" else _near(q.answer, 9 if base == "count" else 100)
        return q.text, q.answer, pool, q.query, q.phrasing
    if base == "extreme":
        idx = [i for i in ctx.numeric() if ctx.slots[i].value is not None]
        if len(idx) < 4:
            return None
        four = d.sample(idx, 4)
        vals = [int(ctx.slots[i].value) for i in four]
        group = d.pick(("largest", "smallest"))
        best = max(vals) if group == "largest" else min(vals)
        if vals.count(best) > 1:
            return None
        win = ctx.slots[four[vals.index(best)]].name
        return _say(d, group), win, [ctx.slots[i].name for i in four], ("extreme", group, tuple(four)), group
    present = sorted(_counts(ctx))
    missing = [v for v in CATEGORIES[ctx.slots[0].category] if v not in present]
    group = d.pick(("one_present", "one_absent"))
    answer_from, pool = (present, missing) if group == "one_present" else (missing, present)
    if not answer_from or len(pool) < 3:
        return None
    answer = d.pick(answer_from)
    return _say(d, group, where=ctx.where), answer, pool, ("which_member", group == "one_present"), group


_MAKERS = {"member": _member, "count": _count, "position": _position, "sum": _sum, "compare": _compare,
           "choice": _choice}


# ---------------------------------------------------------------- samples

def _check(n: int, seed: int, skills) -> tuple[str, ...]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise UserError(f"text skills: the number of samples must be a whole number >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"text skills: the seed must be a whole number >= 0, got {seed!r}")
    skills = tuple(skills or SKILLS)
    for s in skills:
        if s not in SKILLS:
            raise one_of("text skill", s, SKILLS)
    return skills


def _first_turn(d: _Draws, ctx: Context, question: str) -> str:
    intro = d.pick(INTROS[ctx.kind]).replace("{n}", str(round(len(ctx.slots) ** 0.5)))
    return f"{intro}\n{ctx.text}\n{question}" if intro else f"{ctx.text}\n{question}"


def _conversation(d: _Draws, turns: int, skills) -> tuple[Context, list[Question]]:
    while True:
        ctx = _context(d, _TRAIN, True if skills == ("sum",) else None)
        qs: list[Question] = []
        order = d.sample(skills, len(skills))
        for attempt in range(3 * turns + len(skills)):
            if len(qs) == turns:
                break
            skill = order[attempt] if attempt < len(order) else d.pick(skills)
            q = _MAKERS[skill](d, ctx)
            if q is not None and all(q.text != o.text for o in qs):
                qs.append(q)
        if qs:
            return ctx, qs


def _conversations(n: int, seed: int, turns: int, skills) -> list[tuple[dict, Context, list[Question]]]:
    skills = _check(n, seed, skills)
    if turns < 1:
        raise UserError(f"text skills: turns must be at least 1, got {turns}")
    d, out = _Draws(int(seed), _TRAIN), []
    for i in range(n):
        ctx, qs = _conversation(d, turns, skills)
        conv = []
        for j, q in enumerate(qs):
            conv += [{"from": "human", "value": _first_turn(d, ctx, q.text) if j == 0 else q.text},
                     {"from": "gpt", "value": q.answer}]
        out.append(({"id": f"ts-{seed}-{i}", "conversations": conv, "type": "conversation"}, ctx, qs))
    return out


def _heldout(n: int, seed: int, skills) -> list[tuple[dict, Context, Question]]:
    skills = _check(n, seed, skills)
    d, out = _Draws(int(seed), _HELDOUT), []
    for i in range(n):
        skill = skills[i % len(skills)]
        q = None
        while q is None:
            ctx = _context(d, _HELDOUT, True if skill == "sum" else None)
            q = _MAKERS[skill](d, ctx)
        sample = {"id": f"ts-{seed}-heldout-{i}",
                  "conversations": [{"from": "human", "value": _first_turn(d, ctx, q.text)},
                                    {"from": "gpt", "value": q.answer}],
                  "type": skill, "candidates": list(q.candidates)}
        out.append((sample, ctx, q))
    return out


def generate(n: int, seed: int, turns: int = 4, skills: tuple[str, ...] | None = None) -> list[dict]:
    """``n`` training conversations (LLaVA JSON without ``image``): a context, then ``turns`` questions of
    distinct skills where the context allows. ``generate(m, seed)`` is a prefix of ``generate(n, seed)``, m < n."""
    return [s for s, _, _ in _conversations(n, seed, turns, skills)]


def heldout(n: int, seed: int, skills: tuple[str, ...] | None = None) -> list[dict]:
    """``n`` single-question evaluation samples, the skills in turn, each with ``type`` (its skill) and
    ``candidates`` (the finite answer set it is scored among). No context is ever one :func:`generate` uses."""
    return [s for s, _, _ in _heldout(n, seed, skills)]


_WORD = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def words(text: str) -> list[str]:
    """The words :func:`vocabulary` counts: runs of letters, runs of digits, single other symbols."""
    return _WORD.findall(text)


def vocabulary() -> list[str]:
    """Every word (see :func:`words`) the generator can emit, sorted."""
    texts = [EMPTY, *YES_NO, *LETTERS, *SUMS, *NAMES, *ORDINALS, *EMPTY_MARKS, *TABLE_KEY_HEADERS,
             *CHOICE_INSTRUCTIONS, *LIST_REFS, *LAST_REFS, *GRID_REFS, CORNER_REF, *RECORD_REFS, *TABLE_REFS,
             SUM_COLUMN, *(w for ws in WHERE.values() for w in ws), "x"]
    texts += [v for c in CATEGORIES.values() for v in c] + [t for ts in TOPICS.values() for t in ts]
    texts += [w for ws in (*ROW_WORDS.values(), *COL_WORDS.values()) for w in ws]
    texts += [t for ts in (*PHRASINGS.values(), *INTROS.values()) for t in ts]
    texts += [t for fmts in (LIST_FORMATS, GRID_ROW_FORMATS, GRID_PLACE_FORMATS, RECORD_FORMATS, TABLE_SEPARATORS,
                             (TABLE_PROSE,), OPTION_STYLES) for f in fmts for t in f]
    found = set()
    for t in texts:
        found.update(words(re.sub(r"\{\w+\}", " ", t)))
    found.update(("Top", "The"))   # grid prose, capitalised: "Top left = 4; ...", "The top left is 4, ..."
    return sorted(found)
