"""The house rules of docs/architecture.md, checked: each package imports only the packages below it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnlab

SOURCE = Path(cnnlab.__file__).parent

# What each part of cnnlab may import (besides itself). The leaf utilities import nothing of ours
# but each other; data stands aside and uses only them; everything else builds upwards.
LEAVES = {"errors", "atomic", "figures", "paths"}
ALLOWED = {
    "errors": set(), "atomic": set(), "paths": set(), "figures": {"atomic"},
    "device": LEAVES,
    "data": LEAVES,
    "layers": LEAVES,
    "weights": LEAVES,
    "registry": LEAVES | {"layers", "models", "weights"},
    "models": LEAVES | {"layers", "registry", "weights"},
    "analysis": LEAVES | {"data", "eval", "layers", "models", "registry", "weights"},
    "runs": LEAVES | {"data", "device", "layers", "weights"},
    "eval": LEAVES | {"data", "device", "layers", "models", "registry", "runs", "weights"},
    "train": LEAVES | {"data", "device", "eval", "layers", "models", "registry", "runs", "weights"},
    "nas": LEAVES | {"data", "device", "eval", "layers", "models", "registry", "runs", "train", "weights"},
    "explore": LEAVES | {"analysis", "data", "device", "eval", "layers", "models", "registry", "runs", "train",
                         "weights"},
}
# The command line and the package's front door may import anything; anyone may read the version.
TOP = {"cli", "__init__", "__main__"}
EVERYONE = {"__version__"}


def _part(module_path: Path) -> str:
    relative = module_path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_parts(module_path: Path) -> set[str]:
    """The parts of cnnlab a module imports, at the top or inside functions."""
    package = module_path.relative_to(SOURCE).parent.parts
    parts = set()
    for node in ast.walk(ast.parse(module_path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "cnnlab":
                target = node.module.split(".")[1:]
                names = [target[0]] if target else [alias.name for alias in node.names]
            else:
                continue
            parts.update(names)
        elif isinstance(node, ast.Import):
            parts.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("cnnlab.") and alias.name.count(".") >= 1)
    return parts


MODULES = sorted(p for p in SOURCE.rglob("*.py") if _part(p) not in TOP)


@pytest.mark.parametrize("module_path", MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_module_imports_a_package_above_it(module_path):
    part = _part(module_path)
    assert part in ALLOWED, f"{part} is not placed in the house rules (tests/test_architecture.py, docs)"
    upward = _imported_parts(module_path) - ALLOWED[part] - EVERYONE - {part}
    assert not upward, f"{module_path.relative_to(SOURCE)} ({part}) imports {sorted(upward)}"


def test_no_module_passes_700_lines():
    long = {str(p.relative_to(SOURCE)): n for p in SOURCE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 700}
    assert not long
