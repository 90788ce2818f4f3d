"""The package's layers (../shared/DESIGN.md): a module imports only from layers below its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gradscope

ROOT = Path(gradscope.__file__).parent

#: Lowest first; modules of one layer may import each other. `scenarios` builds the chapter's
#: models and fits them with the callback, so it sits above `collect` like the demo; so does
#: `zoo` (everyday models and their sick twins).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "_lazy", "errors", "config", "config_repair", "data"),
    ("findings",),
    ("remedies",),
    ("model",),
    ("detect",),
    ("render",),
    ("collect",),
    ("trial",),
    ("audit", "fix"),
    ("scenarios", "zoo", "demo"),
    ("cli",),
)
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "gradscope" and len(parts) > 1 else None


def upward_imports(files: dict[str, str]) -> list[str]:
    """``"importer -> imported"`` for every import that runs up the layers.

    Args:
        files: module name (``gradscope.x.y``) -> its source.

    Returns:
        The offending imports, sorted.
    """
    bad = set()
    for module, source in files.items():
        mine = _layer(module)
        if mine is None:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module:
                other = _layer(node.module)
                if other is not None and RANK[other] > RANK[mine]:
                    bad.add(f"{module} -> {node.module}")
    return sorted(bad)


def _package_sources() -> dict[str, str]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def test_every_package_has_a_layer() -> None:
    layers = {_layer(m) for m in _package_sources()} - {None}
    assert layers <= set(RANK), layers - set(RANK)


def test_no_import_runs_up_the_layers() -> None:
    assert upward_imports(_package_sources()) == []


def test_the_check_can_fail() -> None:
    control = {"gradscope.detect.x": "from gradscope.fix.plan import plan_fixes\n"}
    assert upward_imports(control) == ["gradscope.detect.x -> gradscope.fix.plan"]


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_under_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)}: {lines} lines"
