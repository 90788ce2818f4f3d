"""In-graph reducers: a few scalars from gradient, weight and activation tensors.

Each function takes TensorFlow tensors and returns a small float32 tensor (float64 for the
per-variable sums: the gradients' overflowing float32 sums are taken again in float64); all of
them trace into a ``tf.function`` (and XLA) and never copy a full tensor to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from gradscope.config import ACTIVATION_THRESHOLDS, ActivationThresholds
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


class _Axes:
    """All-axes constants shared by the reductions of one call, one per rank.

    Why not ``tf.reduce_sum(x)``: it adds an axes constant per call and about 0.1 ms of Python
    per traced op, and the statistics of a ResNet-50 step are thousands of ops, traced once more
    for the instrumented step of every first fit (``reports/benchmarks.md``). A raw reduction
    op with one constant per rank traces the same kernel in about two thirds of the time
    (0.24 against 0.37 ms), and the constants are traced once per rank instead of per call.
    """

    def __init__(self) -> None:
        self._by_rank: dict[tuple[int, bool], tf.Tensor] = {}

    def __call__(self, x: tf.Tensor, keep_last: bool = False) -> tf.Tensor:
        """The axes of ``x`` (all, or all but the last), as an int32 tensor."""
        rank = x.shape.rank
        if rank is None:
            return tf.range(tf.rank(x) - 1 if keep_last else tf.rank(x))
        key = (rank, keep_last)
        if key not in self._by_rank:
            self._by_rank[key] = tf.constant(list(range(rank - int(keep_last))), tf.int32)
        return self._by_rank[key]


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
    A squared sum that is not finite (a NaN or Inf entry, or finite entries above ~1.8e19
    whose squares overflow float32) sends all variables through one ``tf.cond``: it counts the
    non-finite entries and takes the sums again in float64, so an overflowing statistic is not
    mistaken for an overflowing gradient.

    Args:
        grads: one gradient tensor per variable (dense or ``tf.IndexedSlices``).

    Returns:
        float64 ``[len(grads), 5]`` (float32 sums, float64 only where they overflowed).

    Example:
        >>> variable_grad_stats([tf.constant([3.0, 4.0])]).numpy()[0, :2].tolist()
        [7.0, 25.0]
    """
    dense = [_dense32(g) for g in grads]
    axes = _Axes()
    total = tf.stack([tf.raw_ops.Sum(input=g, axis=axes(g)) for g in dense])
    sumsq = _twice([tf.nn.l2_loss(g) for g in dense])
    high = tf.stack([tf.raw_ops.Max(input=g, axis=axes(g)) for g in dense])
    low = tf.stack([tf.raw_ops.Min(input=g, axis=axes(g)) for g in dense])

    def as_is() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return _f64(total), _f64(sumsq), tf.zeros([len(dense)], tf.float64)

    def again() -> tuple[tf.Tensor, ...]:
        # Only on a step whose squared sums overflowed or met a NaN/Inf: sums in float64 and
        # the count of non-finite entries.
        return tuple(_wide_sums(dense))

    finite = tf.reduce_all(tf.math.is_finite(sumsq))
    total64, sumsq64, counts = tf.cond(finite, as_is, again)
    return tf.stack([total64, sumsq64, _f64(high), _f64(low), counts], axis=1)


def _f64(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float64)


def _wide_sums(tensors: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """float64 ``[sum, sum of squares, non-finite count]`` of each tensor.

    For the rare step whose float32 sums overflowed or met a NaN/Inf. Traced as one chain of
    ops per distinct shape, on the tensors of that shape stacked (ResNet-50: 28 shapes for 214
    variables): the branch is traced, and optimised by Grappler, at every first fit whether or
    not it ever runs. On ResNet-50 the statistics then trace in 0.64 s against 0.63 s without
    the retake; per tensor, 0.96 s against 0.87 s (reports/benchmarks.md, session 7). The
    stacked copies exist only when it runs.
    """
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(tensors):
        key = tuple(t.shape.as_list()) if t.shape.is_fully_defined() else i
        groups.setdefault(key, []).append(i)
    columns: list[list[tf.Tensor]] = [[], [], []]
    for members in groups.values():
        x32 = tf.stack([tensors[i] for i in members])
        rank = x32.shape.rank
        axes = tf.range(1, tf.rank(x32)) if rank is None else tf.constant(list(range(1, rank)))
        x = _f64(x32)
        bad = _f64(tf.logical_not(tf.math.is_finite(x32)))
        for column, value in zip(columns, (x, tf.square(x), bad), strict=True):
            column.append(tf.raw_ops.Sum(input=value, axis=axes))
    back = tf.constant(np.argsort([i for members in groups.values() for i in members]), tf.int32)
    return [tf.gather(tf.concat(column, axis=0), back) for column in columns]


def update_squares(values: Sequence[tf.Tensor], olds: Sequence[tf.Tensor]) -> tf.Tensor:
    """``‖w‖²`` and ``‖w - w_old‖²`` per variable, in ``VAR_WEIGHT_ORDER``.

    Summed in float32 and stored as float64. Unlike the gradients' sums there is no float64
    retake: a second ``tf.cond`` with every weight as input cost 0.15–0.2 s of every first fit,
    even of a 3-layer model (reports/benchmarks.md, session 7), so weights past ~1.8e19 show an
    infinite norm.

    Args:
        values: each variable after the update (float32).
        olds: each variable before it (float32).

    Returns:
        float64 ``[len(values), 2]``.

    Example:
        >>> update_squares([tf.constant([3.0, 4.0])], [tf.constant([3.0, 3.0])]).numpy().tolist()
        [[25.0, 1.0]]
    """
    moved = [value - old for value, old in zip(values, olds, strict=True)]
    return _f64(tf.stack([squared_norms(values), squared_norms(moved)], axis=1))


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
        >>> float(grad_stats([tf.constant([3.0, 4.0])])[0])
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
        >>> float(act_stats(tf.constant([[-1.0, 2.0], [-3.0, 0.5]]), "relu")[2])
        0.5
    """
    return act_stats_rows([outputs], [kind], thresholds)[0]


def act_stats_rows(
    outputs: Sequence[tf.Tensor],
    kinds: Sequence[str],
    thresholds: ActivationThresholds = ACTIVATION_THRESHOLDS,
) -> tf.Tensor:
    """:func:`act_stats` of several layers' outputs, one row each, tracing shared constants.

    Args:
        outputs: the layers' output tensors, batch first.
        kinds: the activation kind of each.
        thresholds: dead/saturation thresholds.

    Returns:
        float32 ``[len(outputs), 4]`` in ``ACT_STAT_ORDER``.

    Example:
        >>> act_stats_rows([tf.ones([2, 3])], ["relu"]).numpy().tolist()
        [[1.0, 0.0, 0.0, nan]]
    """
    axes = _Axes()
    shared: dict[str, tf.Tensor] = {}

    def const(name: str, value: float) -> tf.Tensor:
        if name not in shared:
            shared[name] = tf.constant(value, tf.float32)
        return shared[name]

    def mean_of(x: tf.Tensor) -> tf.Tensor:
        return tf.raw_ops.Mean(input=tf.cast(x, tf.float32), axis=axes(x))

    rows = []
    for output, kind in zip(outputs, kinds, strict=True):
        x = tf.cast(output, tf.float32)
        mean = mean_of(x)
        std = tf.sqrt(mean_of(tf.math.squared_difference(x, mean)))  # reuses the mean
        nan = const("nan", float("nan"))
        dead = sat = nan
        if kind in ("relu", "leaky"):
            # A unit (last axis) is alive if any example or position exceeds the threshold.
            above = tf.greater(x, const("dead", thresholds.dead_output))
            alive = tf.raw_ops.Any(input=above, axis=axes(x, keep_last=True))
            dead = const("one", 1.0) - mean_of(alive)
        if kind == "sigmoid":
            low = tf.less(x, const("sig_low", thresholds.sigmoid_low))
            high = tf.greater(x, const("sig_high", thresholds.sigmoid_high))
            sat = mean_of(tf.logical_or(low, high))
        elif kind == "tanh":
            sat = mean_of(tf.greater(tf.abs(x), const("tanh", thresholds.tanh_abs)))
        rows.append(tf.stack([mean, std, dead, sat]))
    return tf.stack(rows)
