"""`--custom-objects module:name` on `gradscope audit` and `gradscope fix`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from gradscope.errors import GradscopeInputError
from gradscope.model.custom import import_custom_objects

MODULE = "gs_custom_layers_t12"
CODE = textwrap.dedent(
    """
    import keras

    @keras.saving.register_keras_serializable(package="gs_t12")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}
    """
)


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory) -> tuple[Path, Path]:
    """A model with a custom layer saved as .keras, and the folder holding the layer's module."""
    root = tmp_path_factory.mktemp("custom")
    code_dir = root / "code"
    code_dir.mkdir()
    (code_dir / f"{MODULE}.py").write_text(CODE)
    sys.path.insert(0, str(code_dir))
    try:
        module = __import__(MODULE)
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(
                    8, activation="relu", kernel_initializer="he_normal", name="hidden"
                ),
                module.Scale(0.5, name="halve"),
                keras.layers.Dense(3, activation="softmax", name="out"),
            ],
            name="with_custom_layer",
        )
        model.compile("adam", "sparse_categorical_crossentropy")
        path = root / "custom.keras"
        model.save(path)
    finally:
        sys.path.remove(str(code_dir))
        sys.modules.pop(MODULE, None)
    return path, code_dir


def cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "gradscope.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_audit_refuses_the_unknown_layer_without_the_option(custom_model) -> None:
    path, _ = custom_model
    proc = cli("audit", str(path), "--steps", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "unknown custom objects ['gs_t12>Scale']" in line and "--unsafe" in line


def cli_here(*args: str, pythonpath: Path, monkeypatch: pytest.MonkeyPatch):
    """``gradscope ARGS`` with ``pythonpath`` on ``sys.path``, in this process (CliRunner).

    As a new process would: a cleared Keras session, and afterwards neither the imported module
    nor its registered class left behind for the next test. The stderr of real processes is
    checked by the tests around this one (a fresh interpreter costs 5 CPU-seconds importing
    TensorFlow).
    """
    from typer.testing import CliRunner

    from gradscope.cli import app

    monkeypatch.syspath_prepend(str(pythonpath))
    keras.backend.clear_session()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        sys.modules.pop(MODULE, None)
        keras.saving.get_custom_objects().pop("gs_t12>Scale", None)


def test_audit_loads_the_custom_layer_from_its_module(custom_model, monkeypatch) -> None:
    path, code_dir = custom_model
    spec = f"{MODULE}:Scale"
    args = ("audit", str(path), "--custom-objects", spec, "--steps", "4", "--json")
    result = cli_here(*args, pythonpath=code_dir, monkeypatch=monkeypatch)
    # audited: 0 clean, 1 findings, never 2
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and isinstance(doc["findings"], list)
    # The probe ran through the custom layer: a ratio was measured over its two Dense layers.
    assert doc["summary"]["first_layer"] == "hidden" and doc["summary"]["last_layer"] == "out"
    assert doc["summary"]["first_last_grad_ratio"] > 0


def test_fix_loads_the_custom_layer_from_its_module(custom_model, tmp_path, monkeypatch) -> None:
    path, code_dir = custom_model
    out = tmp_path / "fixed.keras"
    args = ["fix", str(path), "--custom-objects", f"{MODULE}:Scale", "--apply", "clip_norm"]
    args += ["-o", str(out), "--steps", "4", "--json"]
    result = cli_here(*args, pythonpath=code_dir, monkeypatch=monkeypatch)
    assert result.exit_code in (0, 1), (result.stderr, result.exception)
    assert json.loads(result.stdout)["applied"] == ["clip_norm"]
    assert out.exists()


def test_bad_module_is_one_line_and_exit_two(custom_model) -> None:
    path, _ = custom_model
    proc = cli("audit", str(path), "--custom-objects", "no_such_module_t12:Scale")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "gradscope audit: --custom-objects 'no_such_module_t12:Scale': no module named "
        "'no_such_module_t12' in this Python environment; install it, or put the folder that "
        "holds it on PYTHONPATH; without it the file's custom objects are refused (--unsafe runs "
        "the file's own code: trusted files only)"
    ]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (
            "no_colon",
            "--custom-objects takes module:name (e.g. my_layers:Scale). Received: 'no_colon'",
        ),
        ("json:", "Received: 'json:'"),
        ("json:NoSuchThing", "module 'json' has no 'NoSuchThing'; check the spelling"),
    ],
)
def test_malformed_specs_say_what_to_do(spec: str, needle: str) -> None:
    with pytest.raises(GradscopeInputError) as err:
        import_custom_objects([spec])
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_objects_are_keyed_by_name_and_registered_name(custom_model) -> None:
    _, code_dir = custom_model
    sys.path.insert(0, str(code_dir))
    try:
        objects = import_custom_objects([f"{MODULE}:Scale", "numpy:linalg.norm"])
    finally:
        sys.path.remove(str(code_dir))
    scale = sys.modules.pop(MODULE).Scale
    assert objects["Scale"] is scale and objects["gs_t12>Scale"] is scale
    assert objects["norm"] is np.linalg.norm  # dotted names reach nested objects
