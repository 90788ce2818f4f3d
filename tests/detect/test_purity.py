"""Detectors and static rules never import Keras or TensorFlow (checked on the source)."""

import ast
from pathlib import Path

import pytest

import gradscope

ROOT = Path(gradscope.__file__).parent
PURE = [
    *sorted((ROOT / "detect").rglob("*.py")),  # with the static/ rules package
    ROOT / "model" / "spec.py",
    ROOT / "model" / "shapes.py",
    *sorted((ROOT / "findings").glob("*.py")),
    ROOT / "remedies.py",
    ROOT / "fix" / "trials.py",
    ROOT / "model" / "taxonomy.py",
]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_framework_imports(path):
    assert not {"keras", "tensorflow", "tf_keras"} & _imports(path)


def test_the_check_can_fail():
    assert "keras" in _imports(ROOT / "audit" / "probe.py")
