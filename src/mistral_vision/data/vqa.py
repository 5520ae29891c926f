"""Synthetic visual question answering from MNIST / Fashion-MNIST: ``mnist-vqa`` and ``fashion-vqa``.

A canvas is a ``grid`` x ``grid`` board of 28-px cells; each cell holds one image of the base
dataset or stays empty (at least one is filled). Questions about it come in types, each with
several phrasings and a finite answer set (its ``candidates``), so every answer can be
label-scored:

- ``cell``: what is in a named cell (a class name, or ``empty``);
- ``count``: how many items; ``count_class``: how many of one class;
- ``present``: is a class there (yes / no, balanced);
- ``sum`` (digits): the sum of the digits; ``larger`` (digits): which of two named cells
  holds the larger digit;
- ``mc``: one of the above as a ScienceQA-style multiple choice, ``Options: (A) ... (B) ...``
  and "Answer with the option's letter from the given choices directly."; the answer is a letter;
- ``caption``: the stage-1 alignment text, every cell's content in reading order (free-form:
  generated greedily and compared after normalisation).

Everything is drawn from ``np.random.default_rng([seed, split])``, so a split is the same on
every machine. Train canvases use only the train images, valid only the validation
carve-out, test only the official t10k images: no image crosses splits. Training
conversations are multi-turn (several questions about one canvas, every answer trained);
evaluation questions are single-turn, one record each. Not for: files (``vqa_files.py``
writes the LLaVA JSON and image folder) or scoring.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError, one_of

CELL = 28
EMPTY = "empty"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
LETTERS = "ABCDE"


@dataclass(frozen=True)
class VqaSpec:
    name: str
    base: str                 # the classification dataset the cells come from
    digits: bool              # sum / larger questions make sense
    noun: str                 # what a cell holds, in questions


VQA_DATASETS = {s.name: s for s in [
    VqaSpec("mnist-vqa", "mnist", True, "digit"),
    VqaSpec("fashion-vqa", "fashion-mnist", False, "item"),
]}

QUESTION_TYPES = ("cell", "count", "count_class", "present", "sum", "larger", "mc", "caption")
DIGIT_TYPES = ("sum", "larger")
MC_BASES = ("cell", "count", "count_class", "sum")

PHRASINGS = {
    "cell": ("What is in the {cell} cell?", "What does the {cell} cell show?", "Name what the {cell} cell holds.",
             "Which {noun} is in the {cell} cell?"),
    "count": ("How many {noun}s are in the image?", "How many cells are filled?", "Count the {noun}s in the picture.",
              "How many of the cells hold a {noun}?"),
    "count_class": ("How many cells show a {cls}?", "How many times does {cls} appear?", "Count the {cls} {noun}s.",
                    "How many {noun}s are a {cls}?"),
    "present": ("Is there a {cls} in the image?", "Does the image contain a {cls}?", "Can you see a {cls}?",
                "Does any cell show a {cls}?"),
    "sum": ("What is the sum of the digits?", "Add up all the digits. What is the total?",
            "What do the digits add up to?", "What is the total of the digits shown?"),
    "larger": ("Which holds the larger digit, the {a} cell or the {b} cell?",
               "Is the digit in the {a} cell or the one in the {b} cell larger?",
               "Which cell has the bigger digit: {a} or {b}?"),
    "caption": ("Describe the image.", "List what each cell holds.", "What is in each cell?",
                "Give a short description of the picture."),
}


def get_vqa(name: str) -> VqaSpec:
    if name not in VQA_DATASETS:
        from .datasets import DATASETS
        from .textskills import TEXT_DATASETS

        raise one_of("dataset", name, list(DATASETS) + list(VQA_DATASETS) + list(TEXT_DATASETS))
    return VQA_DATASETS[name]


def is_vqa(name: str) -> bool:
    return name in VQA_DATASETS


def cell_names(grid: int) -> list[str]:
    rows = {1: ["middle"], 2: ["top", "bottom"], 3: ["top", "middle", "bottom"]}
    cols = {1: ["center"], 2: ["left", "right"], 3: ["left", "center", "right"]}
    if grid not in rows:
        raise UserError(f"config data.grid {grid}: 1, 2 or 3 cells per side")
    return [f"{r}-{c}" if grid > 1 else "middle" for r in rows[grid] for c in cols[grid]]


def check_types(types, spec: VqaSpec) -> tuple[str, ...]:
    types = tuple(types or QUESTION_TYPES)
    for t in types:
        if t not in QUESTION_TYPES:
            raise one_of("question type", t, QUESTION_TYPES)
    return tuple(t for t in types if spec.digits or t not in DIGIT_TYPES)


@dataclass
class Canvas:
    image: np.ndarray          # (grid*28, grid*28) uint8
    cells: list[int]           # class id per cell, -1 empty


@dataclass
class Question:
    canvas: int                # row of the canvas in the split's images
    type: str
    question: str
    answer: str
    candidates: tuple[str, ...]
    base_type: str | None = None   # the question type an ``mc`` question asks in letters


@dataclass
class VqaSplit:
    """A split's canvases plus its questions: single-turn for evaluation, multi-turn conversations for training."""

    name: str
    spec: VqaSpec
    grid: int
    images: np.ndarray                     # (N, S, S) canvases
    cells: np.ndarray                      # (N, grid*grid) class id per cell, -1 empty
    label_names: tuple[str, ...]
    questions: list[Question] = field(default_factory=list)          # evaluation questions
    conversations: list[list[Question]] = field(default_factory=list)  # training: turns about one canvas


def make_canvases(rng, images: np.ndarray, labels: np.ndarray, n: int, grid: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(canvases, cells): ``n`` boards, each cell filled with probability ``fill`` (at least one per board)."""
    k = grid * grid
    filled = rng.random((n, k)) < fill
    none = ~filled.any(1)
    filled[none, rng.integers(0, k, none.sum())] = True
    picks = rng.integers(0, len(images), (n, k))
    side = grid * CELL
    out = np.zeros((n, side, side), np.uint8)
    cells = np.where(filled, labels[picks], -1)
    for c in range(k):
        r, q = divmod(c, grid)
        rows = np.flatnonzero(filled[:, c])
        out[rows, r * CELL:(r + 1) * CELL, q * CELL:(q + 1) * CELL] = images[picks[rows, c]]
    return out, cells


class QuestionMaker:
    """Draws questions of each type about one canvas, with its answer and candidate answers."""

    def __init__(self, spec: VqaSpec, label_names, grid: int):
        self.spec, self.names, self.grid = spec, tuple(label_names), grid
        self.cells = cell_names(grid)
        k = grid * grid
        self.candidates = {
            "cell": self.names + (EMPTY,), "count": tuple(str(i) for i in range(k + 1)),
            "count_class": tuple(str(i) for i in range(k + 1)), "present": ("yes", "no"),
            "sum": tuple(str(i) for i in range(9 * k + 1)), "larger": tuple(self.cells),
        }

    def _fmt(self, rng, kind: str, **kw) -> str:
        options = PHRASINGS[kind]
        return options[rng.integers(len(options))].format(noun=self.spec.noun, **kw)

    def caption(self, cells) -> str:
        return ", ".join(f"{c}: {self.names[v] if v >= 0 else EMPTY}" for c, v in zip(self.cells, cells)) + "."

    def ask(self, rng, kind: str, cells) -> tuple[str, str] | None:
        """(question, answer) of type ``kind`` about a canvas, or None where the type does not apply."""
        cells = [int(v) for v in cells]
        present = sorted({v for v in cells if v >= 0})
        if kind == "cell":
            i = int(rng.integers(len(cells)))
            return self._fmt(rng, kind, cell=self.cells[i]), self.names[cells[i]] if cells[i] >= 0 else EMPTY
        if kind == "count":
            return self._fmt(rng, kind), str(sum(v >= 0 for v in cells))
        if kind in ("count_class", "present"):
            # half the time a class that is there, so that "0" / "no" do not dominate
            cls = int(rng.choice(present)) if rng.random() < 0.5 else int(rng.integers(len(self.names)))
            q = self._fmt(rng, kind, cls=self.names[cls])
            n = sum(v == cls for v in cells)
            return q, (str(n) if kind == "count_class" else ("yes" if n else "no"))
        if kind == "sum":
            return self._fmt(rng, kind), str(sum(v for v in cells if v >= 0))
        if kind == "larger":
            full = [i for i, v in enumerate(cells) if v >= 0]
            pairs = [(a, b) for a in full for b in full if a != b and cells[a] != cells[b]]
            if not pairs:
                return None
            a, b = pairs[int(rng.integers(len(pairs)))]
            return (self._fmt(rng, kind, a=self.cells[a], b=self.cells[b]),
                    self.cells[a] if cells[a] > cells[b] else self.cells[b])
        if kind == "caption":
            return self._fmt(rng, kind), self.caption(cells)
        raise one_of("question type", kind, QUESTION_TYPES)

    def multiple_choice(self, rng, base: str, cells, n_options: int = 4) -> tuple[str, str, tuple[str, ...]] | None:
        """ScienceQA's form of a ``base`` question: lettered options, the answer a letter."""
        got = self.ask(rng, base, cells)
        if got is None:
            return None
        q, a = got
        pool = [c for c in self.candidates[base] if c != a]
        k = min(n_options, len(pool) + 1)
        opts = [a] + [pool[i] for i in rng.choice(len(pool), k - 1, replace=False)]
        opts = [opts[i] for i in rng.permutation(k)]
        letters = tuple(LETTERS[:k])
        text = (f"Question: {q}\nOptions: " + " ".join(f"({L}) {o}" for L, o in zip(letters, opts))
                + f"\n{MC_INSTRUCTION}")
        return text, letters[opts.index(a)], letters

    def question(self, rng, kind: str, canvas: int, cells) -> Question | None:
        if kind == "mc":
            bases = [b for b in MC_BASES if self.spec.digits or b not in DIGIT_TYPES]
            base = bases[int(rng.integers(len(bases)))]
            got = self.multiple_choice(rng, base, cells)
            return None if got is None else Question(canvas, "mc", got[0], got[1], got[2], base)
        got = self.ask(rng, kind, cells)
        if got is None:
            return None
        cand = () if kind == "caption" else self.candidates[kind]
        return Question(canvas, kind, got[0], got[1], cand)


def generate_split(spec: VqaSpec, base_images: np.ndarray, base_labels: np.ndarray, label_names, split: str,
                   n_canvases: int, seed: int = 0, grid: int = 2, fill: float = 0.75, types=None,
                   questions_per_canvas: int = 3, turns: int = 4) -> VqaSplit:
    """A split: ``n_canvases`` boards from ``base_images``; evaluation questions cycle through the types
    (``questions_per_canvas`` each board), training conversations hold ``turns`` questions of distinct types."""
    types = check_types(types, spec)
    if n_canvases < 1:
        raise UserError(f"{spec.name} {split}: the number of canvases must be at least 1, got {n_canvases}")
    rng = np.random.default_rng([seed, ("train", "valid", "test").index(split) if split in ("train", "valid", "test") else 9])
    images, cells = make_canvases(rng, base_images, np.asarray(base_labels), n_canvases, grid, fill)
    maker = QuestionMaker(spec, label_names, grid)
    out = VqaSplit(f"{spec.name}-{split}", spec, grid, images, cells, tuple(label_names))
    qtypes = [t for t in types if t != "caption"] or list(types)
    slot = 0
    for i in range(n_canvases):
        if split == "train":
            picks = [qtypes[j] for j in rng.permutation(len(qtypes))[:turns]]
            conv = [q for q in (maker.question(rng, t, i, cells[i]) for t in picks) if q is not None]
            if "caption" in types:
                out.conversations.append([maker.question(rng, "caption", i, cells[i])])   # stage 1: align
            if conv:
                out.conversations.append(conv)
        else:
            for _ in range(questions_per_canvas):
                for _attempt in range(len(types)):     # a type that does not apply moves on to the next
                    q = maker.question(rng, types[slot % len(types)], i, cells[i])
                    slot += 1
                    if q is not None:
                        out.questions.append(q)
                        break
    return out
