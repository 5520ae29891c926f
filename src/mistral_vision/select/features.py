"""Stub of the run-derived features (H8 writes the real module); only here so that imports resolve.

Not for: anything; every function raises until the real ``features.py`` replaces this file.
"""
from __future__ import annotations

FEATURE_KINDS = ("image-mean", "answer-hidden", "tower-pooled")


def run_features(run_dir, qset, kind: str, cache_dir=None, batch_size: int = 64, log=print):
    raise NotImplementedError("select/features.py is a stub, replaced by H8's")


def run_losses(run_dir, qset, measure: str = "loss", cache_dir=None, batch_size: int = 64, log=print):
    raise NotImplementedError("select/features.py is a stub, replaced by H8's")


def check_run_fits(run_dir, qset) -> None:
    raise NotImplementedError("select/features.py is a stub, replaced by H8's")
