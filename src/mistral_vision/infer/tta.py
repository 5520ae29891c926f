"""Test-time augmentation: score each image in a few fixed views and average the label log-probabilities.

A view set is named in a registry (``eval.tta`` in the config, ``--tta`` on the CLI). Views are
applied to the pixel image before the task encodes it (ASCII rendering or the tower's image processor), like training augmentation, so a
model trained with ``train.augment_shift: 1`` has seen one-pixel translations. The prediction is
the class with the highest mean per-view log-probability (the softmax of that mean is the
recorded probability); with ``none`` it is the plain single-view score. Each view costs one more
scoring pass, so ``shift4`` predicts about 5x slower. Not for: which labels are scored
(``scorer.py``) or training-time augmentation (``data/augment.py``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import UserError
from ..data.augment import mirror_images, translate_images

View = Callable[[np.ndarray], np.ndarray]


def _identity(images: np.ndarray) -> np.ndarray:
    return images


def _shift(dy: int, dx: int) -> View:
    return lambda images: translate_images(images, dy, dx)


_AXES = [(0, 1), (0, -1), (1, 0), (-1, 0)]
_DIAGONALS = [(1, 1), (1, -1), (-1, 1), (-1, -1)]

# name -> (views, what it is); the first view is always the image itself.
TTA_VIEWS: dict[str, tuple[list[View], str]] = {
    "none": ([_identity], "the image only"),
    "shift4": ([_identity] + [_shift(*d) for d in _AXES], "the image and its 4 one-pixel shifts (up/down/left/right)"),
    "shift8": ([_identity] + [_shift(*d) for d in _AXES + _DIAGONALS], "the image and its 8 one-pixel shifts"),
    "flip": ([_identity, mirror_images], "the image and its left-right mirror (garments, not digits)"),
    "shift4-flip": ([_identity] + [_shift(*d) for d in _AXES] + [mirror_images], "shift4 plus the mirror"),
}


def tta_views(name: str) -> list[View]:
    """The views of view set ``name``; unknown names list the known ones."""
    if name not in TTA_VIEWS:
        raise UserError(f"unknown test-time augmentation {name!r}; known: {', '.join(TTA_VIEWS)}")
    return TTA_VIEWS[name][0]


def score_views(scorer, task, images: np.ndarray, views: list[View]):
    """(B, K) mean over views of each view's label log-probabilities (log-softmax over the K labels)."""
    import torch

    total = None
    for view in views:
        enc = task.encode(view(images))
        lp = torch.log_softmax(scorer.score(enc.ids, enc.extras), -1)
        total = lp if total is None else total + lp
    return total / len(views)
