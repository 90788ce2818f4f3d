"""Static rules see every layer of a model loaded from a file, whatever API built it (issue 15.2).

Keras's deserialization used to empty the stored config it was handed (a Functional's layers
were popped out of it), so a Functional model from a file had a spec of 0 layers and no static
finding. The same 10-layer sigmoid stack is built three ways, saved in both formats, and must
give the same static findings as the live model, with every layer in the spec.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import pytest
from typer.testing import CliRunner

from gradscope.audit.command import EXIT_FINDINGS
from gradscope.cli import app
from gradscope.detect.static import static_findings
from gradscope.model.extract import spec_from_model
from gradscope.model.loader import inspect_model_file, load_model_safely

DEPTH = 10


def _dense(name: str) -> keras.layers.Dense:
    return keras.layers.Dense(16, activation="sigmoid", name=name)


def sequential() -> keras.Model:
    hidden = [_dense(f"h{i}") for i in range(DEPTH)]
    return keras.Sequential(
        [keras.Input((8,)), *hidden, keras.layers.Dense(1, name="out")], name="seq"
    )


def functional() -> keras.Model:
    inputs = keras.Input((8,))
    x = inputs
    for i in range(DEPTH):
        x = _dense(f"h{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="out")(x), name="fun")


def nested() -> keras.Model:
    # A Functional model whose first half is a Sequential sub-model: the stack runs through it.
    half = DEPTH // 2
    inner = keras.Sequential(
        [keras.Input((8,)), *[_dense(f"h{i}") for i in range(half)]], name="inner"
    )
    inputs = keras.Input((8,))
    x = inner(inputs)
    for i in range(half, DEPTH):
        x = _dense(f"h{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="out")(x), name="nested")


BUILDERS: dict[str, Callable[[], keras.Model]] = {
    "sequential": sequential,
    "functional": functional,
    "nested": nested,
}


def layer_paths(model: keras.Model, prefix: str = "") -> list[str]:
    """Every non-input layer of a live model, nested models flattened as ``outer/inner``."""
    out: list[str] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += layer_paths(layer, f"{prefix}{layer.name}/")
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(prefix + layer.name)
    return out


def static_view(spec):
    return [
        (f.code, f.kind, f.severity, f.layers, f.evidence.get("depth"))
        for f in static_findings(spec)
    ]


def stored_json(path: Path) -> dict:
    """The model config as the file holds it, read independently of gradscope."""
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    with h5py.File(path, "r") as h5:
        return json.loads(h5.attrs["model_config"])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("apis")
    out = {}
    for name, build in BUILDERS.items():
        model = build()
        for ext in ("keras", "h5"):
            model.save(root / f"{name}.{ext}")
        out[name] = (model, root)
    return out


@pytest.mark.parametrize("ext", ["keras", "h5"])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_loaded_spec_has_every_layer_and_the_same_static_findings(saved, name, ext):
    model, root = saved[name]
    path = root / f"{name}.{ext}"
    before = stored_json(path)
    loaded = load_model_safely(path)
    expected = layer_paths(model)
    assert len(expected) == DEPTH + 1
    assert [x.name for x in loaded.spec.layers] == expected
    # Reading the spec again after loading (audit does) still sees the whole stored config.
    assert [x.name for x in loaded.stored.spec.layers] == expected
    assert json.loads(json.dumps(loaded.stored.model_config)) == before
    found = static_view(loaded.spec)
    assert found == static_view(spec_from_model(model))
    ((code, kind, _, layers, depth),) = found
    assert (code, kind, depth) == ("GS203", "deep_saturating_stack", DEPTH)
    assert [x.split("/")[-1] for x in layers] == [f"h{i}" for i in range(DEPTH)]


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_three_apis_give_the_same_static_findings(saved, ext):
    views = {}
    for name in BUILDERS:
        _, root = saved[name]
        spec = load_model_safely(root / f"{name}.{ext}").spec
        # Same kinds, codes, severities and depth; layer names differ only by the nesting prefix.
        views[name] = [
            (code, kind, sev, tuple(x.split("/")[-1] for x in layers), depth)
            for code, kind, sev, layers, depth in static_view(spec)
        ]
    assert views["functional"] == views["sequential"] == views["nested"]


def test_inspect_alone_matches_load(saved):
    # The config read without deserializing and the one left after loading describe one model.
    _, root = saved["functional"]
    path = root / "functional.keras"
    assert inspect_model_file(path).spec == load_model_safely(path).spec


@pytest.mark.parametrize("name", ["sequential", "functional"])
def test_cli_static_audit_of_a_file(saved, name):
    _, root = saved[name]
    result = CliRunner().invoke(
        app, ["audit", str(root / f"{name}.keras"), "--steps", "0", "--json"]
    )
    assert result.exit_code == EXIT_FINDINGS, result.output
    doc = json.loads(result.stdout)
    assert [f["kind"] for f in doc["findings"]] == ["deep_saturating_stack"]
    assert doc["findings"][0]["code"] == "GS203"
