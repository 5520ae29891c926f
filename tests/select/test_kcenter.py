"""Greedy k-center with triangle-inequality pruning chooses exactly what the plain algorithm chooses.

Two references live here, not in the package: ``plain`` (every step, every row's float64 distance to the new
center, the minimum kept) must match bit for bit, ids and distances; ``screened`` (the float32-screen version
that shipped before the pruning) must give the same ids and the same selection.json scores (six significant
digits; its distances came from MKL's gemv, which moves a row's last bit with its place in a 4-row block).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mistral_vision.data.selection import _score
from mistral_vision.select import geometry
from mistral_vision.select.geometry import greedy_kcenter


@pytest.fixture(autouse=True)
def one_thread():
    """Hundreds of tiny torch ops per call: a second OpenMP thread on a busy core makes each 10-30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plain(x, k, first):
    """The textbook algorithm: a full pass of float64 distances per step (the same per-row formula)."""
    x = torch.as_tensor(x).to(torch.float64).contiguous()
    sq = (x * x).sum(1)
    nearest = torch.full((x.shape[0],), math.inf, dtype=torch.float64)
    chosen, radius, c = [int(first)], [None], int(first)
    for _ in range(k - 1):
        torch.minimum(nearest, (sq - 2.0 * (x * x[c]).sum(1) + sq[c]).clamp_min_(0.0), out=nearest)
        nearest[c] = -1.0
        c = int(torch.argmax(nearest.to(torch.float32)))
        chosen.append(c)
        radius.append(math.sqrt(max(float(nearest[c]), 0.0)))
    return chosen, radius


def screened(x, k, first):
    """greedy_kcenter as it was before the pruning (float32 screen, float64 gemv on the rows it keeps)."""
    x64 = torch.as_tensor(x).to(torch.float64).contiguous()
    x32 = x64.to(torch.float32)
    sq64 = (x64 * x64).sum(1)
    sq32 = sq64.to(torch.float32)
    n, dim = x64.shape
    slack = 2.0 * (dim + 8) * 2.0 ** -24
    low32 = sq32 * (1.0 - slack)
    nearest = torch.full((n,), math.inf, dtype=torch.float64)
    chosen, radius, c = [int(first)], [None], int(first)
    for _ in range(k - 1):
        low = torch.addmv(low32, x32, x32[c], alpha=-2.0).to(torch.float64) + float(sq32[c]) * (1.0 - slack)
        rows = torch.nonzero(low < nearest).squeeze(1)
        if len(rows) > n // 2:
            d = (sq64 - 2.0 * (x64 @ x64[c]) + sq64[c]).clamp_min_(0.0)
            torch.minimum(nearest, d, out=nearest)
        elif len(rows):
            d = (sq64[rows] - 2.0 * (x64[rows] @ x64[c]) + sq64[c]).clamp_min_(0.0)
            nearest[rows] = torch.minimum(nearest[rows], d)
        nearest[c] = -1.0
        c = int(torch.argmax(nearest.to(torch.float32)))
        chosen.append(c)
        radius.append(math.sqrt(max(float(nearest[c]), 0.0)))
    return chosen, radius


def blobs(rng, n, dim, centers, spread, scale=1.0):
    """n points around ``centers`` random centers (uniform in a cube of side 100 * scale), Gaussian spread."""
    where = rng.uniform(0, 100 * scale, size=(centers, dim))
    return where[rng.integers(centers, size=n)] + rng.normal(scale=spread * scale, size=(n, dim))


def dataset(name, rng):
    if name == "uniform-128d":
        return rng.normal(size=(800, 128)).astype(np.float32), 120
    if name == "clusters-128d":
        return blobs(rng, 1500, 128, 20, 1.0).astype(np.float32), 200
    if name == "clusters-16d-far-from-0":                  # |x| >> distances: the rounding margin matters most
        return (blobs(rng, 1500, 16, 30, 0.5) + 1e4).astype(np.float32), 300
    if name == "clusters-tiny-scale":
        return blobs(rng, 1000, 8, 12, 0.3, scale=1e-4).astype(np.float32), 150
    if name == "1d":
        return rng.normal(size=(700, 1)).astype(np.float32) * 7, 200
    if name == "1d-mirrored":                              # c_j, a row at t, the next center at 2t: |c - c_j| = 2t
        t = rng.uniform(0.1, 10, size=60)
        return np.concatenate([np.zeros(1), t, 2 * t, -t, -2 * t, 3.3 + t / 3])[:, None], 150
    if name == "2d-grid-ties":                             # integer grid: exact, many equal distances
        g = np.stack(np.meshgrid(np.arange(12), np.arange(9)), -1).reshape(-1, 2)
        return g.astype(np.float32), 60
    if name == "2d-duplicates":
        base = rng.normal(size=(150, 2)).astype(np.float32)
        return base[rng.integers(150, size=600)], 200       # each point 4 times on average
    if name == "2d-clusters-duplicates":
        pts = blobs(rng, 300, 2, 6, 0.8).astype(np.float32)
        return np.concatenate([pts, pts[::3], pts[::7]]), 250
    if name == "all-identical":
        return np.full((50, 5), 3.25, np.float32), 20
    raise KeyError(name)


NAMES = ["uniform-128d", "clusters-128d", "clusters-16d-far-from-0", "clusters-tiny-scale", "1d", "1d-mirrored",
         "2d-grid-ties", "2d-duplicates", "2d-clusters-duplicates", "all-identical"]


@pytest.mark.parametrize("name", NAMES)
def test_pruned_kcenter_is_the_plain_algorithm_bit_for_bit(name):
    rng = np.random.default_rng(NAMES.index(name))
    x, k = dataset(name, rng)
    for first in (0, int(rng.integers(len(x))), len(x) - 1):
        got, want = greedy_kcenter(x, k, first), plain(x, k, first)
        assert got[0] == want[0]
        assert got[1] == want[1]                           # floats compared with ==, None for the first
        old = screened(x, k, first)
        assert got[0] == old[0]
        assert [_score(r) for r in got[1]] == [_score(r) for r in old[1]]   # the same selection.json


@pytest.mark.parametrize("n,dim", [(1, 3), (2, 1), (7, 2), (40, 3)])
def test_keep_one_and_keep_the_whole_pool(n, dim):
    x = np.random.default_rng(n).normal(size=(n, dim)).astype(np.float32)
    for k in (1, n):
        got = greedy_kcenter(x, k, n // 2)
        assert got == plain(x, k, n // 2)
        assert sorted(got[0]) == (list(range(n)) if k == n else [n // 2])


def test_pruning_skips_most_distances_on_clustered_data(monkeypatch):
    """On clusters, most rows never get a distance computed after the first steps (and still the same choice)."""
    x, k = dataset("clusters-128d", np.random.default_rng(1))
    computed = []
    inner = geometry._sq_distances
    monkeypatch.setattr(geometry, "_sq_distances", lambda x, sq, rows, c: computed.append(len(rows)) or inner(x, sq, rows, c))
    assert greedy_kcenter(x, k, 0) == plain(x, k, 0)
    assert computed[0] == len(x)                          # the first center: every row
    assert sum(computed) < 0.1 * len(x) * (k - 1)


@pytest.mark.parametrize("dim", [1, 8])
def test_the_rounding_margin_is_what_keeps_it_exact(dim, monkeypatch):
    """Three collinear points far from the origin (c_j, a row at t, the next center at 2t; and copies of c_j, so
    that pruning rules out most rows and is used): the row's distance to both centers is t, and float64
    rounding decides which is smaller. Elkan's bare test (skip when |c - c_j| >= 2 t) skips the row in some
    draws where the plain algorithm's minimum drops by a last bit; with the margin, never."""
    def differs(rng):
        base, step = rng.uniform(1e3, 1e4, size=dim), rng.normal(size=dim) * rng.uniform(0.5, 2)
        x = np.stack([base, base + step, base + 2 * step] + [base] * 20)
        return greedy_kcenter(x, 3, 0) != plain(x, 3, 0)

    assert not any(differs(np.random.default_rng(i)) for i in range(200))
    monkeypatch.setattr(geometry, "_skip_bound", lambda nearest, err: 4.0 * nearest)
    assert sum(differs(np.random.default_rng(i)) for i in range(200)) >= 3


@pytest.mark.parametrize("block_bytes", [8, 3000, 1 << 22])
def test_the_gather_block_size_changes_no_value(block_bytes, monkeypatch):
    """Rows are gathered and reduced a block at a time; a row's distance is the same in any block."""
    monkeypatch.setattr(geometry, "_BLOCK_BYTES", block_bytes)
    for name in ("clusters-tiny-scale", "2d-clusters-duplicates"):
        x, k = dataset(name, np.random.default_rng(NAMES.index(name)))
        assert greedy_kcenter(x, k, 1) == plain(x, k, 1)
