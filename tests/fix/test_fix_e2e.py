"""End to end on the chapter's deep sigmoid MLP and digits: `gradscope fix --auto`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from gradscope.cli import app
from gradscope.demo import load_digits_data, sick_model

STEPS = 40


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fixed_run(tmp_path_factory):
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("fix")
    model = sick_model()
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model_path = root / "sick.keras"
    model.save(model_path)
    x, y = load_digits_data()
    np.savez(root / "digits.npz", x=x, y=y)
    digest = sha256(model_path)
    out = root / "fixed.keras"
    args = [
        "fix",
        str(model_path),
        "-o",
        str(out),
        "--auto",
        "--data",
        str(root / "digits.npz"),
        "--steps",
        str(STEPS),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    return {"root": root, "model": model_path, "out": out, "digest": digest, "result": result}


def test_auto_fix_verifies_and_writes_model(fixed_run):
    result = fixed_run["result"]
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verified"] is True
    assert doc["applied"] and doc["applied"][0] in {
        "relu_activation",
        "selu_activation",
        "elu_activation",
        "leaky_relu_activation",
    }
    before, after = doc["overall"]["before"], doc["overall"]["after"]

    # Gradient ratio first/last, recomputed from the per-layer RMS values in the JSON.
    def ratio(stats):
        rms = list(stats["grad_rms"].values())
        return rms[0] / rms[-1]

    assert ratio(before) == pytest.approx(before["first_last_grad_ratio"])
    assert ratio(after) == pytest.approx(after["first_last_grad_ratio"])
    assert ratio(before) < 1e-4  # the chapter's sick network
    assert abs(np.log10(ratio(before))) - abs(np.log10(ratio(after))) >= 2  # >= 100x closer to 1
    assert after["final_loss"] < before["final_loss"]
    before_kinds = {f["kind"] for f in before["findings"]}
    after_kinds = {f["kind"] for f in after["findings"]}
    assert "vanishing_gradients" in before_kinds
    assert "vanishing_gradients" not in after_kinds
    assert fixed_run["out"].exists()
    # Verified by learning: 256 digits held out of the trial's 256 scored after each pass; the
    # fixed copy ends with a lower loss and a higher accuracy, trained with the file's SGD(0.05).
    curves = doc["curves"]
    assert curves["before"]["examples"] == curves["after"]["examples"] == 256
    assert curves["before"]["held_out"] and curves["after"]["held_out"]
    b_end, a_end = curves["before"]["points"][-1], curves["after"]["points"][-1]
    assert a_end["loss"] < b_end["loss"] and a_end["accuracy"] > b_end["accuracy"] + 0.05
    assert doc["overall"]["learns_better"] is True
    assert doc["setup"]["optimizer"] == "SGD" and doc["setup"]["learning_rate"] == 0.05
    assert doc["setup"]["sources"]["optimizer"] == "model"


def test_original_file_is_byte_identical(fixed_run):
    assert sha256(fixed_run["model"]) == fixed_run["digest"]
    leftovers = [p.name for p in fixed_run["root"].iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_saved_model_gradients_flow_independently(fixed_run):
    # Independent of GradScope: a plain GradientTape on one digits batch.
    x, y = load_digits_data()
    fixed = keras.models.load_model(fixed_run["out"])
    original = keras.models.load_model(fixed_run["model"])

    def first_last(model):
        kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
        with tf.GradientTape() as tape:
            pred = model(x[:256], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y[:256], pred))
        grads = tape.gradient(loss, kernels)
        return float(tf.norm(grads[0]) / tf.norm(grads[-1]))

    assert first_last(original) < 1e-4
    assert first_last(fixed) > 1e-2


def test_saved_model_loads_without_gradscope(fixed_run):
    code = textwrap.dedent(
        f"""
        import sys
        import keras
        model = keras.models.load_model({str(fixed_run["out"])!r})
        assert "gradscope" not in sys.modules
        lr = float(model.optimizer.learning_rate.numpy())
        print(model.layers[0].activation.__name__, type(model.optimizer).__name__, lr, model.loss)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    activation, optimizer, lr, loss = proc.stdout.split()
    assert activation != "sigmoid"
    # The user's compile settings travel with the fixed model.
    assert (optimizer, loss) == ("SGD", "sparse_categorical_crossentropy")
    assert float(lr) == pytest.approx(0.05)


def test_bad_input_exits_2_with_one_line(tmp_path, fixed_run):
    runner = CliRunner()
    missing = runner.invoke(app, ["fix", str(tmp_path / "nope.keras"), "-o", "x.keras", "--auto"])
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output
    same = runner.invoke(
        app, ["fix", str(fixed_run["model"]), "-o", str(fixed_run["model"]), "--auto"]
    )
    assert same.exit_code == 2 and "never overwritten" in same.output
    unknown = runner.invoke(
        app, ["fix", str(fixed_run["model"]), "-o", str(tmp_path / "f.keras"), "--apply", "magic"]
    )
    assert unknown.exit_code == 2 and "magic" in unknown.output
    assert sha256(fixed_run["model"]) == fixed_run["digest"]
