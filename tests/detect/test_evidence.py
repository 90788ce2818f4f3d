"""Measurement outranks priors: the evidence order, the cost of saturated/dead layers, short runs.

Pure parts on synthetic runs (tests/synthetic_runs.py); the audit on small Keras models, each
checked against an independent computation (tf.GradientTape, NumPy).
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from synthetic_runs import dense, make_run

from gradscope.audit import audit
from gradscope.config import DETECT_THRESHOLDS
from gradscope.detect import detect
from gradscope.detect.cause import CAUSE_KEY
from gradscope.detect.evidence import (
    CAUSES_KEY,
    MEASURED_KEY,
    Measurements,
    reconcile,
    reported_kinds,
)
from gradscope.detect.progress import TREND_MAX_POINTS, assess_progress, loss_trend
from gradscope.findings import Severity, make_finding

# --- short runs: the loss trend -----------------------------------------------------------------


def test_loss_trend_is_theil_sen_and_mann_kendall() -> None:
    rng = np.random.default_rng(0)
    losses = list(2.0 - 0.05 * np.arange(20) + rng.normal(0, 0.1, 20))
    t = loss_trend(losses)
    # Independent: the median of all pairwise slopes, and Kendall's S with its variance.
    pairs = list(itertools.combinations(range(20), 2))
    slopes = [(losses[j] - losses[i]) / (j - i) for i, j in pairs]
    assert t.slope == pytest.approx(float(np.median(slopes)))
    s = sum(np.sign(losses[j] - losses[i]) for i, j in pairs)
    assert t.z == pytest.approx((s + 1) / math.sqrt(20 * 19 * 45 / 18))
    assert t.drop == pytest.approx(-t.slope * 19 / t.start)
    assert loss_trend([1.0, math.nan, None, 0.5], min_records=3) is None


def test_a_long_run_trend_is_taken_on_evenly_spaced_losses() -> None:
    # 100k records would be 5e9 pairs; the trend thins them to TREND_MAX_POINTS evenly spaced
    # losses, and the slope stays the series' own (least squares on the whole series agrees).
    rng = np.random.default_rng(1)
    steps = np.arange(100_000)
    losses = 2.0 - 1e-5 * steps + rng.normal(0, 0.05, steps.size)
    t = loss_trend(list(losses))
    assert t.n == TREND_MAX_POINTS
    assert t.slope == pytest.approx(np.polyfit(steps, losses, 1)[0], rel=0.05)
    assert t.z < -5  # a clear fall stays significant on the thinned series


def test_a_short_run_learns_from_its_own_batches(tmp_path) -> None:
    layers = [dense("a"), dense("out", kind="linear")]
    stats = lambda s: {"a": {"grad_norm": 0.1}, "out": {"grad_norm": 0.1}}  # noqa: E731
    # 20 steps, one epoch, the loss falls by 40 % with noise: learning (trend), not by "halved".
    noise = np.random.default_rng(1).normal(0, 0.05, 20)
    falling = make_run(tmp_path / "f", layers, stats, 20, lambda s: 2.0 - 0.04 * s + noise[s])
    p = assess_progress(falling)
    assert p.loss_drop < DETECT_THRESHOLDS.progress.min_loss_drop  # the old test alone says no
    assert p.learning and p.loss_falling and p.trend.drop > 0.25
    # Falling but only 10 %: the loss falls (significant), the run is not "learning".
    slow = make_run(tmp_path / "s", layers, stats, 20, lambda s: 2.0 - 0.01 * s)
    p = assess_progress(slow)
    assert p.loss_falling and not p.learning
    flat = make_run(tmp_path / "z", layers, stats, 20, lambda s: 2.0 + 0.05 * (-1) ** s)
    assert not assess_progress(flat).loss_falling


# --- saturation and dying ReLU: only when they cost something -----------------------------------


def _sat_run(path, sat_grad: float, loss=lambda s: 2.0 * 0.95**s):
    # Three tanh layers, the middle one 80 % saturated; its gradient RMS is sat_grad x the next's.
    layers = [dense(f"t{i}", kind="tanh") for i in range(3)] + [dense("out", kind="linear")]

    def stats(step):
        out = {f"t{i}": {"grad_norm": 0.1, "sat_frac": 0.0} for i in range(3)}
        out["t1"] = {"grad_norm": 0.1 * sat_grad, "sat_frac": 0.8}
        out["out"] = {"grad_norm": 0.1}
        return out

    return make_run(path, layers, stats, steps=20, loss=loss)


def test_saturation_that_costs_nothing_is_info(tmp_path) -> None:
    (f,) = detect(_sat_run(tmp_path, sat_grad=0.5), kinds=["saturation"])
    assert f.severity is Severity.INFO
    assert "costs nothing measurable" in f.message
    assert f.evidence["cost"]["grad_over_next_layer"]["t1"] == pytest.approx(0.5)


def test_saturation_that_starves_its_layer_warns_even_when_learning(tmp_path) -> None:
    (f,) = detect(_sat_run(tmp_path, sat_grad=0.01), kinds=["saturation"])
    assert f.severity is Severity.WARNING
    assert f.evidence["cost"]["starved"] == {"t1": pytest.approx(0.01)}
    assert f.evidence["progress"]["learning"] is True


def test_saturation_in_a_run_that_does_not_learn_warns(tmp_path) -> None:
    (f,) = detect(_sat_run(tmp_path, 0.5, loss=lambda s: 2.0), kinds=["saturation"])
    assert f.severity is Severity.WARNING and "does not fall" in f.message


def test_dead_units_judged_by_the_dense_before_a_standalone_relu(tmp_path) -> None:
    act = dense("act", kind="relu")
    act = type(act)(**{**act.__dict__, "class_name": "ReLU", "params": 0, "variables": ()})
    layers = [dense("d0"), dense("d1", kind="linear"), act, dense("out", kind="linear")]

    def stats(step):
        return {
            "d0": {"grad_norm": 0.1},
            "d1": {"grad_norm": 0.001},
            "act": {"dead_frac": 0.6},
            "out": {"grad_norm": 0.1},
        }

    run = make_run(tmp_path, layers, stats, steps=20, loss=lambda s: 2.0 * 0.95**s)
    (f,) = detect(run, kinds=["dying_relu"])
    assert f.severity is Severity.WARNING
    assert f.evidence["cost"]["starved"] == {"act": pytest.approx(0.01)}


# --- the evidence order on synthetic runs ------------------------------------------------------


def _stack(severity=Severity.WARNING):
    layers = ("t0", "t1", "t2")
    return make_finding("deep_saturating_stack", severity, layers, "3 tanh layers: risky.", {})


def _flow_run(path, first_grad: float):
    layers = [dense(f"t{i}", kind="tanh") for i in range(3)] + [dense("out", kind="linear")]

    def stats(step):
        return {
            "t0": {"grad_norm": first_grad, "sat_frac": 0.0},
            "t1": {"grad_norm": 0.1, "sat_frac": 0.0},
            "t2": {"grad_norm": 0.1, "sat_frac": 0.0},
            "out": {"grad_norm": 0.1},
        }

    return make_run(path, layers, stats, steps=12)


def test_a_prior_the_run_does_not_confirm_drops_to_info(tmp_path) -> None:
    run = _flow_run(tmp_path, 0.05)
    dynamic = detect(run)
    (f,) = reconcile([_stack()], dynamic, Measurements.of(run))
    assert f.severity is Severity.INFO and f.evidence["prior_severity"] == "warning"
    assert f.message.startswith("3 tanh layers; measured first/last gradient ratio 5.0e-01")
    assert "over 12 steps: no vanishing gradients" in f.message
    assert f.evidence[MEASURED_KEY] in f.message


def test_a_confirmed_prior_becomes_the_cause(tmp_path) -> None:
    run = _flow_run(tmp_path, 1e-6)
    dynamic = detect(run)
    assert [f.kind for f in dynamic] == ["vanishing_gradients"]
    out = reconcile([_stack()], dynamic, Measurements.of(run))
    (f,) = out  # listed once
    assert f.kind == "vanishing_gradients" and f.severity is Severity.ERROR
    assert f.evidence[CAUSE_KEY]["kind"] == "deep_saturating_stack"
    assert [c["code"] for c in f.evidence[CAUSES_KEY]] == ["GS203"]
    assert "Cause, from the architecture (GS203): 3 tanh layers: risky." in f.message
    assert f.fixes[: len(_stack().fixes)] == _stack().fixes
    assert reported_kinds(out) == {"vanishing_gradients", "deep_saturating_stack"}


def test_without_a_measurement_the_prior_stands(tmp_path) -> None:
    prior = _stack()
    assert reconcile([prior], [], None) == [prior]
    few = _flow_run(tmp_path, 0.05)
    short = make_run(tmp_path / "short", few.layers, lambda s: few.records[0].layers, steps=2)
    assert reconcile([prior], [], Measurements.of(short)) == [prior]


def test_rules_without_a_measurement_keep_their_prior(tmp_path) -> None:
    run = _flow_run(tmp_path, 0.05)
    selu = make_finding("selu_misconfigured", Severity.WARNING, ("t0",), "SELU + BN.", {})
    assert reconcile([selu], detect(run), Measurements.of(run)) == [selu]


# --- the audit on real models ------------------------------------------------------------------


def _noisy_binary(n=640, features=16, seed=0):
    # Two classes from a linear rule with 15 % of labels flipped: learnable, never perfectly.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    y = (x @ rng.standard_normal(features) > 0).astype("int32")
    flip = rng.random(n) < 0.15
    return x, np.where(flip, 1 - y, y)


def _deep_tanh(depth=11, width=32, features=16):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((features,))]
        + [keras.layers.Dense(width, "tanh", kernel_initializer="he_uniform") for _ in range(depth)]
        + [keras.layers.Dense(2, "softmax")]
    )
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


@pytest.fixture(scope="module")
def tanh_audit():
    x, y = _noisy_binary()
    model = _deep_tanh()
    # Independent: gradients within an order of magnitude across depth (GradientTape).
    with tf.GradientTape() as tape:
        per_example = keras.losses.sparse_categorical_crossentropy(y[:64], model(x[:64]))
        loss = tf.reduce_mean(per_example)
    grads = tape.gradient(loss, model.trainable_weights)
    kernels = zip(model.trainable_weights, grads, strict=True)
    rms = [float(tf.sqrt(tf.reduce_mean(g**2))) for w, g in kernels if w.path.endswith("kernel")]
    return model, audit(model, data=(x, y), steps=20), rms


def test_deep_tanh_he_net_that_trains_gets_no_warning(tanh_audit) -> None:
    _, result, rms = tanh_audit
    assert min(rms) / max(rms) > 0.1
    assert result.worst is Severity.INFO
    stack = {f.kind: f for f in result.findings}["deep_saturating_stack"]
    assert stack.severity is Severity.INFO and stack.evidence["prior_severity"] == "warning"
    assert stack.message.startswith("11 consecutive tanh layers without normalization; measured")
    assert len(rms) == 12 and "over 20 steps: no vanishing gradients" in stack.message


def test_deep_tanh_he_net_steps_zero_keeps_the_prior(tanh_audit) -> None:
    model, _, _ = tanh_audit
    result = audit(model, steps=0)
    stack = {f.kind: f for f in result.findings}["deep_saturating_stack"]
    assert stack.severity is Severity.WARNING and MEASURED_KEY not in stack.evidence


def test_deep_sigmoid_keeps_its_warnings_with_the_static_cause() -> None:
    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=1.0)
    model = keras.Sequential(
        [keras.Input((16,))]
        + [keras.layers.Dense(64, "sigmoid", kernel_initializer=init) for _ in range(8)]
        + [keras.layers.Dense(3, "softmax")]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    result = audit(model, steps=8)
    kinds = reported_kinds(result.findings)
    assert {"vanishing_gradients", "deep_saturating_stack", "init_activation_mismatch"} <= kinds
    listed = [f.kind for f in result.findings]
    assert "deep_saturating_stack" not in listed  # attached as a cause, not listed twice
    vanishing = {f.kind: f for f in result.findings}["vanishing_gradients"]
    assert vanishing.severity >= Severity.WARNING
    causes = {c["kind"] for c in vanishing.evidence[CAUSES_KEY]}
    assert "deep_saturating_stack" in causes


def _lstm(functional: bool):
    keras.utils.set_random_seed(0)
    if functional:
        inp = keras.Input((12, 4))
        model = keras.Model(inp, keras.layers.Dense(1, "sigmoid")(keras.layers.LSTM(16)(inp)))
    else:
        model = keras.Sequential(
            [keras.Input((12, 4)), keras.layers.LSTM(16), keras.layers.Dense(1, "sigmoid")]
        )
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])  # no clipnorm, as usual
    return model


@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional_file"])
def test_textbook_adam_lstm_gets_no_warning(functional, tmp_path) -> None:
    model = _lstm(functional)
    target = model
    if functional:
        target = tmp_path / "lstm.keras"
        model.save(target)
    prior = {f.kind: f for f in audit(target, steps=0).findings}["missing_clipping"]
    assert prior.severity is Severity.WARNING  # the static rule runs on the file
    result = audit(target, steps=10)
    clip = {f.kind: f for f in result.findings}["missing_clipping"]
    assert result.worst is Severity.INFO and clip.severity is Severity.INFO
    # Independent: the growth quoted is end/start of the total norm in quadrature, NumPy medians.
    names = [x.name for x in result.run.layers if x.params > 0]
    totals = [
        math.sqrt(sum(r.layers[n]["grad_norm"] ** 2 for n in names if n in r.layers))
        for r in result.run.records
    ]
    growth = float(np.median(totals[-5:]) / np.median(totals[:3]))
    assert f"({growth:.2g}x)" in clip.message and growth < 10
