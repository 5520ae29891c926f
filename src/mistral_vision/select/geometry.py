"""Greedy k-center and k-means on embeddings, vectorised in torch, the same on every machine.

Distances are computed in float64 (``|x|^2 - 2 x.c + |c|^2``; for k-center each dot product summed along
its row, so a row's value never depends on which other rows were computed with it) and
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


_BLOCK_BYTES = 1 << 22          # rows gathered per block: ~4 MB, still in cache when multiplied and summed


def _dots(x, rows, c, exact: bool):
    """Dot products of rows ``rows`` of ``x`` with row ``c``, gathered a block at a time (one read of each row
    instead of a gathered copy written, then read again).

    ``exact``: each row's products summed along the row, so its value depends on the two rows only (MKL's
    gemv gives a row another last bit by its place in a block of 4, i.e. by which rows came with it);
    otherwise a matrix-vector product (the float32 screen, which only needs its error bound)."""
    import torch

    out, v = torch.empty(len(rows), dtype=x.dtype), x[c]
    size = max(1, _BLOCK_BYTES // (x.element_size() * max(x.shape[1], 1)))
    for start in range(0, len(rows), size):
        part = x.index_select(0, rows[start:start + size])
        if exact:
            torch.sum(part.mul_(v), 1, out=out[start:start + size])
        else:
            torch.mv(part, v, out=out[start:start + size])
    return out


def _sq_distances(x, sq, rows, c):
    """Squared float64 distances from rows ``rows`` of ``x`` to row ``c``: ``|x|^2 - 2 x.c + |c|^2``, each
    row's value independent of the others computed with it (``_dots``), so skipping rows changes no value."""
    return (sq.index_select(0, rows) - 2.0 * _dots(x, rows, c, exact=True) + sq[c]).clamp_min_(0.0)


def _skip_bound(nearest, err: float):
    """The squared center-to-center distance from which a row at squared distance ``nearest`` (float64, error
    ``err``) from its center provably gets no nearer to a new center.

    With u = sqrt(nearest + err) >= the row's true distance t to its center j, a new center c with
    true |c - c_j| >= u + sqrt(u^2 + 2 err) is, by the triangle inequality, at true distance >= sqrt(u^2 + 2 err)
    from the row, so its computed squared distance is >= nearest + err: at least the current one, which
    ``minimum`` would keep. The computed |c - c_j|^2 is within err of the true one, hence the added err; the
    relative 1e-9 covers the few roundings (2^-53 each) in evaluating this bound itself."""
    u2 = nearest + err
    u = u2.sqrt()
    return ((u + (u2 + 2.0 * err).sqrt()) ** 2 + err) * (1.0 + 1e-9)


def greedy_kcenter(x, k: int, first: int) -> tuple[list[int], list[float | None]]:
    """Rows of ``x`` [N, d] chosen by greedy k-center (each next row the farthest from those chosen),
    starting at row ``first``; with each row's distance to the chosen set when it was chosen (None: the first).

    Exactly the plain float64 algorithm (every step computes every row's distance to the new center and keeps
    the minimum), at a fraction of its cost, by computing only the distances that can change:

    - triangle-inequality pruning (Elkan's lemma, as in fast farthest-point sampling): each row remembers the
      center it is nearest to; a new center c can only bring a row nearer if |c - c_j| < 2 |row - c_j|, so rows
      whose center is far enough from c (``_skip_bound``, with a margin for float64 rounding) are skipped; the
      test costs one comparison per row and the distances between centers, no pass over the embeddings;
    - a float32 screen of the rows left: a float32 distance less its rounding bound (2 (d + 8) 2^-24 of
      |x|^2 + |c|^2, doubled) that is not below a row's current distance rules the row out. When the pruning
      leaves more than a quarter of the rows (spread-out data such as random 128-d points, the first steps),
      the screen is one float32 pass over all rows, as before the pruning, and the pruning is tried again
      after 2, 4, then every 8 steps while it stays idle;
    - the rows left get their float64 distance (``_sq_distances``), the same value the plain algorithm computes.

    Rows ruled out are exactly those whose minimum the plain algorithm leaves unchanged, so chosen rows and
    distances are bit for bit the plain algorithm's (tests/select/test_kcenter.py keeps it as the reference)."""
    import torch

    x64 = torch.as_tensor(x).to(torch.float64).contiguous()
    n, dim = x64.shape
    sq64 = _sq_norms(x64)
    x32, sq32 = x64.to(torch.float32), sq64.to(torch.float32)
    # |computed squared distance - exact| <= (2 d + 4) 2^-53 (|x|^2 + |c|^2) in any summation order (the norms,
    # the dot product, the two sums); taken as 2 (2 d + 8) 2^-53, with |x|^2 + |c|^2 <= twice the largest norm
    err = 2.0 * (2 * dim + 8) * 2.0 ** -53 * 2.0 * float(sq64.max()) if n else 0.0
    slack = 2.0 * (dim + 8) * 2.0 ** -24                     # the same for float32, per |x|^2 + |c|^2
    low32 = sq32 * (1.0 - slack)                             # |x|^2 less its share of the error bound
    nearest = torch.full((n,), math.inf, dtype=torch.float64)
    near32 = torch.full((n,), math.inf, dtype=torch.float32)  # nearest rounded, for argmax's comparisons
    skip_at = torch.full((n,), math.inf, dtype=torch.float64)  # skip a row when its center is this far from c
    owner = torch.zeros(n, dtype=torch.int64)                  # the step whose center each row is nearest to
    centers = torch.empty(max(k - 1, 0), dim, dtype=torch.float64)  # the chosen rows, then their norms
    center_sq = torch.empty(max(k - 1, 0), dtype=torch.float64)
    chosen, radius = [int(first)], [None]
    c, wait, prune_at = int(first), 1, 0
    for step in range(k - 1):
        centers[step], center_sq[step] = x64[c], sq64[c]
        low_c = float(sq32[c]) * (1.0 - slack)
        maybe = None
        if step >= prune_at:
            apart = center_sq[: step + 1] - 2.0 * (centers[: step + 1] @ x64[c]) + sq64[c]   # each within err
            maybe = apart.index_select(0, owner) < skip_at
            few = int(maybe.sum()) <= n // 4
            wait = 1 if few or step == 0 else min(2 * wait, 8)   # idle (spread-out data): test less often
            prune_at = step + wait
        if maybe is None or not few:                         # few ruled out: screen all rows in float32
            low = torch.addmv(low32, x32, x32[c], alpha=-2.0).to(torch.float64) + low_c
            rows = torch.nonzero(low < nearest if maybe is None else maybe & (low < nearest)).squeeze(1)
        else:                                                # screen only those in float32
            rows = torch.nonzero(maybe).squeeze(1)
            low = low32.index_select(0, rows).add_(_dots(x32, rows, c, exact=False), alpha=-2.0)
            rows = rows[low.to(torch.float64) + low_c < nearest.index_select(0, rows)]
        if len(rows):
            d = _sq_distances(x64, sq64, rows, c)
            old = nearest.index_select(0, rows)
            nearer = d < old
            new = torch.minimum(old, d)
            nearest.index_copy_(0, rows, new)
            near32.index_copy_(0, rows, new.to(torch.float32))
            moved = rows[nearer]
            owner.index_fill_(0, moved, step)
            skip_at.index_copy_(0, moved, _skip_bound(new[nearer], err))
        nearest[c], near32[c] = -1.0, -1.0                  # never chosen twice, even among duplicates
        skip_at[c] = -math.inf
        c = int(torch.argmax(near32))
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
