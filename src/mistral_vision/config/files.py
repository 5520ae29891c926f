"""Configs as files: YAML in (with ``--set`` overrides, validated), a run's resolved config out and back.

Not for: what a config means (``schema.py``) or whether it is valid (``checks.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .checks import validate
from .coerce import from_dict, to_dict
from .overrides import apply_overrides
from .schema import RunConfig

def read_yaml_mapping(path: Path) -> dict:
    """A YAML file that must hold a mapping (a run config, a compare spec), or one clear error line."""
    import yaml

    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{line} invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config (or the defaults when ``path`` is None), apply overrides, validate."""
    data = {}
    if path is not None:
        path = Path(path)
        data = read_yaml_mapping(path)
    data = apply_overrides(data, overrides or [])
    try:
        return validate(from_dict(RunConfig, data))
    except UserError as e:
        raise UserError(f"{path}: {e}" if path else str(e)) from None


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The resolved config a run directory was trained with (its ``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.json); run `mistral-vision train` first")
    return from_dict(RunConfig, json.loads(path.read_text()))


def dump_config(cfg: RunConfig, run_dir: str | Path) -> None:
    import yaml

    from ..io import write_json, write_text

    d = to_dict(cfg)
    write_json(Path(run_dir) / "config.json", d)
    write_text(Path(run_dir) / "config.yaml", yaml.safe_dump(d, sort_keys=False))

