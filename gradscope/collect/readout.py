"""Host half of recording: the ring buffer's new rows as :class:`StepRecord` objects.

The buffer is a few KB (``slots`` rows of a few floats per layer), copied once per read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import tensorflow as tf

from gradscope.collect import stats
from gradscope.collect.layers import WatchPlan
from gradscope.collect.options import Frequencies
from gradscope.data.schema import StepRecord


class RecorderState(Protocol):
    """What the read-out needs of :class:`gradscope.collect.engine.Recorder`.

    A protocol rather than an import of the engine, which imports this module: the read-out
    depends on the recorder's state, not on its class.

    Attributes:
        plan: the watched layers and variables.
        freqs: the recording beats (histograms add two buffers).
        loss_known: whether the step's loss was recorded (else the fallback is used).
        var_layer: the layer row of each flat variable.
        var_sizes: the element count of each flat variable.
        carried: buffer values a recorded step returned with its logs, not read yet.
        unread: whether the buffers may hold rows not read yet (cleared by :func:`snapshot`).
    """

    plan: WatchPlan
    freqs: Frequencies
    loss_known: bool
    var_layer: np.ndarray
    var_sizes: np.ndarray
    carried: Sequence[tf.Tensor] | None
    unread: bool
    _flat_vars: list[tuple[int, str]]
    _snapshot_fn: Any


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

#: Activation statistics stored as NaN where they do not apply to a layer's activation kind.
_MAYBE_NAN = frozenset({"dead_frac", "sat_frac"})

#: The key under which a recorded step carries its buffers' values out with Keras's logs
#: (:func:`buffer_values`); the dispatch takes it out before Keras sees the logs.
CARRY_KEY = "_gradscope_buffers"


def buffer_values(rec: RecorderState) -> list[tf.Tensor]:
    """Reads every ring buffer, in-graph: what :func:`snapshot` copies to the host.

    Called at the end of a recorded step (``Recorder.carry``) so the values leave with the
    step's outputs instead of through a second function call; reads of a variable run after
    the step's writes to it, in program order.

    Args:
        rec: the recorder.

    Returns:
        One tensor per buffer, in the order :func:`snapshot` names them.

    Example:
        >>> logs[CARRY_KEY] = (tuple(buffer_values(recorder)), clock)  # doctest: +SKIP
    """
    names = BUFFERS + (HIST_BUFFERS if rec.freqs.histogram else ())
    return [getattr(rec, name).read_value() for name in names]


def snapshot(rec: RecorderState) -> dict[str, np.ndarray]:
    """Copies every ring buffer to the host: what the last recorded step carried, or one read.

    Nine separate ``.numpy()`` reads cost ~1.2 ms on a loaded 2-core machine; one traced
    function reading them all, called through its concrete function (no per-call argument
    binding or trace lookup), ~0.16 ms (a 10×256 MLP's buffers; packing them into one float64
    vector in the function cost 0.29 ms: the casts and the concat are ops too). Values a
    recorded step returned with its outputs (``rec.carried``, taken once) need no call at all.

    Args:
        rec: the recorder.

    Returns:
        Buffer name -> array, shaped and typed as the variable.

    Example:
        >>> snapshot(recorder)["step_buf"]  # doctest: +SKIP
        array([ 0, 10, -1])
    """
    names = BUFFERS + (HIST_BUFFERS if rec.freqs.histogram else ())
    values, rec.carried = rec.carried, None
    rec.unread = False
    if values is None:
        if rec._snapshot_fn is None:

            @tf.function(autograph=False)
            def read() -> list[tf.Tensor]:
                return buffer_values(rec)

            rec._snapshot_fn = read.get_concrete_function()
        values = rec._snapshot_fn()
    return {name: t.numpy() for name, t in zip(names, values, strict=True)}


def read_buffers(
    rec: RecorderState, last_step: int, epoch: int | None, loss_fallback: float | None
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
        rows, var_grad, var_weight = stats.layer_stats(
            buf["grad_buf"][k], buf["weight_buf"][k], rec.var_layer, rec.var_sizes, len(names)
        )
        present = (grad_steps[k, : len(names)] == step).tolist()
        absent = {i for i, here in enumerate(present) if not here}
        table = rows.tolist()
        layers: dict[str, dict[str, float]] = {
            name: dict(zip(stats.LAYER_STAT_ORDER, table[i], strict=True))
            for i, name in enumerate(names)
            if present[i]
        }
        acted = act_steps[k] == step
        act_rows = acts[k].tolist()
        for i, here in enumerate(acted.tolist()):
            if here:
                row = layers.setdefault(rec.plan.act_layers[i][0], {})
                for s, value in zip(stats.ACT_STAT_ORDER, act_rows[i], strict=True):
                    # NaN here means "does not apply to this activation kind".
                    if not (s in _MAYBE_NAN and math.isnan(value)):
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
    rec: RecorderState, buf: dict[str, np.ndarray], k: int, acted: np.ndarray, absent: set[int]
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
