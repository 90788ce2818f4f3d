"""In-graph histograms of gradients and activations, over fixed ranges (the same bins every step).

Fixed ranges let TensorBoard and the report stack a layer's histograms over steps without
rebinning; the edges are :data:`gradscope.config.HISTOGRAM_BINS` and :func:`act_range`.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from gradscope.config import HISTOGRAM_BINS


def _flat32(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    parts = []
    for t in tensors:
        if isinstance(t, tf.IndexedSlices):
            t = tf.convert_to_tensor(t)
        parts.append(tf.reshape(tf.cast(t, tf.float32), [-1]))
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


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
