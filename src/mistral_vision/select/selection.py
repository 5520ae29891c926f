"""Run a selection: a pool from what the user named, a method from the registry, a manifest out.

``select`` is what ``mistral-vision select`` and a run's ``data.select`` share: it checks the spec,
resolves ``keep``, checks that a reference run fits the pool (``features.check_run_fits``), runs the
method and returns the manifest (``data/selection.py`` writes it). ``resolve_run_selection`` does it
for a run before training: a spec is resolved into ``RUN/selection/selection.json`` (reused when the
same spec was resolved from the same data before), a selection.json path is checked against the
run's data. Not for: the methods (``methods.py``) or features (``features.py``).
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError


def pool_of(data: str, image_folder=None, d=None):
    """The pool named on the command line: a LLaVA JSON file, or a dataset id with data settings ``d``."""
    from dataclasses import replace

    from ..data.datasets import DATASETS
    from ..data.selection import classification_pool, file_pool, vqa_pool
    from ..data.vqa import VQA_DATASETS, is_vqa

    if data in DATASETS or is_vqa(data):
        if image_folder is not None:
            raise UserError(f"--image-folder is for LLaVA JSON files; {data} is generated from its dataset's files")
        d = replace(d, dataset=data, format="idx")
        return vqa_pool(d) if is_vqa(data) else classification_pool(d)
    if not Path(data).is_file():
        raise UserError(f"{data}: no such file, and not a dataset id (known: "
                        f"{', '.join(sorted([*DATASETS, *VQA_DATASETS]))})")
    return file_pool(data, image_folder)


def select(pool, spec, seed: int, log=print) -> dict:
    """Run ``spec`` (a ``SelectConfig``, already checked) on ``pool``; returns the manifest."""
    from ..data.selection import manifest, resolve_keep
    from .methods import get_method

    method = get_method(spec.method)
    keep = resolve_keep(spec.keep, len(pool))
    if spec.from_run:
        from . import features

        if not Path(spec.from_run).is_dir():
            raise UserError(f"--from-run {spec.from_run}: no such run folder")
        features.check_run_fits(spec.from_run, pool.qset)
    picked = method.choose(pool, keep, seed, spec, log)
    if len(picked.ids) != keep or len(set(picked.ids)) != keep:          # a bug, not the user's input
        raise AssertionError(f"{spec.method} chose {len(set(picked.ids))} distinct of {keep}")
    params = {k: getattr(spec, k) for k in method.params}
    params.update(picked.resolved or {})
    return manifest(pool, spec.method, params, seed, spec.keep, keep, picked.ids, picked.scores, picked.groups)


def select_into(out, pool, spec, seed: int, subset: bool = True, log=print) -> dict:
    """``select`` and write the result into ``out``; returns the manifest."""
    from ..data.selection import write_selection

    t0 = time.perf_counter()
    chosen = select(pool, spec, seed, log)
    write_selection(out, pool, chosen, time.perf_counter() - t0, subset, log)
    return chosen


def check_run_manifest(cfg) -> None:
    """``data.select`` naming a ``selection.json``: one line unless it was made from this run's training data.
    Cheap (a hash of the pool), so a run calls it before it writes anything, even the ASCII route's files."""
    from ..data.selection import check_source, config_pool, read_manifest

    s = cfg.data.select
    if isinstance(s, str):
        pool = config_pool(cfg.data)
        check_source(read_manifest(s), s, pool.sha256, f"this run's training data ({pool.data})")


def resolve_run_selection(cfg, log=print) -> Path | None:
    """Before a run trains: ``data.select`` as a manifest the data loaders apply, or one line why not."""
    from ..config import SELECT_METHODS
    from ..data.selection import MANIFEST, config_pool, read_manifest

    s = cfg.data.select
    if s is None:
        return None
    if isinstance(s, str):
        check_run_manifest(cfg)
        return Path(s)
    pool = config_pool(cfg.data)
    seed = s.seed if s.seed is not None else cfg.train.seed
    path = cfg.run_dir / "selection" / MANIFEST
    if path.is_file():
        m = read_manifest(path)
        same = (m["method"] == s.method and m["seed"] == seed and m["keep"]["asked"] == s.keep
                and m["source"]["sha256"] == pool.sha256
                and all(m["params"].get(k) == getattr(s, k) for k in SELECT_METHODS[s.method]
                        if not (k == "field" and s.field is None)))
        if same:
            log(f"      data.select: {s.method}, {m['keep']['count']} of {len(pool)} (made earlier: {path})")
            return path
        from ..train.checkpoints import has_training_state

        if has_training_state(cfg.run_dir):         # never swap the subset under a run that trained on it
            raise UserError(f"{cfg.run_dir} was trained on another selection ({path}); choose a new run name")
    chosen = select_into(path.parent, pool, s, seed, subset=False, log=log)
    log(f"      data.select: {s.method}, {chosen['keep']['count']} of {len(pool)} -> {path}")
    return path
