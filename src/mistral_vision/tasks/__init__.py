"""Tasks by route: one registry, keyed by the config's ``route`` (``ascii`` | ``llava``).

``make_task(cfg, tokenizer_or_processor, label_names)`` is the only way tasks are built, so
the route is decided in one place. Not for: the protocol itself (``base.py``).
"""
from __future__ import annotations

from ..errors import one_of

ROUTES = ("ascii", "llava")


def task_class(route: str):
    if route == "ascii":
        from .ascii import AsciiTask

        return AsciiTask
    if route == "llava":
        from .llava import LlavaTask

        return LlavaTask
    raise one_of("route", route, ROUTES)


def make_task(cfg, tokenizer_or_processor, label_names):
    """The task of ``cfg.route`` for a trained or fresh model's tokenizer (ASCII) or processor (LLaVA)."""
    return task_class(cfg.route).from_config(cfg, tokenizer_or_processor, label_names)
