"""Host half of recording: the ring buffer's new rows as :class:`StepRecord` objects.

The buffer is a few KB (``slots`` rows of a few floats per layer), copied once per read.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from gradscope.collect import stats
from gradscope.data.schema import StepRecord

if TYPE_CHECKING:
    from gradscope.collect.engine import Recorder


#: The ring buffers, as :class:`~gradscope.collect.engine.Recorder` attributes.
BUFFERS = (
    "step_buf",
    "grad_step_buf",
    "act_step_buf",
    "hist_step_buf",
    "scalar_buf",
    "grad_buf",
    "weight_buf",
    "act_buf",
)
HIST_BUFFERS = ("grad_hist_buf", "act_hist_buf")


def snapshot(rec: Recorder) -> dict[str, np.ndarray]:
    """Copies every ring buffer to the host in one call (one compiled read, one transfer).

    Nine separate ``.numpy()`` reads cost ~0.45 ms, a tenth of a small model's step at
    freq=1; one function returning them packed into one float64 vector costs about a third
    (step numbers stay exact: float64 holds integers up to 2**53).

    Args:
        rec: the recorder.

    Returns:
        Buffer name -> array, shaped and typed as the variable.

    Example:
        >>> snapshot(recorder)["step_buf"]  # doctest: +SKIP
        array([ 0, 10, -1])
    """
    names = BUFFERS + (HIST_BUFFERS if rec.freqs.histogram else ())
    variables = [getattr(rec, name) for name in names]
    if rec._snapshot_fn is None:

        @tf.function(autograph=False)
        def pack() -> tf.Tensor:
            parts = [tf.reshape(tf.cast(v.read_value(), tf.float64), [-1]) for v in variables]
            return tf.concat(parts, axis=0)

        # The concrete function: calling it skips tf.function's per-call argument binding and
        # trace lookup (about half of this read's host time on a small model).
        rec._snapshot_fn = pack.get_concrete_function()
    flat = rec._snapshot_fn().numpy()
    out: dict[str, np.ndarray] = {}
    offset = 0
    for name, v in zip(names, variables, strict=True):
        shape = tuple(v.shape)
        size = int(np.prod(shape))
        values = flat[offset : offset + size].reshape(shape)
        out[name] = values.astype(np.int64) if v.dtype == tf.int64 else values.astype(np.float32)
        offset += size
    return out


def layer_stats(
    grads: np.ndarray, weights: np.ndarray, owner: np.ndarray, sizes: np.ndarray, n_layers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combines one record's per-variable sums into per-layer and per-variable statistics.

    The one place a layer's gradient norm, mean, standard deviation and max |g|, and its weight
    and update norms, are derived (the step reduces only per-variable sums, see
    :func:`gradscope.collect.stats.variable_grad_stats`). The standard deviation is exact to
    float32 rounding: the per-variable two-pass sums of squared deviations are combined with
    ``Σ n_v (mean_v - mean)²`` (Chan, Golub and LeVeque's pairwise update), in float64.

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
        >>> g = np.array([[7.0, 25.0, 4.0, 3.0, 0.5, 0.0]])  # the gradient [3, 4]
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
    spread = g[:, 4] + size * (g[:, 0] / size - mean[owner]) ** 2
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
                np.sqrt(per_layer(spread) / np.maximum(count, 1)),
                max_abs,
                per_layer(g[:, 5]),
                weight_norm,
                update_norm,
                ratio,
            ],
            axis=1,
        )
    return rows, np.sqrt(g[:, 1]), np.sqrt(w[:, 0])


#: Columns of :func:`layer_stats`'s per-layer rows: the record's names.
LAYER_STAT_ORDER: tuple[str, ...] = (
    "grad_norm",
    "grad_mean",
    "grad_std",
    "grad_max_abs",
    "nonfinite",
    "weight_norm",
    "update_norm",
    "update_ratio",
)


def read_buffers(
    rec: Recorder, last_step: int, epoch: int | None, loss_fallback: float | None
) -> tuple[list[StepRecord], list[tuple[int, dict[str, np.ndarray]]], int]:
    """Turns the ring-buffer rows written after ``last_step`` into records (host).

    Args:
        rec: the recorder.
        last_step: the last step already read.
        epoch: epoch to stamp on new records.
        loss_fallback: loss to use when the train step's loss was not captured.

    Returns:
        ``(records, histograms, last)``: new step records in step order; for steps with
        histograms, ``(step, {"grad/<layer>" | "act/<layer>": counts})``; the last step read.

    Example:
        >>> records, hists, last = read_buffers(rec, -1, 0, None)  # doctest: +SKIP
    """
    buf = snapshot(rec)
    steps = buf["step_buf"]
    fresh = sorted((int(s), k) for k, s in enumerate(steps) if s > last_step)
    if not fresh:
        return [], [], last_step
    act_steps, hist_steps = buf["act_step_buf"], buf["hist_step_buf"]
    scalars, acts, grad_steps = buf["scalar_buf"], buf["act_buf"], buf["grad_step_buf"]
    names = rec.plan.grad_layers
    var_names = [f"{names[i]}/{short}" for i, short in rec._flat_vars]
    records: list[StepRecord] = []
    hists: list[tuple[int, dict[str, np.ndarray]]] = []
    for step, k in fresh:
        rows, var_grad, var_weight = layer_stats(
            buf["grad_buf"][k], buf["weight_buf"][k], rec.var_layer, rec.var_sizes, len(names)
        )
        present = (grad_steps[k, : len(names)] == step).tolist()
        absent = {i for i, here in enumerate(present) if not here}
        table = rows.tolist()
        layers: dict[str, dict[str, float]] = {
            name: dict(zip(LAYER_STAT_ORDER, table[i], strict=True))
            for i, name in enumerate(names)
            if present[i]
        }
        acted = act_steps[k] == step
        for i, (name, _, _) in enumerate(rec.plan.act_layers):
            if acted[i]:
                row = layers.setdefault(name, {})
                for n, s in enumerate(stats.ACT_STAT_ORDER):
                    value = float(acts[k, i, n])
                    # NaN here means "does not apply to this activation kind".
                    if not (s in ("dead_frac", "sat_frac") and math.isnan(value)):
                        row[s] = value
        g_list, w_list = var_grad.tolist(), var_weight.tolist()
        variables = {
            var_names[j]: {"grad_norm": g_list[j], "weight_norm": w_list[j]}
            for j, (i, _) in enumerate(rec._flat_vars)
            if present[i]
        }
        loss: float | None = float(scalars[k, 0]) if rec.loss_known else None
        if loss is None or (math.isnan(loss) and loss_fallback is not None):
            loss = loss_fallback
        lr = float(scalars[k, 1])
        records.append(
            StepRecord(
                step=step,
                epoch=epoch,
                loss=loss,
                lr=None if math.isnan(lr) else lr,
                layers=layers,
                variables=variables,
            )
        )
        if rec.freqs.histogram and hist_steps[k] == step:
            hists.append((step, _read_hist(rec, buf, k, acted, absent)))
    return records, hists, fresh[-1][0]


def _read_hist(
    rec: Recorder, buf: dict[str, np.ndarray], k: int, acted: np.ndarray, absent: set[int]
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    grad_hist = buf["grad_hist_buf"][k]
    for i, name in enumerate(rec.plan.grad_layers):
        if i not in absent:
            out[f"grad/{name}"] = grad_hist[i].copy()
    act_hist = buf["act_hist_buf"][k] if acted.any() else None
    for i, (name, _, _) in enumerate(rec.plan.act_layers):
        if act_hist is not None and acted[i]:
            out[f"act/{name}"] = act_hist[i].copy()
    return out
