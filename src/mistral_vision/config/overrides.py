"""``--set key=value`` overrides on the raw mapping, before it becomes a config.

Keys are dotted paths (``train.lr``, ``stages.1.epochs``: list items by index); values are YAML
(``2e-5``, ``[valid]``, ``null``); a section given as a string (``tokenizer: ascii-bpe``) is
expanded before a key inside it is set. Not for: types or validation.
"""
from __future__ import annotations

import json

from ..errors import UserError
from .coerce import SHORTHANDS

def _parse_override(item: str) -> tuple[list[str], object]:
    import yaml

    if "=" not in item:
        raise UserError(f"--set {item!r}: expected key=value, e.g. train.epochs=2")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    data = json.loads(json.dumps(data))
    for item in overrides or []:
        path, value = _parse_override(item)
        node = data
        for k in path[:-1]:
            if isinstance(node, list):                                # stages.1.lr=...: a list index
                node = _list_item(node, k, item)
                continue
            if isinstance(node.get(k), str) and k in SHORTHANDS:      # `tokenizer: ascii-bpe` + tokenizer.x=...
                node[k] = {SHORTHANDS[k]: node[k]}
            node = node.setdefault(k, {})
            if not isinstance(node, (dict, list)):
                raise UserError(f"--set {item!r}: {k!r} is not a section")
        if isinstance(node, list):
            idx = _list_index(node, path[-1], item)
            node[idx] = value
        else:
            node[path[-1]] = value
    return data


def _list_index(node: list, key: str, item: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise UserError(f"--set {item!r}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _list_item(node: list, key: str, item: str) -> dict:
    got = node[_list_index(node, key, item)]
    if not isinstance(got, dict):
        raise UserError(f"--set {item!r}: item {key} is not a section")
    return got

