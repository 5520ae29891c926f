"""Greedy k-center and k-means on embeddings, vectorised in torch, the same on every machine.

Distances are computed in float64 (``|x|^2 - 2 x.c + |c|^2``, one matrix product per step) and
compared after rounding to float32: a BLAS on another CPU sums in another order, which moves a
float64 distance by ~1e-16 relative, far below float32's step, so a comparison only changes where
two distances are equal to 7 digits - and then, as with exact ties, the earlier pool item wins
(``argmax`` / ``argmin`` return the first). Centroid sums use ``index_add_`` (a fixed order on CPU).
Written by hand: scikit-learn is not a dependency, and its k-means (threads, float sums) promises no
bit-identical result. Not for: choosing which items a method keeps (``methods.py``).
"""
from __future__ import annotations

import math

import numpy as np


def _sq_norms(x):
    return (x * x).sum(1)


def greedy_kcenter(x, k: int, first: int) -> tuple[list[int], list[float | None]]:
    """Rows of ``x`` [N, d] chosen by greedy k-center (each next row the farthest from those chosen),
    starting at row ``first``; with each row's distance to the chosen set when it was chosen (None: the first).

    Exactly the float64 algorithm, at about float32's cost: each step's distances are first computed in
    float32 (half the bytes to stream), with a bound on their rounding error; only the rows whose float32
    distance could be below their current nearest one (few, once some centers are chosen) are recomputed in
    float64, so every stored distance is a float64 one and the others are certified unchanged."""
    import torch

    x64 = torch.as_tensor(x).to(torch.float64).contiguous()
    x32 = x64.to(torch.float32)
    sq64, sq32 = _sq_norms(x64), _sq_norms(x64).to(torch.float32)
    n, dim = x64.shape
    # |float32 distance - exact| <= slack * (|x|^2 + |c|^2): the dot product's (dim terms) and the rounding of
    # x, |x|^2 and |c|^2 to float32, each within 2^-24 relative; doubled for safety.
    slack = 2.0 * (dim + 8) * 2.0 ** -24
    low32 = sq32 * (1.0 - slack)                             # |x|^2 less its share of the error bound
    nearest = torch.full((n,), math.inf, dtype=torch.float64)
    chosen, radius = [int(first)], [None]
    c = int(first)
    for _ in range(k - 1):
        # a lower bound of each row's float64 distance to c: |x|^2 - 2 x.c + |c|^2 less the error bound
        low = torch.addmv(low32, x32, x32[c], alpha=-2.0).to(torch.float64) + float(sq32[c]) * (1.0 - slack)
        rows = torch.nonzero(low < nearest).squeeze(1)
        if len(rows) > n // 2:
            d = (sq64 - 2.0 * (x64 @ x64[c]) + sq64[c]).clamp_min_(0.0)
            torch.minimum(nearest, d, out=nearest)
        elif len(rows):
            d = (sq64[rows] - 2.0 * (x64[rows] @ x64[c]) + sq64[c]).clamp_min_(0.0)
            nearest[rows] = torch.minimum(nearest[rows], d)
        nearest[c] = -1.0                                   # never chosen twice, even among duplicates
        c = int(torch.argmax(nearest.to(torch.float32)))
        chosen.append(c)
        radius.append(math.sqrt(max(float(nearest[c]), 0.0)))
    return chosen, radius


def greedy_kcenter_float64(x, k: int, first: int) -> tuple[list[int], list[float | None]]:
    """The plain float64 greedy k-center that ``greedy_kcenter`` reproduces (kept as its reference)."""
    import torch

    x = torch.as_tensor(x).to(torch.float64).contiguous()
    sq = _sq_norms(x)
    nearest = torch.full((x.shape[0],), math.inf, dtype=torch.float64)
    chosen, radius = [int(first)], [None]
    c = int(first)
    for _ in range(k - 1):
        torch.minimum(nearest, (sq - 2.0 * (x @ x[c]) + sq[c]).clamp_min_(0.0), out=nearest)
        nearest[c] = -1.0
        c = int(torch.argmax(nearest.to(torch.float32)))
        chosen.append(c)
        radius.append(math.sqrt(max(float(nearest[c]), 0.0)))
    return chosen, radius


def _distances(x, sq, centers):
    """Squared distances [N, k] from every row to every center, float64."""
    return (sq[:, None] - 2.0 * (x @ centers.T) + _sq_norms(centers)[None, :]).clamp_min_(0.0)


def kmeans(x, k: int, seed: int, iters: int = 25):
    """Lloyd's k-means with k-means++ seeding drawn from ``np.random.default_rng(seed)``.

    Returns (labels [N] int64, distance of each row to its center [N] float64), stopping when no label
    changes or after ``iters`` updates. A cluster that empties keeps its last center."""
    import torch

    x = torch.as_tensor(x).to(torch.float64).contiguous()
    n = x.shape[0]
    k = min(k, n)
    sq = _sq_norms(x)
    rng = np.random.default_rng(seed)
    picks = [int(rng.integers(n))]
    nearest = (sq - 2.0 * (x @ x[picks[0]]) + sq[picks[0]]).clamp_min_(0.0)
    for _ in range(1, k):                                   # k-means++: the next center with chance ~ D^2
        w = nearest.numpy()
        cum = np.cumsum(w)
        if cum[-1] <= 0:                                    # every row sits on a center: take the first free one
            free = np.setdiff1d(np.arange(n), picks)
            c = int(free[0])
        else:
            c = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
        picks.append(c)
        torch.minimum(nearest, (sq - 2.0 * (x @ x[c]) + sq[c]).clamp_min_(0.0), out=nearest)
    centers = x[picks].clone()
    labels = None
    for _ in range(iters + 1):
        new = torch.argmin(_distances(x, sq, centers).to(torch.float32), dim=1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centers).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        full = counts > 0
        centers[full] = sums[full] / counts[full, None].to(torch.float64)
    d = _distances(x, sq, centers)
    return labels, d[torch.arange(n), labels].sqrt()
