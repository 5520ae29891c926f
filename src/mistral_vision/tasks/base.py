"""What every task gives the rest of the code: the task protocol and the encoded batch.

A task sits between "a batch of images" and "tensors a model eats": it knows the class
names and each class's answer tokens, turns images into prompt ids (plus ``pixel_values``
for the LLaVA route), builds training examples whose labels keep only the answer, exports
chat / LLaVA-format messages, and shows what the model saw. Training, label scoring,
prediction, evaluation and the report talk to this protocol only, so they never branch on
the route. Not for: the models themselves (``models/``) or files (``data/``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Encoded:
    """Prompts of a batch: token ids per sample, plus batch-first tensors (``pixel_values``)."""

    ids: list[list[int]]
    extras: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, idx) -> "Encoded":
        idx = np.asarray(idx)
        return Encoded([self.ids[i] for i in idx.tolist()], {k: v[idx] for k, v in self.extras.items()})


@dataclass
class Examples:
    """Training examples: (input ids, labels masked to the answer) per sample, plus batch-first extras.

    ``lazy`` extras are made per batch from their source rows (``name -> (rows, make)``): a
    7B recipe's 336-px pixel values for a whole split would not fit in memory. With
    ``image_of`` (conversations about shared images) extras are per image, not per sample:
    sample i uses image ``image_of[i]``, -1 none (text-only samples add no rows).
    """

    pairs: list[tuple[list[int], list[int]]]
    extras: dict = field(default_factory=dict)
    lazy: dict = field(default_factory=dict)
    image_of: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, idx, pad_id: int) -> dict:
        from .batch import collate

        idx = np.asarray(idx)
        rows = idx if self.image_of is None else self.image_of[idx]
        rows = rows[rows >= 0]
        extras = {k: v[rows] for k, v in self.extras.items()}
        extras.update({k: make(take_rows(src, rows)) for k, (src, make) in self.lazy.items()})
        return collate([self.pairs[i] for i in idx.tolist()], pad_id, extras)


def take_rows(images, rows):
    """Rows of an image array, or items of a list of differently sized images."""
    if isinstance(images, np.ndarray):
        return images[rows]
    return [images[i] for i in np.asarray(rows).tolist()]


@dataclass
class Seen:
    """What the model saw of one image, for galleries: a picture, and the text it read (ASCII) if any."""

    image: np.ndarray
    text: str | None = None


class Task(Protocol):
    label_names: tuple[str, ...]
    label_ids: list[list[int]]      # each class's answer tokens (+ EOS), as the chat template writes them
    pad_id: int
    eos_id: int | None
    seen_title: str                 # the title over each "seen" picture

    def encode(self, images: np.ndarray) -> Encoded: ...

    def examples(self, images: np.ndarray, labels: np.ndarray) -> Examples: ...

    def messages(self, image: np.ndarray, answer: str | None = None) -> list[dict]: ...

    def seen(self, images: np.ndarray) -> list[Seen]: ...

    def chat_inputs(self, image: np.ndarray, question: str) -> Encoded: ...
