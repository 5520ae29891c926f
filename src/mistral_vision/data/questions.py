"""Question sets: images plus conversations about them, from the synthetic VQA sets or a LLaVA JSON file.

Both routes train and evaluate on the same :class:`QuestionSet`. An item is one conversation:
its turns (``human`` text may hold the ``<image>`` placeholder), the image it is about (a row
of ``images``, or -1 for text-only), its question type and, where the answer set is finite,
the candidate answers that scoring ranks (None: free-form, generated). Training uses every
assistant turn; evaluation asks the last human turn and compares with the last gpt turn.

A LLaVA JSON sample's type is its own ``type`` key if it has one, ``multiple-choice`` when its
question has lettered options (then the candidates are the letters), else ``open``.
Not for: drawing the synthetic questions (``vqa.py``) or reading / checking JSON (``llava_json.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .llava_json import IMAGE_PLACEHOLDER as IMAGE

IN_MEMORY = 50_000      # LLaVA JSON images read up front (more: read per batch)


@dataclass
class Item:
    id: str
    image: int                                # row in the set's images, -1: text-only
    turns: list[tuple[str, str]]              # ("human" | "gpt", text)
    type: str
    candidates: tuple[str, ...] | None = None  # finite answer set (scored), None: free-form (generated)
    answer: str | None = None                 # the reference answer as compared (a letter for multiple choice)

    @property
    def question(self) -> str:
        """The last human turn without the image placeholder."""
        from .llava_json import question_text

        return question_text(self.turns)


class LazyImages:
    """Images of a LLaVA JSON file, read from the image folder when used (a 558k-image pretraining set does
    not fit in memory); indexing with a slice or a list gives a list."""

    def __init__(self, folder, paths: list[str]):
        self.folder, self.paths = folder, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        from .llava_json import load_image

        if isinstance(i, slice):
            return [load_image(self.folder, p) for p in self.paths[i]]
        return load_image(self.folder, self.paths[int(i)])

    def append(self, path: str) -> None:
        self.paths.append(path)


@dataclass
class QuestionSet:
    name: str
    images: list                              # np.ndarray per image: (H, W) uint8 gray or (H, W, 3) RGB
    items: list[Item] = field(default_factory=list)
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, n: int | None) -> "QuestionSet":
        if n is None or n >= len(self.items):
            return self
        return QuestionSet(self.name, self.images, self.items[:n], self.label_names)

    def select(self, which: str | None) -> "QuestionSet":
        """Items of a stage's data selector: None / ``all``, ``captions`` or ``questions``."""
        if which in (None, "all"):
            return self
        if which not in ("captions", "questions"):
            raise UserError(f"stage data {which!r}: known: all, captions, questions, or a LLaVA JSON path")
        keep = [it for it in self.items if (it.type == "caption") == (which == "captions")]
        if not keep:
            raise UserError(f"{self.name}: no {which} to train on (check data.question_types)")
        return QuestionSet(self.name, self.images, keep, self.label_names)


def from_vqa(split, with_conversations: bool) -> QuestionSet:
    """A synthetic VQA split (``vqa.VqaSplit``) as a question set: its training conversations, or its questions."""
    qs = QuestionSet(split.name, list(split.images), [], split.label_names)
    if with_conversations:
        for j, conv in enumerate(split.conversations):
            turns = []
            for k, q in enumerate(conv):
                turns += [("human", (IMAGE + "\n" if k == 0 else "") + q.question), ("gpt", q.answer)]
            kind = conv[0].type if len(conv) == 1 else "conversation"
            qs.items.append(Item(f"{split.name}-c{j}", conv[0].canvas, turns, kind, None, conv[-1].answer))
    else:
        for j, q in enumerate(split.questions):
            qs.items.append(Item(f"{split.name}-q{j}", q.canvas, [("human", IMAGE + "\n" + q.question), ("gpt", q.answer)],
                                 q.type, q.candidates or None, q.answer))
    return qs


def from_samples(samples: list[dict], name: str) -> QuestionSet:
    """A text-only question set from LLaVA-JSON-shaped samples made in memory (generated text, a chat file's
    conversations): ``type`` (default ``open``) and ``candidates`` keys as in a file."""
    qs = QuestionSet(name, [])
    for s in samples:
        turns = [(t["from"], t["value"]) for t in s["conversations"]]
        answer = turns[-1][1] if turns and turns[-1][0] == "gpt" else None
        cands = tuple(str(c) for c in s["candidates"]) if s.get("candidates") else None
        qs.items.append(Item(str(s["id"]), -1, turns, str(s.get("type", "open")), cands, answer))
    return qs


def vqa_json_samples(split, with_conversations: bool, image_name) -> list[dict]:
    """LLaVA JSON samples of a synthetic split (``image_name(row)`` -> the path in the image folder)."""
    qs = from_vqa(split, with_conversations)
    out = []
    for it in qs.items:
        s = {"id": it.id, "image": image_name(it.image),
             "conversations": [{"from": r, "value": t} for r, t in it.turns], "type": it.type}
        if it.candidates:
            s["candidates"] = list(it.candidates)
        out.append(s)
    return out


def from_llava_json(path, image_folder=None, name: str | None = None, in_memory: bool | None = None) -> QuestionSet:
    """A LLaVA JSON file (checked first: one line for the first bad sample) and its images: read once into
    memory when there are at most ``IN_MEMORY`` of them (or ``in_memory``), else read when used."""
    from .sqa import check_options, parse_options, truth_letter
    from .llava_json import load_image, load_llava_json

    samples = load_llava_json(path, image_folder)
    qs = QuestionSet(name or Path(path).stem, LazyImages(image_folder, []))
    rows: dict[str, int] = {}
    for s in samples:
        row = -1
        if s.image is not None:
            if s.image not in rows:
                rows[s.image] = len(qs.images)
                qs.images.append(s.image)
            row = rows[s.image]
        item = Item(str(s.id), row, list(s.turns), str(s.extra.get("type", "open")))
        answer = s.turns[-1][1] if s.turns and s.turns[-1][0] == "gpt" else None
        question = item.question
        options = parse_options(question)
        if "candidates" in s.extra:
            item.candidates = tuple(str(c) for c in s.extra["candidates"])
            item.answer = answer
        else:
            check_options(question, s.index, s.id)
            if options:
                letters = [L for L, _ in options]
                item.type = str(s.extra.get("type", "multiple-choice"))
                item.candidates = tuple(letters)
                item.answer = truth_letter(answer, letters) if answer is not None else None
                if answer is not None and item.answer is None:
                    raise UserError(f"{path}: sample {s.index} (id {s.id!r}): the answer {answer[:40]!r} names none "
                                    f"of the options {', '.join(letters)}")
            else:
                item.answer = answer
        qs.items.append(item)
    if in_memory if in_memory is not None else len(qs.images) <= IN_MEMORY:
        qs.images = [load_image(image_folder, p) for p in qs.images.paths]
    return qs


def vqa_split(d, split: str):
    """The synthetic VQA split of data config ``d`` (canvases from the base dataset's images of that split)."""
    from .datasets import load_split
    from .vqa import generate_split, get_vqa

    spec = get_vqa(d.dataset)
    base = load_split(spec.base, split, d.data_dir, d.offline, d.valid_size, d.split_seed)
    n = {"train": d.train_canvases, "valid": d.valid_canvases, "test": d.test_canvases}[split]
    return generate_split(spec, base.images, base.labels, base.label_names, split, n, d.vqa_seed, d.grid, d.fill,
                          d.question_types, d.questions_per_canvas, d.turns)
