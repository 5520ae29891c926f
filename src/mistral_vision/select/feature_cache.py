"""The on-disk cache of a reference run's per-item features and scores: keyed, sharded, resumable.

A cache folder holds one thing (a feature kind or a loss measure) of one question set computed
by one saved model: ``<cache_dir>/<what>-<key>/`` where the key hashes what was computed, the
items (ids, turns, image rows), the images (their pixels, or the folder and paths of a LLaVA
JSON set) and the run (its saved model files' sizes and times, and its config). Rows are
written in shards of ``SHARD_ITEMS`` items, each renamed into place when complete, so a run
killed mid-way continues from the shards present, and a complete cache is read without
loading the model. Not for: computing the rows (``features.py``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UserError

SHARD_ITEMS = 4096          # items per shard: what a kill can lose, and one progress line
VERSION = 1                 # bump when the rows' meaning changes, so old caches are not read


def data_digest(qset) -> str:
    """sha256 of a question set's items (id, turns, image row) and its images (pixels, or folder + paths)."""
    import numpy as np

    from ..data.questions import LazyImages

    h = hashlib.sha256()
    for it in qset.items:
        h.update(json.dumps([it.id, [list(t) for t in it.turns], it.image]).encode())
        h.update(b"\n")
    if isinstance(qset.images, LazyImages):
        h.update(json.dumps([str(qset.images.folder), list(qset.images.paths)]).encode())
    else:
        for im in qset.images:
            a = np.ascontiguousarray(im)
            h.update(f"{a.shape}{a.dtype}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def run_digest(run_dir: Path) -> str:
    """Changes when the run's saved model files (size, time) or its config change."""
    from ..infer.records import model_fingerprint

    config = Path(run_dir) / "config.json"
    conf = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else ""
    return hashlib.sha256(f"{model_fingerprint(run_dir)}:{conf}".encode()).hexdigest()


class ShardCache:
    """Shards ``shard-00000.pt`` ... of one computation; shard ``s`` holds the rows of items
    ``s * shard_items`` up to the next shard's first item."""

    def __init__(self, cache_dir, what: str, qset, run_dir):
        self.n = len(qset.items)
        self.shard_items = SHARD_ITEMS
        meta = {"version": VERSION, "what": what, "items": self.n, "shard_items": self.shard_items,
                "data": data_digest(qset), "run": run_digest(run_dir)}
        key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(cache_dir) / f"{what}-{key}"
        self.meta = {**meta, "run_dir": str(run_dir), "question_set": qset.name}

    @property
    def shards(self) -> int:
        return -(-self.n // self.shard_items)

    def bounds(self, s: int) -> tuple[int, int]:
        return s * self.shard_items, min((s + 1) * self.shard_items, self.n)

    def path(self, s: int) -> Path:
        return self.folder / f"shard-{s:05d}.pt"

    def missing(self) -> list[int]:
        return [s for s in range(self.shards) if not self.path(s).is_file()]

    def write(self, s: int, rows) -> None:
        """Shard ``s``'s rows, renamed into place only once written whole."""
        import torch

        from ..io import atomic_path, write_json

        lo, hi = self.bounds(s)
        if rows.shape[0] != hi - lo:
            raise AssertionError(f"shard {s}: {rows.shape[0]} rows for {hi - lo} items")
        if not (self.folder / "meta.json").is_file():
            write_json(self.folder / "meta.json", self.meta)        # what the folder holds, for people
        with atomic_path(self.path(s)) as tmp:
            torch.save(rows.detach().to("cpu", torch.float32).contiguous().clone(), tmp)

    def load(self):
        """All rows, shard after shard: (items, ...) float32."""
        import torch

        parts = []
        for s in range(self.shards):
            lo, hi = self.bounds(s)
            try:
                rows = torch.load(self.path(s), map_location="cpu", weights_only=True)
            except Exception as e:  # a file that torch cannot read: not one this code wrote whole
                raise UserError(f"{self.path(s)}: unreadable ({str(e).splitlines()[0]}); delete it to compute "
                                "that shard again") from None
            if rows.shape[0] != hi - lo:
                raise UserError(f"{self.path(s)}: {rows.shape[0]} rows for {hi - lo} items; delete it to compute "
                                "that shard again")
            parts.append(rows)
        return torch.cat(parts)
