"""The recorded step's per-variable sums and their combination into layer statistics on the host.

Checked against numpy on the concatenated entries (an independent computation), without a fit.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from gradscope.collect.stats import (
    ACT_STAT_ORDER,
    LAYER_STAT_ORDER,
    VAR_GRAD_ORDER,
    act_stats,
    act_stats_rows,
    grad_stats,
    layer_stats,
    update_squares,
    variable_grad_stats,
)
from gradscope.config import ACTIVATION_THRESHOLDS


def _grads(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # Different means and scales per variable: the combination of moments has work to do.
    return [
        rng.normal(0.3, 2.0, size=(5, 4)).astype(np.float32),
        rng.normal(-1.0, 0.1, size=(4,)).astype(np.float32),
        rng.normal(5.0, 1.0, size=(3, 2, 2)).astype(np.float32),
    ]


def test_variable_sums_match_numpy() -> None:
    grads = _grads()
    got = variable_grad_stats([tf.constant(g) for g in grads]).numpy()
    assert got.shape == (3, len(VAR_GRAD_ORDER))
    for row, g in zip(got, grads, strict=True):
        g64 = g.astype(np.float64).ravel()
        column = dict(zip(VAR_GRAD_ORDER, row, strict=True))
        assert column["sum"] == pytest.approx(g64.sum(), rel=1e-5, abs=1e-5)
        assert column["sumsq"] == pytest.approx((g64**2).sum(), rel=1e-5)
        assert column["max"] == g.max() and column["min"] == g.min()
        assert column["nonfinite"] == 0


def test_nonfinite_entries_are_counted_and_overflow_is_not() -> None:
    bad = np.array([1.0, np.nan, np.inf, -np.inf, 2.0], np.float32)
    huge = np.full(3, 1e30, np.float32)  # every entry finite, the squared sum overflows
    got = variable_grad_stats([tf.constant(bad), tf.constant(huge), tf.ones([2])]).numpy()
    nonfinite = got[:, VAR_GRAD_ORDER.index("nonfinite")]
    assert nonfinite.tolist() == [3.0, 0.0, 0.0]
    assert not np.isfinite(got[0, VAR_GRAD_ORDER.index("sumsq")])
    # The overflowed sums are taken again in float64: finite, and exact to float64.
    huge64 = huge.astype(np.float64)
    assert got[1, VAR_GRAD_ORDER.index("sumsq")] == pytest.approx((huge64**2).sum(), rel=1e-12)
    assert got[1, VAR_GRAD_ORDER.index("sum")] == pytest.approx(huge64.sum(), rel=1e-12)
    # So the layer's norm is the gradient's (3**0.5 * 1e30), not an overflow.
    rows, _, _ = layer_stats(got, np.ones((3, 2)), np.arange(3), np.array([5.0, 3.0, 2.0]), 3)
    norm = rows[1, LAYER_STAT_ORDER.index("grad_norm")]
    assert norm == pytest.approx(np.linalg.norm(huge64), rel=1e-12)


def test_weight_squares_are_float32_sums_in_float64() -> None:
    rng = np.random.default_rng(3)
    old = rng.normal(size=(4, 3)).astype(np.float32)
    new = (old + rng.normal(size=old.shape)).astype(np.float32)
    got = update_squares([tf.constant(new)], [tf.constant(old)]).numpy()[0]
    n64, o64 = new.astype(np.float64), old.astype(np.float64)
    assert got.dtype == np.float64
    assert got[0] == pytest.approx((n64**2).sum(), rel=1e-5)
    assert got[1] == pytest.approx(((n64 - o64) ** 2).sum(), rel=1e-5)
    # No retake for weights (a second branch cost every first fit 0.15-0.2 s): past ~1.8e19
    # their squares overflow, as documented.
    huge = update_squares([tf.constant(new * np.float32(1e25))], [tf.constant(old)]).numpy()[0]
    assert np.isinf(huge[0])


def test_layer_statistics_match_numpy_on_concatenated_entries() -> None:
    grads = _grads(1)
    rng = np.random.default_rng(2)
    before = [rng.normal(size=g.shape).astype(np.float32) for g in grads]
    after = [w - 0.01 * g for w, g in zip(before, grads, strict=True)]
    owner = np.array([0, 0, 1])  # layer 0: the first two variables (a kernel and its bias)
    sizes = np.array([g.size for g in grads], np.float64)
    sums = variable_grad_stats([tf.constant(g) for g in grads]).numpy()
    weights = np.array(
        [[(a**2).sum(), ((a - b) ** 2).sum()] for a, b in zip(after, before, strict=True)],
        np.float32,
    )
    rows, var_grad, var_weight = layer_stats(sums, weights, owner, sizes, 2)
    for layer, members in ((0, [0, 1]), (1, [2])):
        g = np.concatenate([grads[j].astype(np.float64).ravel() for j in members])
        w = np.concatenate([after[j].astype(np.float64).ravel() for j in members])
        dw = np.concatenate([(after[j] - before[j]).astype(np.float64).ravel() for j in members])
        got = dict(zip(LAYER_STAT_ORDER, rows[layer], strict=True))
        assert got["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-6)
        assert got["grad_mean"] == pytest.approx(g.mean(), rel=1e-5)
        assert got["grad_std"] == pytest.approx(g.std(), rel=1e-5)
        assert got["grad_max_abs"] == pytest.approx(np.abs(g).max(), rel=1e-7)
        assert got["nonfinite"] == 0
        assert got["weight_norm"] == pytest.approx(np.linalg.norm(w), rel=1e-6)
        assert got["update_norm"] == pytest.approx(np.linalg.norm(dw), rel=1e-4)
        assert got["update_ratio"] == pytest.approx(np.linalg.norm(dw) / np.linalg.norm(w), 1e-4)
    for j, g in enumerate(grads):
        assert var_grad[j] == pytest.approx(np.linalg.norm(g.astype(np.float64)), rel=1e-6)
        assert var_weight[j] == pytest.approx(np.linalg.norm(after[j].astype(np.float64)), 1e-6)


def test_docstring_example_of_layer_stats() -> None:
    # The gradient [3, 4]: sum 7, sum of squares 25, max 4, min 3.
    g = np.array([[7.0, 25.0, 4.0, 3.0, 0.0]])
    rows, _, _ = layer_stats(g, np.ones((1, 2)), np.array([0]), np.array([2.0]), 1)
    assert rows[0, :4].tolist() == [5.0, 3.5, 0.5, 4.0]


def test_one_layer_grad_stats_match_numpy() -> None:
    grads = _grads(3)
    got = grad_stats([tf.constant(g) for g in grads]).numpy()
    g = np.concatenate([x.astype(np.float64).ravel() for x in grads])
    want = [np.linalg.norm(g), g.mean(), g.std(), np.abs(g).max(), 0.0]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_std_from_sums_stays_within_its_documented_error() -> None:
    # sqrt(Σg²/n - mean²) from float32 sums: relative error ~1e-7 x (1 + mean²/std²).
    rng = np.random.default_rng(4)
    for mean, std in ((0.0, 1.0), (10.0, 1.0), (100.0, 1.0)):
        g = rng.normal(mean, std, size=(256, 256)).astype(np.float32)
        got = grad_stats([tf.constant(g)]).numpy()[2]
        want = g.astype(np.float64).std()
        bound = 1e-6 * (1 + (mean / std) ** 2)
        assert abs(got - want) / want < bound, (mean, got, want)
    constant = grad_stats([tf.fill([1000], 3.0)]).numpy()
    assert constant[1] == pytest.approx(3.0) and constant[2] < 1e-3 * 3.0


def _act_reference(x: np.ndarray, kind: str) -> list[float]:
    # The definitions of act_stats' docstring, in float64 numpy.
    t = ACTIVATION_THRESHOLDS
    x64 = x.astype(np.float64)
    dead = sat = np.nan
    if kind in ("relu", "leaky"):
        units = x64.reshape(-1, x64.shape[-1])
        dead = 1.0 - (units > t.dead_output).any(axis=0).mean()
    if kind == "sigmoid":
        sat = ((x64 < t.sigmoid_low) | (x64 > t.sigmoid_high)).mean()
    elif kind == "tanh":
        sat = (np.abs(x64) > t.tanh_abs).mean()
    return [x64.mean(), x64.std(), dead, sat]


def test_activation_rows_match_numpy_for_every_kind_and_rank() -> None:
    rng = np.random.default_rng(5)
    cases = [
        # Dense-like relu with two dead units, a conv-like [batch, h, w, channels] relu output
        # with one dead channel, saturating sigmoid and tanh outputs, and a linear one.
        (np.maximum(rng.normal(size=(16, 6)), 0) * np.array([1, 1, 0, 1, 0, 1]), "relu"),
        (np.maximum(rng.normal(size=(4, 5, 5, 3)), 0) * np.array([1, 0, 1]), "relu"),
        (np.where(rng.normal(size=(8, 7)) > 0, 1.0, -0.01) * rng.random((8, 7)), "leaky"),
        (1 / (1 + np.exp(-rng.normal(0, 6, size=(32, 10)))), "sigmoid"),
        (np.tanh(rng.normal(0, 3, size=(2, 9, 4))), "tanh"),
        (rng.normal(2.0, 0.5, size=(12,)), "linear"),
    ]
    xs = [x.astype(np.float32) for x, _ in cases]
    kinds = [kind for _, kind in cases]
    got = act_stats_rows([tf.constant(x) for x in xs], kinds).numpy()
    assert got.shape == (len(cases), len(ACT_STAT_ORDER))
    traced = tf.function(lambda *ts: act_stats_rows(list(ts), kinds))(*xs).numpy()
    for row, again, x, kind in zip(got, traced, xs, kinds, strict=True):
        want = _act_reference(x, kind)
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6, err_msg=kind)
        np.testing.assert_allclose(again, want, rtol=1e-5, atol=1e-6, err_msg=kind)
        np.testing.assert_array_equal(act_stats(tf.constant(x), kind).numpy(), row)
    assert got[0, 2] == pytest.approx(2 / 6) and got[1, 2] == pytest.approx(1 / 3)
    assert 0 < got[3, 3] < 1 and 0 < got[4, 3] < 1


def test_nonfinite_count_in_a_traced_step_with_unknown_sizes() -> None:
    # The count branch traced with static sizes, and with a dimension unknown until run time.
    bad = np.array([[1.0, np.nan], [np.inf, 2.0], [3.0, 4.0]], np.float32)
    fn = tf.function(variable_grad_stats)
    for spec in (tf.TensorSpec([3, 2]), tf.TensorSpec([None, 2])):
        got = fn.get_concrete_function([spec, tf.TensorSpec([4])])(
            [tf.constant(bad), tf.constant([np.nan] * 4, tf.float32)]
        )
        assert got.numpy()[:, VAR_GRAD_ORDER.index("nonfinite")].tolist() == [2.0, 4.0]
