"""audit(): static rules + probe on a clone, on live models and saved files."""

import hashlib
import json

import keras
import numpy as np
import pytest
from legacy_models import write_keras22_h5

from gradscope.audit import audit
from gradscope.audit.probe import check_data, infer_loss, probe, synthetic_data
from gradscope.detect.evidence import reported_kinds
from gradscope.errors import GradscopeInputError
from gradscope.findings import Severity, read_findings


def mlp(depth, width, act, init, optimizer="adam", n_in=32, out=10):
    model = keras.Sequential(
        [keras.Input((n_in,))]
        + [keras.layers.Dense(width, activation=act, kernel_initializer=init) for _ in range(depth)]
        + [keras.layers.Dense(out, activation="softmax")]
    )
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model


def serious(result):
    # Kinds at warning or above, with the static rules the probe confirmed (attached as causes).
    return reported_kinds(result.findings)


@pytest.fixture(scope="module")
def sick():
    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=1.0)
    return mlp(10, 256, "sigmoid", init, keras.optimizers.SGD(0.01))


@pytest.fixture(scope="module")
def saved(sick, tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    sick.save(root / "sick.h5")
    sick.save(root / "sick.keras")
    keras.utils.set_random_seed(0)
    healthy = mlp(3, 64, "relu", "he_normal")
    healthy.save(root / "healthy.h5")
    return root


def test_probe_never_mutates_the_model(sick, tmp_path):
    before = [w.copy() for w in sick.get_weights()]
    optimizer_iterations = int(sick.optimizer.iterations.numpy())
    run = probe(sick, steps=6, log_dir=tmp_path / "run")
    assert run.steps.tolist() == list(range(6))
    for a, b in zip(before, sick.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(sick.optimizer.iterations.numpy()) == optimizer_iterations
    # ... while the clone did train: its first layer's recorded updates are non-zero.
    _, updates = run.series("update_ratio", run.layer_names[0])
    assert (updates > 0).all()


def test_audit_live_sick_model(sick, tmp_path):
    result = audit(sick, log_dir=tmp_path / "run")  # the light probe, 8 steps
    assert result.run.meta.config["probe"] == "light" and len(result.run.records) == 8
    expected = {"vanishing_gradients", "saturation", "deep_saturating_stack"}
    assert expected | {"init_activation_mismatch"} <= serious(result)
    assert result.worst is Severity.WARNING
    assert read_findings(result.run_dir) == result.findings  # findings.json holds static + probe


def test_audit_h5_file_unchanged(saved):
    path = saved / "sick.h5"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = audit(path)
    assert {"vanishing_gradients", "saturation"} <= serious(result)
    # The probe trained with the optimizer stored in the file (SGD), as the user would.
    assert result.run.meta.optimizer["class"] == "SGD"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_audit_keras_file(saved):
    result = audit(saved / "sick.keras")
    assert {"saturation", "deep_saturating_stack"} <= serious(result)


def test_audit_healthy_file_is_quiet(saved):
    result = audit(saved / "healthy.h5")
    assert serious(result) == set()
    doc = json.loads((result.run_dir / "findings.json").read_text())
    assert all(f["severity"] == "info" for f in doc["findings"])


def test_audit_keras22_file(tmp_path):
    result = audit(write_keras22_h5(tmp_path / "old.h5", depth=6))
    assert result.notes == []
    assert result.run is not None and len(result.run.records) >= 3
    mismatch = {f.kind: f for f in result.findings}["init_activation_mismatch"]
    # 6 ReLU x Glorot is a warning by the rule alone; the probe measured healthy gradients.
    assert mismatch.evidence["prior_severity"] == "warning"
    ratio = result.run and mismatch.evidence["measured"]
    assert mismatch.severity is Severity.INFO and "first/last gradient ratio" in ratio
    static = audit(write_keras22_h5(tmp_path / "old0.h5", depth=6), steps=0).findings
    assert {f.kind: f.severity for f in static}["init_activation_mismatch"] is Severity.WARNING


def test_audit_with_real_data_and_steps_zero(sick, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 32)).astype("float32")
    y = rng.integers(0, 10, 40)
    result = audit(sick, data=(x, y), steps=3, log_dir=tmp_path / "r")
    assert len(result.run.records) == 3
    assert "probe" not in result.run.meta.config  # explicit --steps: the recorded probe
    static_only = audit(sick, steps=0)
    assert static_only.run is None and "deep_saturating_stack" in serious(static_only)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((0, 32), "float32"), np.zeros(0), "zero examples"),
        (np.zeros((4, 32), "float32"), np.zeros(3), "differ in length"),
        (np.full((4, 32), np.nan, "float32"), np.zeros(4), "NaN or Inf"),
        (np.zeros((4, 31), "float32"), np.zeros(4), "expects"),
        (np.array([["a"] * 32] * 4), np.zeros(4), "numeric"),
    ],
    ids=["empty", "length", "nan", "shape", "strings"],
)
def test_bad_data(sick, x, y, message):
    with pytest.raises(GradscopeInputError, match=message):
        check_data(sick, x, y)


def test_synthetic_targets_match_the_loss():
    model = mlp(1, 4, "relu", "he_normal", n_in=5, out=3)
    data = synthetic_data(model, "sparse_categorical_crossentropy", 50)
    assert data.x.shape == (50, 5) and data.y.dtype == np.int32
    assert set(np.unique(data.y)) <= {0, 1, 2}
    onehot = synthetic_data(model, "categorical_crossentropy", 20).y
    np.testing.assert_array_equal(onehot.sum(axis=1), np.ones(20))
    assert abs(float(data.x.mean())) < 0.3 and 0.8 < float(data.x.std()) < 1.2
    reg = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    assert infer_loss(reg) == "mse"
    binary = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")])
    assert infer_loss(binary) == "binary_crossentropy"
    assert set(np.unique(synthetic_data(binary, "binary_crossentropy", 30).y)) <= {0.0, 1.0}


def test_huge_declared_input_is_refused():
    model = keras.Sequential([keras.Input((4000, 4000)), keras.layers.Dense(1)])
    with pytest.raises(GradscopeInputError, match="refusing to allocate"):
        audit(model, steps=2)


def test_model_without_trainable_weights():
    model = mlp(1, 4, "relu", "he_normal")
    model.trainable = False
    with pytest.raises(GradscopeInputError, match="no trainable weights"):
        audit(model)
