"""The package's layers, checked: a module imports only its own layer or lower ones, even inside functions.

The README promises this order, so that a newcomer can read the package bottom up and so that
no two modules import each other. A function-level import counts: deferring it (to keep
import time low) does not change which layer depends on which.
"""
import ast
from pathlib import Path

import mistral_vision

PACKAGE = Path(mistral_vision.__file__).parent
# Lowest first. A module's layer is its longest matching prefix.
LAYERS = [
    ["errors", "io"],
    ["data", "ascii", "prompts", "chatfile"],
    ["models"],
    ["tasks"],
    ["config"],
    ["train", "infer"],
    ["select"],                      # data selection: a run's losses / embeddings (infer), the subset for train
    ["api", "predict", "serve"],
    ["eval", "export"],
    ["pipeline", "compare"],
    ["cli", "__init__"],             # the package's own __init__ is a facade re-exporting from below
]


def layer_of(module: str) -> int:
    """Layer index of a dotted module name inside the package ("train.loop" -> the train layer)."""
    head = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"module {module!r} is in no layer: add it to LAYERS")


def imports_of(path: Path) -> set[str]:
    """Package-relative names of the package modules that ``path`` imports anywhere in its body."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[:len(parts) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("mistral_vision"):
                target = node.module.split(".")[1:]
            else:
                continue
            found.add(".".join(target) if target else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mistral_vision."):
                    found.add(alias.name.split(".", 1)[1])
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for dep in sorted(imports_of(path)):
            if layer_of(dep) > layer_of(me):
                out.append(f"{me} imports {dep}")
    return out


def test_no_module_imports_a_higher_layer():
    assert violations() == []


def test_the_check_sees_a_function_level_import_of_a_higher_layer(tmp_path, monkeypatch):
    fake = tmp_path / "mistral_vision"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "x.py").write_text("def f():\n    from ..eval.report import write_report\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert violations() == ["data.x imports eval.report"]
