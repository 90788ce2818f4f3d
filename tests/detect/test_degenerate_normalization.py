"""Normalization over a single element (issue 15, item 6a).

A LayerNormalization over an axis of size 1 subtracts each value from itself: its output is its
offset beta whatever the input, so every gradient before it is exactly zero (the keras-io
time-series transformer does not learn under Keras 3 for this reason). The model description
records each layer's input shape and how many elements a per-example normalization reduces over.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from synthetic_runs import dense, make_run

from gradscope import GradScope, load_run
from gradscope.audit import audit
from gradscope.config import DETECT_THRESHOLDS
from gradscope.data import LayerInfo
from gradscope.detect import detect
from gradscope.detect.cause import CAUSE_FIXES, CAUSE_KEY, gradient_stop
from gradscope.detect.rank import Fit, ModelTraits, rank_fix
from gradscope.detect.static import static_findings
from gradscope.detect.window import last_window, single_element_normalization
from gradscope.findings import KINDS, Finding, Severity, make_finding
from gradscope.fix.plan import plan_fixes
from gradscope.model.extract import spec_from_model
from gradscope.model.loader import load_model_safely
from gradscope.model.shapes import normalized_size, stored_input_shape
from gradscope.remedies import get_fix


@pytest.mark.parametrize(
    ("class_name", "config", "shape", "expected"),
    [
        ("LayerNormalization", {"axis": -1}, (500, 1), 1),
        ("LayerNormalization", {"axis": [-1]}, (500, 16), 16),
        ("LayerNormalization", {"axis": [1, 2]}, (500, 1), 500),
        ("LayerNormalization", {}, (7, 1), 1),  # Keras's default axis=-1
        ("RMSNormalization", {"axis": -1}, (10, 1), 1),
        ("UnitNormalization", {"axis": 2}, (10, 1), 1),
        ("GroupNormalization", {"groups": -1}, (64,), 1),  # instance norm of a Dense output
        ("GroupNormalization", {"groups": 64, "axis": -1}, (64,), 1),
        ("GroupNormalization", {"groups": 8}, (64,), 8),
        ("GroupNormalization", {"groups": -1}, (28, 28, 3), 784),  # spatial axes count
        ("LayerNormalization", {"axis": -1}, (500, None), None),  # unknown size
        ("LayerNormalization", {"axis": 0}, (500, 1), None),  # the batch axis: not per example
        ("LayerNormalization", {"axis": -1}, None, None),
        ("BatchNormalization", {"axis": -1}, (500, 1), None),  # normalizes over the batch
        ("GroupNormalization", {"groups": 5}, (64,), None),  # Keras refuses 64 % 5
    ],
)
def test_normalized_size(class_name, config, shape, expected) -> None:
    assert normalized_size(class_name, config, shape) == expected


def test_stored_input_shape_reads_build_config_then_the_first_call() -> None:
    assert stored_input_shape({"build_config": {"input_shape": [None, 500, 1]}}) == (500, 1)
    call = {"class_name": "__keras_tensor__", "config": {"shape": [None, 8]}}
    assert stored_input_shape({"inbound_nodes": [{"args": [call]}]}) == (8,)
    assert stored_input_shape({"inbound_nodes": [{"args": (call,)}]}) == (8,)
    assert stored_input_shape({"build_config": {"input_shape": [[None, 2], [None, 3]]}}) is None
    assert stored_input_shape({"inbound_nodes": [[["dense", 0, 0, {}]]]}) is None  # Keras 2
    assert stored_input_shape({}) is None


def test_spec_records_input_shapes_and_normalized_sizes() -> None:
    inputs = keras.Input((16, 1))
    x = keras.layers.Dense(1, name="to_one")(inputs)
    ln = keras.layers.LayerNormalization(name="ln")(x)
    unit = keras.layers.UnitNormalization(name="unit")(x)
    wide = keras.layers.LayerNormalization(name="wide")(keras.layers.Dense(16)(x))
    merged = keras.layers.Concatenate(name="merge")([ln, unit, wide])
    model = keras.Model(inputs, keras.layers.Dense(1)(merged))
    layers = {x.name: x for x in spec_from_model(model).layers}
    assert layers["to_one"].input_shape == (16, 1)
    assert layers["ln"].input_shape == (16, 1) and layers["ln"].normalized_size == 1
    assert layers["unit"].normalized_size == 1  # no build_config: read from its call
    assert layers["wide"].normalized_size == 16
    assert layers["to_one"].normalized_size is None
    assert layers["merge"].input_shape is None  # several inputs


# --- The rule and the named cause on a model of the keras-io transformer's shape -------------

T = 16


def _block_model(d_model: int | None) -> keras.Model:
    """keras-io's time-series transformer block on a one-feature series.

    ``d_model=None`` keeps the series' single feature, as the published example does: the
    attention's output has one feature and LayerNormalization(axis=-1) normalizes over it.
    ``d_model=16`` projects the input first (the healthy control).
    """
    inputs = keras.Input((T, 1))
    x = inputs if d_model is None else keras.layers.Dense(d_model, name="project")(inputs)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(x, x)
    normed = keras.layers.LayerNormalization(axis=-1, epsilon=1e-6, name="ln")(attended)
    x = keras.layers.Add()([normed, x])
    x = keras.layers.Dense(16, activation="relu", name="ffn")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(x))
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    return model


def _series(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 1)).astype("float32")
    return x, x[:, : T // 2, 0].mean(axis=1, keepdims=True)


def test_gradient_tape_shows_zero_gradients_before_the_layer_norm() -> None:
    # Independent of gradscope: what the rule and the cause claim.
    keras.utils.set_random_seed(0)
    x, y = _series(32)
    for d_model, zero in ((None, True), (16, False)):
        model = _block_model(d_model)
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        before = [
            g
            for v, g in zip(model.trainable_variables, grads, strict=True)
            if v.path.startswith("attention/")
        ]
        assert before
        assert all(bool(tf.reduce_all(g == 0)) for g in before) is zero, d_model


def test_layer_norm_right_after_a_one_feature_input() -> None:
    # Input((T, 1)) -> LayerNormalization(axis=-1) -> Dense: the model cannot see its input.
    model = keras.Sequential(
        [
            keras.Input((T, 1)),
            keras.layers.LayerNormalization(axis=-1, name="ln"),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    x = tf.Variable(_series(8)[0])
    with tf.GradientTape() as tape:
        out = model(x, training=True)
    assert bool(tf.reduce_all(tape.gradient(out, x) == 0))
    found = _kinds(static_findings(spec_from_model(model)))
    assert found["degenerate_normalization"].layers == ("ln",)


def _kinds(findings) -> dict[str, Finding]:
    return {f.kind: f for f in findings}


def test_static_rule_fires_on_the_live_model_and_its_keras_file(tmp_path) -> None:
    model = _block_model(None)
    live = _kinds(static_findings(spec_from_model(model)))["degenerate_normalization"]
    assert (live.code, live.severity, live.layers) == ("GS205", Severity.ERROR, ("ln",))
    assert live.fixes == ("widen_normalization",)
    assert "'ln'" in live.message and "(None, 16, 1)" in live.message
    assert live.evidence["normalized_size"] == {"ln": 1}
    path = tmp_path / "transformer.keras"
    model.save(path)
    stored = load_model_safely(path).stored.spec
    assert _kinds(static_findings(stored))["degenerate_normalization"] == live


def test_healthy_control_normalizes_over_sixteen_features(tmp_path) -> None:
    model = _block_model(16)
    spec = spec_from_model(model)
    assert {x.name: x.normalized_size for x in spec.layers}["ln"] == 16
    assert "degenerate_normalization" not in _kinds(static_findings(spec))
    keras.utils.set_random_seed(0)
    x, y = _series()
    callback = GradScope(tmp_path / "runs", verbose=0)
    model.fit(x, y, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    findings = detect(load_run(callback.run_dir))
    assert not [f for f in findings if CAUSE_KEY in f.evidence]
    assert "vanishing_gradients" not in _kinds(findings)


def test_callback_run_names_the_layer_norm_as_the_cause(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    model = _block_model(None)
    x, y = _series()
    callback = GradScope(tmp_path / "runs", verbose=0)
    model.fit(x, y, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    run = load_run(callback.run_dir)
    # The run itself shows the cut: the attention's gradient is exactly zero at every record.
    assert all(r.layers["attention"]["grad_norm"] == 0.0 for r in run.records)
    assert any(r.layers["ln"]["grad_norm"] > 0.0 for r in run.records)  # its beta learns
    vanishing = _kinds(detect(run))["vanishing_gradients"]
    assert vanishing.severity is Severity.ERROR
    cause = vanishing.evidence[CAUSE_KEY]
    assert cause["layer"] == "ln" and cause["layers"] == ["ln"]
    assert cause["kind"] == "degenerate_normalization" and cause["single_element"] is True
    assert cause["zero_gradient_layers"] == ["attention"]
    assert "'ln'" in vanishing.message and "single element" in vanishing.message
    assert vanishing.fixes == ("widen_normalization",)
    assert "attention" in vanishing.layers


def test_audit_of_the_saved_file_reports_the_rule_and_the_probe_names_the_cause(tmp_path) -> None:
    path = tmp_path / "transformer.keras"
    _block_model(None).save(path)
    result = audit(path, steps=12, log_dir=tmp_path / "probe")
    found = _kinds(result.findings)
    assert found["degenerate_normalization"].layers == ("ln",)
    vanishing = found["vanishing_gradients"]  # from the probe's run
    assert vanishing.evidence[CAUSE_KEY]["layer"] == "ln"
    assert vanishing.fixes == ("widen_normalization",)


# --- The cause on synthetic runs: when the zeros are, and are not, put down to a normalization -


def _layer(name: str, cls: str, params: int, variables: tuple[str, ...]) -> LayerInfo:
    return LayerInfo(name, cls, params=params, variables=variables)


def _norm_run(path, norm: LayerInfo, dead: float = 0.0, zero_before: bool = True):
    layers = [dense("d0"), dense("d1"), norm, dense("d2"), dense("out", kind="linear")]

    def stats(step: int) -> dict[str, dict[str, float]]:
        out = {}
        for info in layers:
            zero = zero_before and info.name in ("d0", "d1")
            out[info.name] = {
                "grad_norm": 0.0 if zero else 0.5,
                "weight_norm": 1.0,
                "update_ratio": 0.0 if zero else 1e-3,
                "nonfinite": 0.0,
                "dead_frac": dead if info.name == "d1" else 0.0,
            }
        return out

    return make_run(path, layers, stats)


def test_gradient_stop_on_synthetic_runs(tmp_path) -> None:
    th = DETECT_THRESHOLDS
    dead_at = th.dying_relu.error_fraction
    ln = _layer("ln", "LayerNormalization", 2, ("gamma", "beta"))
    run = _norm_run(tmp_path / "proven", ln)
    stop = gradient_stop(run, last_window(run.records, th.window), dead_at)
    assert stop is not None and stop.layers == ("ln",) and stop.single_element
    assert stop.zero_layers == ("d0", "d1")
    # A wide LayerNormalization (64 values per variable) after zero gradients: named from the
    # zeros alone, and said so.
    wide = _layer("ln", "LayerNormalization", 128, ("gamma", "beta"))
    run = _norm_run(tmp_path / "zeros", wide)
    stop = gradient_stop(run, run.records, dead_at)
    assert stop is not None and not stop.single_element
    assert "passes no gradient" in stop.text
    # ... but not when dead ReLU units explain the zeros (the dying ReLU finding says that).
    run = _norm_run(tmp_path / "dead", wide, dead=1.0)
    assert gradient_stop(run, run.records, dead_at) is None
    run = _norm_run(tmp_path / "dead_proven", ln, dead=1.0)
    assert gradient_stop(run, run.records, dead_at) is not None  # parameters prove it
    # Gradients that are small but not zero, a BatchNormalization, a healthy run: no cause.
    run = _norm_run(tmp_path / "healthy", ln, zero_before=False)
    assert gradient_stop(run, run.records, dead_at) is None
    bn = _layer("ln", "BatchNormalization", 4, ("gamma", "beta"))
    run = _norm_run(tmp_path / "bn", bn)
    assert gradient_stop(run, run.records, dead_at) is None
    vanishing = {f.kind: f for f in detect(run)}["vanishing_gradients"]
    assert CAUSE_KEY not in vanishing.evidence and "widen_normalization" not in vanishing.fixes


def test_widen_normalization_fits_only_models_that_need_it() -> None:
    ln = _layer("ln", "LayerNormalization", 2, ("gamma", "beta"))
    assert single_element_normalization(ln)
    assert not single_element_normalization(_layer("g", "GroupNormalization", 2, ("gamma", "beta")))
    hidden = [dense("d0"), dense("out")]
    fit = {
        "proven": ModelTraits.from_layers([hidden[0], ln, hidden[1]]),
        "none": ModelTraits.from_layers(hidden),
        "unknown": ModelTraits.from_layers([hidden[0], _layer("u", "UnitNormalization", 0, ())]),
        "spec": ModelTraits.from_spec(spec_from_model(_block_model(None))),
        "spec_healthy": ModelTraits.from_spec(spec_from_model(_block_model(16))),
    }
    got = {k: rank_fix("widen_normalization", t).fit for k, t in fit.items()}
    assert got == {
        "proven": Fit.TARGETS,
        "none": Fit.NO_FIT,
        "unknown": Fit.GENERIC,
        "spec": Fit.TARGETS,
        "spec_healthy": Fit.NO_FIT,
    }


@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.GroupNormalization(groups=-1, name="norm"),
        keras.layers.UnitNormalization(name="norm"),
        keras.layers.RMSNormalization(name="norm"),
    ],
    ids=lambda x: type(x).__name__,
)
def test_static_rule_covers_other_single_element_normalizations(layer) -> None:
    # GroupNormalization(groups=-1) after a Dense: one channel per group and no other axis.
    # Unit/RMS normalization over a one-feature axis: only the input's sign is left.
    inputs = keras.Input((T, 4))
    x = keras.layers.Dense(8 if isinstance(layer, keras.layers.GroupNormalization) else 1)(inputs)
    if isinstance(layer, keras.layers.GroupNormalization):
        x = keras.layers.Flatten()(x)
    x = layer(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    found = _kinds(static_findings(spec_from_model(model)))["degenerate_normalization"]
    assert found.layers == ("norm",)
    assert ("offset beta" in found.message) is isinstance(layer, keras.layers.GroupNormalization)


def test_the_advice_is_offered_only_where_a_finding_names_the_cause() -> None:
    # widen_normalization is a cause fix of vanishing_gradients, not one of its answers: the fix
    # planner lists it for the finding that names the cause, not for every vanishing finding.
    info = KINDS["vanishing_gradients"]
    assert "widen_normalization" in info.causes and "widen_normalization" not in info.answers
    assert get_fix("widen_normalization").answers == {"degenerate_normalization"}
    named = make_finding(
        "vanishing_gradients", Severity.ERROR, ("attention",), "m", {}, CAUSE_FIXES
    )
    plain = make_finding("vanishing_gradients", Severity.ERROR, ("attention",), "m", {})
    model = _block_model(None)
    assert "widen_normalization" in dict(plan_fixes([named], model).manual)
    assert "widen_normalization" not in dict(plan_fixes([plain], model).manual)
    with pytest.raises(ValueError, match="do not answer"):
        make_finding("saturation", Severity.ERROR, (), "m", {}, CAUSE_FIXES)
