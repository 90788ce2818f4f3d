"""The light probe's reductions, on the host: GradScope's statistics of arrays already copied out.

The recorded probe reduces tensors in the compiled train step (:mod:`gradscope.collect.stats`);
the light probe has each step's gradients, weights and activations as arrays and reduces them
with numpy, in float64. The definitions are GradScope's (tests hold the two equal, NaN and Inf
included): a layer's gradient norm is the L2 norm of all its entries together, the standard
deviation is the population one, ``dead_frac`` counts units that are off for the whole batch,
``sat_frac`` entries in the flat tails of a sigmoid or tanh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gradscope.config import ACTIVATION_THRESHOLDS, ActivationThresholds
from gradscope.data.schema import ACT_STATS, GRAD_STATS


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    parts = [np.asarray(a, np.float32).ravel() for a in arrays]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _sum_squares(x: np.ndarray) -> float:
    # einsum: no temporary array, and no BLAS threads (np.dot's spin when other processes hold
    # the cores: 2.4 ms instead of 0.03 ms for 65k values on a loaded 2-core machine).
    return float(np.einsum("i,i->", x, x))


def norm(array: np.ndarray) -> float:
    """L2 norm of all entries (NaN/Inf propagate).

    Args:
        array: any array.

    Returns:
        The norm, as a float.

    Example:
        >>> norm(np.array([3.0, 4.0]))
        5.0
    """
    return math.sqrt(_sum_squares(_flat([array])))


def grad_row(grads: Sequence[np.ndarray]) -> dict[str, float]:
    """The gradient statistics of one layer (``GRAD_STATS``), over all its variables' entries.

    Args:
        grads: the gradient arrays of the layer's variables that got one this step.

    Returns:
        ``grad_norm``, ``grad_mean``, ``grad_std`` (population), ``grad_max_abs`` and
        ``nonfinite`` (count of NaN/Inf entries); NaN and Inf propagate into the moments, as in
        the recorded probe: they are evidence.

    Example:
        >>> grad_row([np.array([3.0, -4.0])])["grad_norm"]
        5.0
    """
    g = _flat(grads)
    with np.errstate(invalid="ignore", over="ignore"):
        squares = _sum_squares(g)
        mean = float(g.mean())
        centred = g - np.float32(mean)
        values = (
            math.sqrt(squares),
            mean,
            math.sqrt(_sum_squares(centred) / g.size),
            float(max(g.max(), -g.min())) if not math.isnan(squares) else math.nan,
            # A finite sum of squares has no NaN/Inf entry to count.
            0.0 if math.isfinite(squares) else float(np.count_nonzero(~np.isfinite(g))),
        )
    return dict(zip(GRAD_STATS, values, strict=True))


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


def weight_rows(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> dict[str, float]:
    """One layer's ``weight_norm`` (after the update), ``update_norm`` and ``update_ratio``.

    Args:
        before: the layer's variables before the optimizer applied this step's update.
        after: the same variables after it.

    Returns:
        The three statistics; ``update_ratio`` is NaN for all-zero weights.

    Example:
        >>> weight_rows([np.ones(4)], [np.full(4, 2.0)])["update_ratio"]
        0.5
    """
    weight = math.sqrt(sum(norm(a) ** 2 for a in after))
    update = math.sqrt(
        sum(norm(np.subtract(a, b)) ** 2 for a, b in zip(after, before, strict=True))
    )
    ratio = update / weight if weight > 0 else math.nan
    return {"weight_norm": weight, "update_norm": update, "update_ratio": ratio}
