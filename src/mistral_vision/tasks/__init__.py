"""Tasks by route: one registry, keyed by the config's ``route`` (``ascii`` | ``llava``).

``make_task(cfg, tokenizer_or_processor, label_names)`` is the only way tasks are built, so
the route is decided in one place. Not for: the protocol itself (``base.py``).
"""
from __future__ import annotations

from importlib import import_module

from ..errors import one_of

TASKS = {"ascii": ("ascii", "AsciiTask"), "llava": ("llava", "LlavaTask")}   # route -> (module, class), imported on use
ROUTES = tuple(TASKS)


def task_class(route: str):
    if route not in TASKS:
        raise one_of("route", route, ROUTES)
    module, name = TASKS[route]
    return getattr(import_module(f".{module}", __name__), name)


def make_task(cfg, tokenizer_or_processor, label_names, template: str | None = None):
    """The task of ``cfg.route`` for a trained or fresh model's tokenizer (ASCII) or processor (LLaVA).

    ``template``: a chat template id to write conversations with instead of the tokenizer's own (a training
    stage's ``template``); the tokenizer or processor handed in is not changed."""
    if template is not None and tokenizer_or_processor is not None:
        from ..models.chat_templates import with_chat_template

        tokenizer_or_processor = with_chat_template(tokenizer_or_processor, template)
    task = task_class(cfg.route).from_config(cfg, tokenizer_or_processor, label_names)
    task.template = template
    return task
