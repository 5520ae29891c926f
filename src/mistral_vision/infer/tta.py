"""Test-time augmentation: score each image in a few fixed views and average the label log-probabilities.

A view set is named in a registry (``data/augment.py``: ``eval.tta`` in the config, ``--tta`` on
the CLI). Views are applied to the pixel image before the task encodes it (ASCII rendering or
the tower's image processor), like training augmentation, so a
model trained with ``train.augment_shift: 1`` has seen one-pixel translations. The prediction is
the class with the highest mean per-view log-probability (the softmax of that mean is the
recorded probability); with ``none`` it is the plain single-view score. Each view costs one more
scoring pass, so ``shift4`` predicts about 5x slower. Not for: which labels are scored
(``scorer.py``) or training-time augmentation (``data/augment.py``).
"""
from __future__ import annotations

import numpy as np

from ..data.augment import View


def score_views(scorer, task, images: np.ndarray, views: list[View]):
    """(B, K) mean over views of each view's label log-probabilities (log-softmax over the K labels)."""
    import torch

    total = None
    for view in views:
        enc = task.encode(view(images))
        lp = torch.log_softmax(scorer.score(enc.ids, enc.extras), -1)
        total = lp if total is None else total + lp
    return total / len(views)
