"""The selection methods, a registry keyed by name: each takes (pool, keep, seed, spec) and returns a ``Picked``.

A method returns the chosen ids in the order it chose them, a score for each (None where the method
has none) and optionally a group each (stratum, cluster, score bin). Ties are broken by the item's id
(or, inside torch, by pool order), randomness comes from ``np.random.default_rng(seed)``, and counts
per group are integer arithmetic, so the same pool gives the same ids on every machine. The methods
and their parameters are named in ``config/schema.py`` (``SELECT_METHODS``), so configs are checked
without importing this module. docs/selection.md states each rule and where it comes from.
Not for: reading pools or writing manifests (``data/selection.py``), or features (``features.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..config import SELECT_METHODS, SELECT_NEEDS_RUN
from ..errors import UserError, one_of


class Picked(NamedTuple):
    ids: list[str]                       # in the order chosen
    scores: list                         # one per id: float, or None where the method has no score
    groups: list | None = None           # one per id: its stratum / cluster / score bin
    resolved: dict | None = None         # parameters the method settled (a default field), for the manifest


@dataclass(frozen=True)
class Method:
    name: str
    choose: Callable                     # (pool, keep, seed, spec, log) -> Picked
    score: str                           # what the score of a chosen example is
    needs_run: bool
    params: tuple[str, ...]


# -- shared rules ------------------------------------------------------------------------------------
def largest_remainder(sizes: list[int], keep: int) -> list[int]:
    """Hamilton's apportionment of ``keep`` over groups of ``sizes``: floor(keep * s / N) each, then one more
    to the largest remainders (ties: the earlier group). Integer arithmetic: exact. Requires keep <= N."""
    n = sum(sizes)
    quota = [keep * s // n for s in sizes]
    rem = [keep * s % n for s in sizes]
    for i in sorted(range(len(sizes)), key=lambda i: (-rem[i], i))[:keep - sum(quota)]:
        quota[i] += 1
    return quota


def balanced(sizes: list[int], keep: int) -> list[int]:
    """Equal counts per group, a group with fewer items giving its share to the others; a remainder that does
    not divide goes one each to the earliest groups that still have items."""
    quota, left = [0] * len(sizes), keep
    while left:
        room = [i for i, s in enumerate(sizes) if quota[i] < s]
        share = left // len(room)
        if share == 0:
            for i in room[:left]:
                quota[i] += 1
            break
        for i in room:
            add = min(share, sizes[i] - quota[i])
            quota[i] += add
            left -= add
    return quota


def strata_of(values: list) -> tuple[list, list[list[int]]]:
    """(stratum labels sorted by name, missing last; the pool positions of each, in pool order)."""
    labels = sorted(set(values), key=lambda v: (v is None, str(v)))
    where = {v: [] for v in labels}
    for i, v in enumerate(values):
        where[v].append(i)
    return labels, [where[v] for v in labels]


def take_per_group(groups: list[list[int]], quota: list[int], rng) -> list[tuple[int, int]]:
    """(group index, pool position) of ``quota[g]`` items drawn at random from each group, group by group."""
    out = []
    for g, (members, q) in enumerate(zip(groups, quota)):
        if q:
            out += [(g, members[j]) for j in rng.permutation(len(members))[:q]]
    return out


def hardest_first(scores: np.ndarray, ids: list[str], positions) -> list[int]:
    """``positions`` ordered by score, highest first, ties by id."""
    return sorted(positions, key=lambda i: (-scores[i], ids[i]))


def _float64(t) -> np.ndarray:
    return np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t, dtype=np.float64)


def _checked(values: np.ndarray, pool, what: str) -> np.ndarray:
    if values.shape[0] != len(pool):
        raise UserError(f"{what}: {values.shape[0]} rows for a pool of {len(pool)}")
    if not np.isfinite(values).all():
        raise UserError(f"{what}: not finite for {int((~np.isfinite(values).reshape(len(pool), -1).all(1)).sum())} "
                        "items")
    return values


def run_losses(pool, spec, measure: str, log) -> np.ndarray:
    from . import features

    return _checked(_float64(features.run_losses(spec.from_run, pool.qset, measure, log=log)), pool,
                    f"{measure} of {spec.from_run}")


def run_embeddings(pool, spec, log):
    import torch

    from . import features

    emb = torch.as_tensor(features.run_features(spec.from_run, pool.qset, spec.embedding, log=log))
    _checked(_float64(emb).reshape(len(emb), -1), pool, f"{spec.embedding} embeddings of {spec.from_run}")
    return emb.to(torch.float64)


# -- the methods -------------------------------------------------------------------------------------
def choose_random(pool, keep, seed, spec, log) -> Picked:
    ids = pool.ids
    return Picked([ids[i] for i in np.random.default_rng(seed).permutation(len(ids))[:keep]], [None] * keep)


def choose_stratified(pool, keep, seed, spec, log) -> Picked:
    from ..data.selection import field_values

    field = spec.field or "type"
    labels, groups = strata_of(field_values(pool, field))
    sizes = [len(g) for g in groups]
    quota = (largest_remainder if spec.allocation == "proportional" else balanced)(sizes, keep)
    got = take_per_group(groups, quota, np.random.default_rng(seed))
    ids = pool.ids
    return Picked([ids[i] for _, i in got], [None] * keep, [labels[g] for g, _ in got], {"field": field})


def options_count(item) -> int:
    """The number of answer options an item states: lettered options over its human turns, else its candidates."""
    from ..data.sqa import parse_options

    n = sum(len(parse_options(t)) for r, t in item.turns if r == "human")
    return n or len(item.candidates or ())


def choose_handpicked(pool, keep, seed, spec, log) -> Picked:
    """The seed study's rule: image questions only, every stratum at least once (its hardest), then the
    hardest of the rest; difficulty is the reference run's loss, else the number of options."""
    from ..data.selection import field_values, fields_of

    items, ids = pool.qset.items, pool.ids
    imaged = [i for i, it in enumerate(items) if it.image >= 0]
    if keep > len(imaged):
        raise UserError(f"handpicked keeps image questions only: {len(imaged)} of the pool's {len(pool)} have an "
                        f"image, fewer than --keep {keep}")
    field = spec.field or ("subject" if "subject" in fields_of(pool) else "type")
    values = field_values(pool, field)
    if spec.from_run:
        difficulty, measure = run_losses(pool, spec, "loss", log), "loss"
    else:
        difficulty, measure = np.array([options_count(it) for it in items], dtype=np.float64), "options"
    labels, groups = strata_of([values[i] for i in imaged])
    if keep < len(labels):
        raise UserError(f"handpicked covers every stratum of {field!r}: {len(labels)} among the image questions, "
                        f"more than --keep {keep}")
    first = [hardest_first(difficulty, ids, [imaged[j] for j in g])[0] for g in groups]
    taken = set(first)
    rest = [i for i in hardest_first(difficulty, ids, imaged) if i not in taken][:keep - len(first)]
    chosen = first + rest
    return Picked([ids[i] for i in chosen], [float(difficulty[i]) for i in chosen], [values[i] for i in chosen],
                  {"field": field, "difficulty": measure})


def choose_by_loss(pool, keep, seed, spec, log) -> Picked:
    """Scores from the reference run; ``high``: the top ``keep``; ``middle``: a window around the median;
    ``ccs``: coverage-centric coreset selection (Zheng et al. 2023, Algorithm 1)."""
    scores, ids = run_losses(pool, spec, spec.measure, log), pool.ids
    if spec.band == "high":
        chosen = hardest_first(scores, ids, range(len(pool)))[:keep]
        return Picked([ids[i] for i in chosen], [float(scores[i]) for i in chosen])
    rising = sorted(range(len(pool)), key=lambda i: (scores[i], ids[i]))
    if spec.band == "middle":
        start = (len(pool) - keep) // 2
        chosen = rising[start:start + keep]
        return Picked([ids[i] for i in chosen], [float(scores[i]) for i in chosen])
    kept = rising[:len(pool) - math.floor(spec.hard_cut * len(pool))]        # the hardest beta dropped first
    if keep > len(kept):
        raise UserError(f"loss --band ccs: --keep {keep} is more than the {len(kept)} examples left after "
                        f"--hard-cut {spec.hard_cut}")
    lo, hi = scores[kept[0]], scores[kept[-1]]
    width = (hi - lo) / spec.bins
    bins = [[] for _ in range(spec.bins)]
    for i in kept:
        bins[min(spec.bins - 1, int((scores[i] - lo) / width)) if width > 0 else 0].append(i)
    quota, left = [0] * spec.bins, keep
    full = [b for b in range(spec.bins) if bins[b]]
    for n, b in enumerate(sorted(full, key=lambda b: (len(bins[b]), b))):   # smallest bins first
        quota[b] = min(len(bins[b]), left // (len(full) - n))
        left -= quota[b]
    got = take_per_group(bins, quota, np.random.default_rng(seed))
    return Picked([ids[i] for _, i in got], [float(scores[i]) for _, i in got], [b for b, _ in got])


def choose_kcenter(pool, keep, seed, spec, log) -> Picked:
    """Greedy k-center (the seed study's "L2 distance maximisation"); the first center drawn by the seed."""
    from .geometry import greedy_kcenter

    emb = run_embeddings(pool, spec, log)
    first = int(np.random.default_rng(seed).integers(len(pool)))
    rows, radius = greedy_kcenter(emb, keep, first)
    return Picked([pool.ids[i] for i in rows], radius)


def choose_clusters(pool, keep, seed, spec, log) -> Picked:
    """k-means on the embeddings, then every cluster at least once and the rest in proportion to cluster size,
    drawn at random inside each cluster (COINCIDE's idea without its transferability weighting)."""
    from .geometry import kmeans

    k = spec.clusters or max(1, math.floor(math.sqrt(keep) + 0.5))
    if k > keep:
        raise UserError(f"clusters: --clusters {k} is more than --keep {keep} (every cluster gives one at least)")
    labels, dist = kmeans(run_embeddings(pool, spec, log), k, seed)
    labels = labels.tolist()
    groups = [[] for _ in range(k)]
    for i, c in enumerate(labels):
        groups[c].append(i)
    sizes = [len(g) for g in groups]
    full = sum(1 for s in sizes if s)
    extra = largest_remainder([max(s - 1, 0) for s in sizes], keep - full) if keep > full else [0] * k
    quota = [(1 if s else 0) + e for s, e in zip(sizes, extra)]
    got = take_per_group(groups, quota, np.random.default_rng([seed, 1]))
    dist = dist.tolist()
    return Picked([pool.ids[i] for _, i in got], [dist[i] for _, i in got], [c for c, _ in got], {"clusters": k})


_CHOOSERS = {
    "random": (choose_random, "none"),
    "stratified": (choose_stratified, "none; groups: the stratum"),
    "handpicked": (choose_handpicked, "difficulty (the run's loss, or the number of options); groups: the stratum"),
    "loss": (choose_by_loss, "the run's loss or EL2N; groups (ccs): the score bin"),
    "kcenter": (choose_kcenter, "distance to the examples chosen before it (none for the first)"),
    "clusters": (choose_clusters, "distance to its cluster's center; groups: the cluster"),
}
METHODS = {name: Method(name, fn, score, name in SELECT_NEEDS_RUN, SELECT_METHODS[name])
           for name, (fn, score) in _CHOOSERS.items()}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise one_of("selection method", name, METHODS)
    return METHODS[name]
