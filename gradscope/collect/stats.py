"""In-graph reducers: a few scalars from gradient, weight and activation tensors.

Each function takes TensorFlow tensors and returns a small float32 tensor; all of them trace into a
``tf.function`` (and XLA) and never copy a full tensor to the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from gradscope.config import ACTIVATION_THRESHOLDS, HISTOGRAM_BINS, ActivationThresholds
from gradscope.data.schema import GRAD_STATS, WEIGHT_STATS

#: Columns of :func:`variable_grad_stats`: sums a layer's statistics are derived from on the host
#: (:func:`gradscope.collect.readout.layer_stats`), per variable.
VAR_GRAD_ORDER: tuple[str, ...] = ("sum", "sumsq", "max", "min", "nonfinite")
#: Columns of the weight half, written after the update: ``‖w‖²`` and ``‖Δw‖²`` per variable.
VAR_WEIGHT_ORDER: tuple[str, ...] = ("weight_sq", "update_sq")
#: Columns of :func:`layer_stats`'s per-layer rows: the record's names.
LAYER_STAT_ORDER: tuple[str, ...] = GRAD_STATS + WEIGHT_STATS
#: Order of the values returned by :func:`act_stats`.
ACT_STAT_ORDER: tuple[str, ...] = ("act_mean", "act_std", "dead_frac", "sat_frac")


def _flat32(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    parts = []
    for t in tensors:
        if isinstance(t, tf.IndexedSlices):
            t = tf.convert_to_tensor(t)
        parts.append(tf.reshape(tf.cast(t, tf.float32), [-1]))
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _dense32(tensor: tf.Tensor) -> tf.Tensor:
    # Not flattened: every reduction here takes any shape, and on small models the recorded
    # step's cost is mostly its op count.
    if isinstance(tensor, tf.IndexedSlices):
        tensor = tf.convert_to_tensor(tensor)
    return tf.cast(tensor, tf.float32)


def _twice(halves: list[tf.Tensor]) -> tf.Tensor:
    # l2_loss is one fused kernel for sum(x²) / 2 (no squared temporary); one multiply per
    # column rather than per variable.
    return 2.0 * tf.stack(halves)


# Not converted by AutoGraph when traced from a user's tf.function (Scope): plain Python over a
# list of tensors, which AutoGraph's zip does not take as is.
@tf.autograph.experimental.do_not_convert
def variable_grad_stats(grads: Sequence[tf.Tensor]) -> tf.Tensor:
    """Per-variable sums of a step's gradients, in ``VAR_GRAD_ORDER``.

    Only sums, squared sums and extremes are reduced in the step, four passes over each
    gradient; a layer's norm, mean, standard deviation and max |g| are combined from them on
    the host (:func:`layer_stats`). On a 10×256 MLP this is ~0.55 ms of CPU a recorded step
    against ~2 ms for per-layer concatenations and segment reductions with a two-pass standard
    deviation (0.85 ms with a per-variable second pass; see ``reports/benchmarks.md``).
    Non-finite entries are counted only when a squared sum is not finite (a NaN or Inf entry
    makes it so), in one ``tf.cond`` for all variables.

    Args:
        grads: one gradient tensor per variable (dense or ``tf.IndexedSlices``).

    Returns:
        float32 ``[len(grads), 5]``.

    Example:
        >>> variable_grad_stats([tf.constant([3.0, 4.0])]).numpy()[0, :2].tolist()
        [7.0, 25.0]
    """
    dense = [_dense32(g) for g in grads]
    sumsq = _twice([tf.nn.l2_loss(g) for g in dense])
    columns = [
        tf.stack([tf.reduce_sum(g) for g in dense]),
        sumsq,
        tf.stack([tf.reduce_max(g) for g in dense]),
        tf.stack([tf.reduce_min(g) for g in dense]),
    ]

    def count() -> tf.Tensor:
        bad = [tf.logical_not(tf.math.is_finite(g)) for g in dense]
        return tf.stack([tf.reduce_sum(tf.cast(b, tf.float32)) for b in bad])

    finite = tf.reduce_all(tf.math.is_finite(sumsq))
    columns.append(tf.cond(finite, lambda: tf.zeros([len(dense)], tf.float32), count))
    return tf.stack(columns, axis=1)


def layer_stats(
    grads: np.ndarray, weights: np.ndarray, owner: np.ndarray, sizes: np.ndarray, n_layers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combines one record's per-variable sums into per-layer and per-variable statistics.

    The one place a layer's gradient norm, mean, standard deviation and max |g|, and its weight
    and update norms, are derived (the step reduces only per-variable sums, see
    :func:`gradscope.collect.stats.variable_grad_stats`). The (population) standard deviation
    is ``sqrt(Σg²/n - mean²)`` in float64 from the float32 sums: its relative error is about
    1e-7 × (1 + mean²/std²), against numpy's two-pass one (gradients have |mean| of the order
    of std or below; a constant gradient shows a std of ~3e-4 × |mean| instead of 0).

    Args:
        grads: ``[variables, len(VAR_GRAD_ORDER)]`` rows of one record.
        weights: ``[variables, len(VAR_WEIGHT_ORDER)]`` rows of the same record.
        owner: for each variable, the index of its layer (``< n_layers``).
        sizes: for each variable, its number of entries.
        n_layers: number of layers.

    Returns:
        ``(layers, var_grad_norm, var_weight_norm)``: float64 ``[layers, 8]`` in
        ``LAYER_STAT_ORDER``, and ``[variables]`` norms.

    Example:
        >>> g = np.array([[7.0, 25.0, 4.0, 3.0, 0.0]])  # the gradient [3, 4]
        >>> rows, _, _ = layer_stats(g, np.ones((1, 2)), np.array([0]), np.array([2.0]), 1)
        >>> rows[0, :4].tolist()  # norm, mean, std, max |g|
        [5.0, 3.5, 0.5, 4.0]
    """
    n_vars = len(sizes)
    g = grads[:n_vars].astype(np.float64)
    w = weights[:n_vars].astype(np.float64)
    size = np.asarray(sizes, np.float64)

    def per_layer(values: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=values, minlength=n_layers)

    count = per_layer(size)
    total = per_layer(g[:, 0])
    mean = total / np.maximum(count, 1)
    max_abs = np.full(n_layers, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN and Inf are evidence: kept
        np.maximum.at(max_abs, owner, np.maximum(g[:, 2], -g[:, 3]))
        weight_norm = np.sqrt(per_layer(w[:, 0]))
        update_norm = np.sqrt(per_layer(w[:, 1]))
        ratio = np.where(weight_norm > 0, update_norm / weight_norm, np.nan)
        rows = np.stack(
            [
                np.sqrt(per_layer(g[:, 1])),
                mean,
                np.sqrt(np.maximum(per_layer(g[:, 1]) / np.maximum(count, 1) - mean**2, 0.0)),
                max_abs,
                per_layer(g[:, 4]),
                weight_norm,
                update_norm,
                ratio,
            ],
            axis=1,
        )
    return rows, np.sqrt(g[:, 1]), np.sqrt(w[:, 0])


def grad_stats(grads: Sequence[tf.Tensor]) -> tf.Tensor:
    """One layer's ``GRAD_STATS`` as recorded: :func:`variable_grad_stats` + :func:`layer_stats`.

    Eager only (the host half runs in numpy); for checks and tools that hold a layer's
    gradients, with the recorder's definitions.

    Args:
        grads: gradient tensors of one layer's variables.

    Returns:
        float32 ``[5]``: norm, mean, std, max |g|, count of non-finite entries.

    Example:
        >>> grad_stats([tf.constant([3.0, 4.0])]).numpy()[0]
        5.0
    """
    sums = variable_grad_stats(grads).numpy()
    sizes = np.array([max(tf.size(g).numpy(), 1) for g in grads], np.float64)
    owner = np.zeros(len(sizes), np.int64)
    rows, _, _ = layer_stats(sums, np.zeros((len(sizes), 2)), owner, sizes, 1)
    return tf.constant(rows[0, : len(GRAD_STATS)], tf.float32)


def squared_norms(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Sum of squares of each tensor, in float32.

    Args:
        tensors: tensors or variable values.

    Returns:
        float32 ``[len(tensors)]``.

    Example:
        >>> squared_norms([tf.constant([3.0, 4.0])]).numpy().tolist()
        [25.0]
    """
    return _twice([tf.nn.l2_loss(_dense32(t)) for t in tensors])


def l2_norm(tensor: tf.Tensor) -> tf.Tensor:
    """L2 norm of any tensor, in float32.

    Args:
        tensor: a tensor or variable value.

    Returns:
        float32 scalar.

    Example:
        >>> float(l2_norm(tf.constant([[3.0], [4.0]])))
        5.0
    """
    if isinstance(tensor, tf.IndexedSlices):
        tensor = tf.convert_to_tensor(tensor)
    return tf.norm(tf.reshape(tf.cast(tensor, tf.float32), [-1]))


def act_stats(
    outputs: tf.Tensor, kind: str, thresholds: ActivationThresholds = ACTIVATION_THRESHOLDS
) -> tf.Tensor:
    """Reduces a layer's activation output to ``ACT_STAT_ORDER`` scalars.

    ``dead_frac`` is the fraction of units (last axis: Dense units or Conv channels) whose output
    is ``<= thresholds.dead_output`` for every example and position of the batch; it is NaN for
    kinds other than "relu" and "leaky". ``sat_frac`` is the fraction of output entries in the flat
    tails (beyond ``±saturation_preactivation`` before the nonlinearity); NaN unless the kind is
    "sigmoid" or "tanh".

    Args:
        outputs: the layer's output tensor, batch first.
        kind: activation kind from :func:`gradscope.collect.layers.activation_kind`.
        thresholds: dead/saturation thresholds.

    Returns:
        float32 tensor of shape [4]: mean, std, dead fraction, saturated fraction.

    Example:
        >>> act_stats(tf.constant([[-1.0, 2.0], [-3.0, 0.5]]), "relu").numpy()[2]
        0.5
    """
    x = tf.cast(outputs, tf.float32)
    mean = tf.reduce_mean(x)
    std = tf.sqrt(tf.reduce_mean(tf.math.squared_difference(x, mean)))  # reuses the mean
    nan = tf.constant(float("nan"), tf.float32)
    if kind in ("relu", "leaky"):
        units = tf.reshape(x, [-1, tf.shape(x)[-1]])
        alive = tf.reduce_any(units > thresholds.dead_output, axis=0)
        dead = 1.0 - tf.reduce_mean(tf.cast(alive, tf.float32))
    else:
        dead = nan
    if kind == "sigmoid":
        tail = tf.logical_or(x < thresholds.sigmoid_low, x > thresholds.sigmoid_high)
        sat = tf.reduce_mean(tf.cast(tail, tf.float32))
    elif kind == "tanh":
        sat = tf.reduce_mean(tf.cast(tf.abs(x) > thresholds.tanh_abs, tf.float32))
    else:
        sat = nan
    return tf.stack([mean, std, dead, sat])


def fixed_histogram(values: tf.Tensor, low: float, high: float, bins: int) -> tf.Tensor:
    """Counts of ``values`` in ``bins`` equal bins over [low, high]; outside values go to the ends.

    Written with ``unsorted_segment_sum`` because ``tf.histogram_fixed_width`` has no XLA kernel.

    Args:
        values: a float32 tensor of any shape.
        low: lower edge of the first bin.
        high: upper edge of the last bin.
        bins: number of bins.

    Returns:
        float32 counts of shape [bins].

    Example:
        >>> fixed_histogram(tf.constant([0.1, 0.9, 5.0]), 0.0, 1.0, 2).numpy().tolist()
        [1.0, 2.0]
    """
    x = tf.reshape(values, [-1])
    scaled = tf.floor((x - low) / (high - low) * bins)
    scaled = tf.where(tf.math.is_nan(scaled), float(bins - 1), scaled)
    idx = tf.cast(tf.clip_by_value(scaled, 0.0, float(bins - 1)), tf.int32)
    return tf.math.unsorted_segment_sum(tf.ones_like(x), idx, bins)


def grad_histogram(grads: Sequence[tf.Tensor]) -> tf.Tensor:
    """Histogram of log10|g| over the fixed range of :data:`gradscope.config.HISTOGRAM_BINS`.

    Exact zeros fall into the first bin (log10 0 = -inf is clamped), as do values below the range.

    Args:
        grads: gradient tensors of one layer.

    Returns:
        float32 counts of shape [HISTOGRAM_BINS.grad_bins].

    Example:
        >>> int(tf.reduce_sum(grad_histogram([tf.ones([7])])))
        7
    """
    g = tf.abs(_flat32(grads))
    logs = tf.math.log(tf.maximum(g, 1e-38)) / tf.math.log(10.0)
    lo, hi = HISTOGRAM_BINS.grad_log10_range
    logs = tf.where(tf.math.is_finite(g), logs, hi)
    return fixed_histogram(logs, lo, hi, HISTOGRAM_BINS.grad_bins)


def act_range(kind: str) -> tuple[float, float]:
    """The fixed histogram range used for an activation kind.

    Args:
        kind: activation kind.

    Returns:
        ``(low, high)``: (0, 1) for sigmoid-like, (-1, 1) for tanh-like, (0, 12) for ReLU,
        (-2, 10) for the other ReLU-like kinds, else the unbounded range.

    Example:
        >>> act_range("tanh")
        (-1.0, 1.0)
    """
    if kind == "sigmoid":
        return (0.0, 1.0)
    if kind == "tanh":
        return (-1.0, 1.0)
    # ReLU outputs are never negative and ELU/SELU/GELU/swish ones stay above -2: the symmetric
    # unbounded range spent half its bins below zero while positive outputs past 6 piled into the
    # last bin. Same width (and bin size), shifted to where these activations live.
    lo, hi = HISTOGRAM_BINS.act_unbounded_range
    if kind == "relu":
        return (0.0, hi - lo)
    if kind == "leaky":
        return (-2.0, hi - lo - 2.0)
    return (lo, hi)


def act_histogram(outputs: tf.Tensor, kind: str) -> tf.Tensor:
    """Histogram of activation values over the fixed range of their kind.

    Args:
        outputs: the layer's output tensor.
        kind: activation kind.

    Returns:
        float32 counts of shape [HISTOGRAM_BINS.act_bins].

    Example:
        >>> int(tf.reduce_sum(act_histogram(tf.zeros([2, 3]), "relu")))
        6
    """
    x = tf.reshape(tf.cast(outputs, tf.float32), [-1])
    lo, hi = act_range(kind)
    return fixed_histogram(x, lo, hi, HISTOGRAM_BINS.act_bins)
