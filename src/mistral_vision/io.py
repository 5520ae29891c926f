"""Small file helpers shared by every writer: atomic writes and append-only JSONL.

Outputs are written to a temporary name in the same folder and renamed into place when
complete, so an interrupted run never leaves a half-written file. Not for: data loading.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def _fresh(path: Path, suffix: str, create) -> Path:
    """A new temporary name beside ``path``, created by ``create`` (which fails if it exists). Not tempfile's
    mkstemp / mkdtemp: they make 0600 files and 0700 folders, and the rename kept that, so an exported
    model folder was private under umask 022. Created like any file, the umask decides."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}.tmp"
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh(path, suffix, lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh(path, "", lambda p: p.mkdir())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def honour_umask(folder: str | Path) -> None:
    """Give ``folder`` and everything in it the permissions the umask gives new folders and files: some
    writers (safetensors) create their files 0600 whatever the umask, which leaves a folder meant to be
    shared (an export) unreadable to others. Reading the umask sets it, so it is put straight back."""
    mask = os.umask(0o022)
    os.umask(mask)
    folder = Path(folder)
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def read_jsonl_tolerant(path: str | Path) -> list[dict]:
    """Read an append-only JSONL log, truncating a torn last line left by a kill.

    Complete lines are returned; an incomplete final line (no newline, or not valid JSON) is
    cut off the file so that appending continues cleanly.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end, pos = [], 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl]
        try:
            if line.strip():
                records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        pos = good_end = nl + 1
    if good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records


class JsonlAppender:
    """Append records to a JSONL file, flushed and fsynced after every batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, records: Iterable[dict]) -> None:
        for r in records:
            self._f.write(json.dumps(r, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
