"""The light probe's in-step half of the reductions, on the host, for arrays already copied out.

The recorded step reduces each variable's gradient to a few sums and each watched layer's output
to its activation statistics (:mod:`gradscope.collect.stats`); the light probe has each step's
gradients, weights and activations as arrays and takes the same sums with numpy, in float32 as
the graph does (tests hold the two equal, NaN and Inf included). A layer's statistics are then
combined from the sums by the one host function both probes use,
:func:`gradscope.collect.stats.layer_stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gradscope.config import ACTIVATION_THRESHOLDS, ActivationThresholds
from gradscope.data.schema import ACT_STATS


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    parts = [np.asarray(a, np.float32).ravel() for a in arrays]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _sum_squares(x: np.ndarray) -> float:
    # einsum: no temporary array, and no BLAS threads (np.dot's spin when other processes hold
    # the cores: 2.4 ms instead of 0.03 ms for 65k values on a loaded 2-core machine).
    return float(np.einsum("i,i->", x, x))


def variable_sums(grad: np.ndarray) -> list[float]:
    """One variable's gradient sums, the columns of the recorded step's ``VAR_GRAD_ORDER``.

    The host twin of :func:`gradscope.collect.stats.variable_grad_stats`; the layer statistics
    are then combined from these sums by the recorder's own
    :func:`gradscope.collect.stats.layer_stats`.

    Args:
        grad: the variable's gradient.

    Returns:
        ``[sum, sum of squares, max, min, non-finite count]``; when the sum of squares is
        not finite (a NaN or Inf entry, or an overflow), entries are counted as non-finite and
        the sums taken again in float64, as in the step.

    Example:
        >>> variable_sums(np.array([3.0, 4.0]))
        [7.0, 25.0, 4.0, 3.0, 0.0]
    """
    g = _flat([grad])
    if not g.size:
        return [0.0, 0.0, -math.inf, math.inf, 0.0]
    with np.errstate(invalid="ignore", over="ignore"):
        total = float(g.sum())
        squares = _sum_squares(g)
        bad = 0.0
        if not math.isfinite(squares):  # as the step: count, and the sums again in float64
            bad = float(np.count_nonzero(~np.isfinite(g)))
            total, squares = float(g.sum(dtype=np.float64)), _sum_squares(g.astype(np.float64))
        return [total, squares, float(g.max()), float(g.min()), bad]


def weight_sums(before: np.ndarray, after: np.ndarray) -> list[float]:
    """One variable's ``VAR_WEIGHT_ORDER`` columns: ``‖w‖²`` after the update and ``‖Δw‖²``.

    Args:
        before: the variable right before the optimizer applied the step's update.
        after: the variable after it.

    Returns:
        ``[weight_sq, update_sq]``.

    Example:
        >>> weight_sums(np.ones(4), np.full(4, 2.0))
        [16.0, 4.0]
    """
    after32 = _flat([after])
    with np.errstate(invalid="ignore", over="ignore"):
        # float32, as the step (which takes only the gradients' sums again in float64)
        return [_sum_squares(after32), _sum_squares(after32 - _flat([before]))]


def act_row(
    outputs: np.ndarray, kind: str, thresholds: ActivationThresholds = ACTIVATION_THRESHOLDS
) -> dict[str, float]:
    """The activation statistics of one layer output (``ACT_STATS``) that apply to its kind.

    Args:
        outputs: the layer's output on the training batch, batch first.
        kind: its activation kind (:func:`gradscope.collect.layers.activation_kind`).
        thresholds: the dead and saturation thresholds.

    Returns:
        ``act_mean`` and ``act_std`` always; ``dead_frac`` (units whose output is at most
        ``dead_output`` for every example and position) for ReLU-like kinds; ``sat_frac``
        (entries in the flat tails) for sigmoid and tanh kinds.

    Example:
        >>> act_row(np.array([[-1.0, 2.0], [-3.0, 0.5]]), "relu")["dead_frac"]
        0.5
    """
    x = np.asarray(outputs, np.float32)
    row = {"act_mean": float(x.mean()), "act_std": float(x.std())}
    if kind in ("relu", "leaky"):
        units = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
        row["dead_frac"] = 1.0 - float(np.mean(np.any(units > thresholds.dead_output, axis=0)))
    if kind == "sigmoid":
        tail = (x < thresholds.sigmoid_low) | (x > thresholds.sigmoid_high)
        row["sat_frac"] = float(np.mean(tail))
    elif kind == "tanh":
        row["sat_frac"] = float(np.mean(np.abs(x) > thresholds.tanh_abs))
    assert set(row) <= set(ACT_STATS)
    return row
