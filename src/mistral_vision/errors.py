"""User-facing errors.

A :class:`UserError` is raised for anything the user can fix (bad input file, unknown id,
missing data). The CLI prints its message as one line and exits with code 2; every other
exception is a bug and keeps its traceback. Not for: internal assertions.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what, where and what to do."""


def one_of(kind: str, name: str, known) -> UserError:
    """Error for an unknown registry id, listing the known ids."""
    return UserError(f"unknown {kind} {name!r}; known: {', '.join(sorted(known))}")
