"""`gradscope audit`: exit codes, strict JSON, one-line errors without traceback."""

import io
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from gradscope.audit.command import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, audit_command
from gradscope.cli import app


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    healthy = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(16, "relu", kernel_initializer="he_normal"),
            keras.layers.Dense(3, "softmax"),
        ]
    )
    healthy.compile("adam", "sparse_categorical_crossentropy")
    healthy.save(root / "healthy.keras")
    sick = keras.Sequential(
        [keras.Input((12,))]
        + [
            keras.layers.Dense(
                16, "sigmoid", kernel_initializer=keras.initializers.RandomNormal(stddev=1.0)
            )
            for _ in range(6)
        ]
        + [keras.layers.Dense(3, "softmax")]
    )
    sick.save(root / "sick.h5")
    np.savez(
        root / "data.npz",
        x=np.random.default_rng(0).standard_normal((64, 12)).astype("float32"),
        y=np.zeros(64, "int32"),
    )
    np.savez(root / "nox.npz", y=np.zeros(3))
    return root


def run(*args, **kw):
    out, err = io.StringIO(), io.StringIO()
    code = audit_command(*args, stdout=out, stderr=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_healthy_exits_zero_with_json(models):
    code, out, err = run(models / "healthy.keras", as_json=True, data=models / "data.npz")
    assert code == EXIT_OK
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(c))
    assert doc["schema_version"] == 1
    assert all(f["severity"] == "info" for f in doc["findings"])
    assert err == ""


def test_sick_static_only_exits_one(models):
    code, out, _ = run(models / "sick.h5", steps=0)
    assert code == EXIT_FINDINGS
    assert "GS203 Deep stack of saturating activations" in out


@pytest.mark.parametrize(
    ("target", "kw", "needle"),
    [
        ("missing.h5", {}, "No file"),
        ("healthy.keras", {"data": "nox.npz"}, "lacks array(s) ['x']"),
        ("healthy.keras", {"data": "missing.npz"}, "No data file"),
    ],
)
def test_bad_input_exits_two_with_one_line(models, target, kw, needle):
    kw = {k: models / v for k, v in kw.items()}
    code, out, err = run(models / target, **kw)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gradscope audit: ") and needle in err


def test_debug_env_shows_the_exception(models, monkeypatch):
    monkeypatch.setenv("GRADSCOPE_DEBUG", "1")
    with pytest.raises(ValueError, match="No file"):
        audit_command(models / "missing.h5")


def test_typer_wiring(models):
    result = CliRunner().invoke(app, ["audit", str(models / "sick.h5"), "--steps", "0", "--json"])
    assert result.exit_code == EXIT_FINDINGS
    assert json.loads(result.stdout)["findings"][0]["code"].startswith("GS2")


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    bad = tmp_path / "random.h5"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    proc = subprocess.run(
        [sys.executable, "-m", "gradscope.cli", "audit", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in proc.stderr
    # The whole of stderr: TensorFlow's start-up notices are muted by the CLI too.
    assert proc.stderr.splitlines() == [
        f"gradscope audit: '{bad}' is neither a .keras archive nor an HDF5 (.h5) model file; "
        "gradscope audits models saved with model.save('model.keras') or model.save('model.h5')."
    ]
