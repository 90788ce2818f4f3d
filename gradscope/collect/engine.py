"""The recording engine shared by the GradScope callback and Scope.

In-graph side: reductions of gradients, weights and activations are written, only on steps where
``step % freq == 0`` (a ``tf.cond`` inside the train step), into a small ring buffer of
non-trainable variables: ``slots`` rows of a few floats per layer. Host side: :meth:`Recorder.read`
copies that buffer (a few KB) and turns new rows into :class:`StepRecord` objects. The host never
sees a gradient or activation tensor, and memory does not grow with the number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from gradscope.collect import stats
from gradscope.collect.layers import WatchPlan
from gradscope.collect.options import Frequencies, validate_frequencies
from gradscope.config import HISTOGRAM_BINS
from gradscope.data.schema import StepRecord

__all__ = ["Frequencies", "Recorder", "validate_frequencies"]  # the option checks live in options

_ON_READ = {
    "synchronization": tf.VariableSynchronization.ON_READ,
    "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA,
    "trainable": False,
}


def _due(step: tf.Tensor, every: int) -> tf.Tensor:
    if every <= 0:
        return tf.constant(False)
    return tf.equal(step % every, 0)


def _put(buffer: tf.Variable, index: Sequence[tf.Tensor | int], value: tf.Tensor) -> None:
    # Assigning the whole (small) buffer keeps this valid for every variable type, including the
    # ON_READ variables used under tf.distribute, and inside XLA.
    idx = tf.reshape(tf.stack([tf.cast(i, tf.int64) for i in index]), [1, -1])
    buffer.assign(tf.tensor_scatter_nd_update(buffer, idx, tf.expand_dims(value, 0)))


class Recorder:
    """Ring-buffer state and the in-graph and host halves of recording.

    Args:
        plan: what to watch.
        freqs: recording frequencies.
        slots: number of ring-buffer rows; must exceed the number of recorded steps between two
            host reads (``ceil(steps_per_execution / freq) + 1`` is enough).
        strategy: the tf.distribute strategy the variables belong to.
    """

    def __init__(
        self,
        plan: WatchPlan,
        freqs: Frequencies,
        slots: int,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.plan = plan
        self.freqs = freqs
        self.slots = slots
        n_layers = len(plan.grad_layers)
        n_acts = len(plan.act_layers)
        self._var_slot: dict[int, tuple[int, int]] = {}
        self._flat_vars: list[tuple[int, str]] = []
        # Per layer: its group (optimizer) and the flat indices of its variables.
        self._layer_group = plan.grad_groups or (0,) * n_layers
        self._layer_vars: list[list[int]] = []
        for i, variables in enumerate(plan.grad_variables):
            self._layer_vars.append([])
            for v in variables:
                j = len(self._flat_vars)
                self._flat_vars.append((i, v.path.rsplit("/", 1)[-1]))
                self._layer_vars[i].append(j)
                self._var_slot[id(v)] = (i, j)
                self._var_slot[id(v.value)] = (i, j)
        n_vars = len(self._flat_vars)
        strategy = strategy or tf.distribute.get_strategy()
        k = slots
        with strategy.scope():

            def var(shape: list[int], value: float, dtype: tf.DType = tf.float32) -> tf.Variable:
                return tf.Variable(tf.fill(shape, tf.cast(value, dtype)), **_ON_READ)

            self.step_buf = var([k], -1, tf.int64)
            # The step each layer's gradient row was written at: a layer without a gradient at
            # a recorded step (its optimizer did not apply, it was not used) has no row in that
            # record rather than a stale or NaN one.
            self.grad_step_buf = var([k, max(n_layers, 1)], -1, tf.int64)
            # Per activation layer: a layer the step did not call keeps no stale row.
            self.act_step_buf = var([k, max(n_acts, 1)], -1, tf.int64)
            self.hist_step_buf = var([k], -1, tf.int64)
            self.scalar_buf = var([k, 2], math.nan)  # loss, lr
            self.grad_buf = var([k, max(n_layers, 1), len(stats.GRAD_STAT_ORDER)], math.nan)
            self.var_buf = var([k, max(n_vars, 1), 2], math.nan)  # grad_norm, weight_norm
            self.upd_buf = var([k, max(n_layers, 1), 2], math.nan)  # weight_norm, update_norm
            self.act_buf = var([k, max(n_acts, 1), len(stats.ACT_STAT_ORDER)], math.nan)
            self.loss_var = var([], math.nan)
            if freqs.histogram:
                self.grad_hist_buf = var([k, max(n_layers, 1), HISTOGRAM_BINS.grad_bins], 0.0)
                self.act_hist_buf = var([k, max(n_acts, 1), HISTOGRAM_BINS.act_bins], 0.0)
            # Copies of the weights before a recorded update, for ‖Δw‖. They cost one copy of
            # the watched weights in memory but nothing on unrecorded steps.
            self.shadows = [
                tf.Variable(tf.zeros(v.shape, tf.float32), **_ON_READ)
                for variables in plan.grad_variables
                for v in variables
            ]
        self._last_step = -1
        self._last_act_step = -1
        # False when the train step computes its own loss: the buffer's NaN then means "not
        # captured", not a diverged loss.
        self.loss_known = True

    # ------------------------------------------------------------------ in-graph half

    def slot(self, step: tf.Tensor) -> tf.Tensor:
        """Ring-buffer row of a recorded step."""
        return (tf.cast(step, tf.int64) // self.freqs.freq) % self.slots

    def record_gradients(
        self,
        grads_and_vars: Sequence[tuple[tf.Tensor | None, tf.Variable]],
        step: tf.Tensor,
        learning_rate: tf.Tensor | float | None = None,
        group: int | None = None,
    ) -> None:
        """In-graph: on recorded steps, reduce gradients and snapshot the weights.

        Args:
            grads_and_vars: (gradient, variable) pairs as the optimizer receives them.
            step: the current step (0-based count of updates applied before this one).
            learning_rate: the learning rate of this step, if known.
            group: the optimizer applying them (index in ``plan.groups``); None: the only one.
                Only group 0 (or None) writes the step's loss and learning rate.
        """
        per_layer: list[list[tf.Tensor]] = [[] for _ in self.plan.grad_layers]
        per_var: list[tuple[int, tf.Tensor, tf.Variable]] = []
        for g, v in grads_and_vars:
            where = self._var_slot.get(id(v))
            if g is None or where is None:
                continue
            if group is not None and self._layer_group[where[0]] != group:
                continue
            per_layer[where[0]].append(g)
            per_var.append((where[1], g, v))
        step = tf.cast(step, tf.int64)

        def write() -> tf.Tensor:
            slot = self.slot(step)
            written = [i for i, grads in enumerate(per_layer) if grads]
            for i in written:
                _put(self.grad_buf, [slot, i], stats.grad_stats(per_layer[i]))
            if written:
                rows = tf.stack([tf.stack([slot, tf.constant(i, tf.int64)]) for i in written])
                stamped = tf.tensor_scatter_nd_update(
                    self.grad_step_buf, rows, tf.fill([len(written)], step)
                )
                self.grad_step_buf.assign(stamped)
            for j, g, v in per_var:
                _put(self.var_buf, [slot, j], tf.stack([stats.l2_norm(g), stats.l2_norm(v)]))
                self.shadows[j].assign(tf.cast(v, tf.float32))
            if not group:
                lr = math.nan if learning_rate is None else learning_rate
                _put(self.scalar_buf, [slot], tf.stack([self.loss_var, tf.cast(lr, tf.float32)]))
            _put(self.step_buf, [slot], step)
            return tf.constant(0)

        def write_hist() -> tf.Tensor:
            slot = self.slot(step)
            for i, grads in enumerate(per_layer):
                if grads:
                    _put(self.grad_hist_buf, [slot, i], stats.grad_histogram(grads))
            _put(self.hist_step_buf, [slot], step)
            return tf.constant(0)

        tf.cond(_due(step, self.freqs.freq), write, lambda: tf.constant(0))
        if self.freqs.histogram:
            tf.cond(_due(step, self.freqs.histogram), write_hist, lambda: tf.constant(0))

    def record_update(self, step: tf.Tensor, group: int | None = None) -> None:
        """On recorded steps, after the optimizer update: weight norms and ‖Δw‖ per layer.

        Runs in-graph (callback) or eagerly (Scope).

        Args:
            step: the step whose update was just applied.
            group: the optimizer that applied it (its layers only); None: every layer.
        """
        step = tf.cast(step, tf.int64)

        def write() -> tf.Tensor:
            slot = self.slot(step)
            for i, variables in enumerate(self.plan.grad_variables):
                if group is not None and self._layer_group[i] != group:
                    continue
                w_sq = tf.constant(0.0)
                d_sq = tf.constant(0.0)
                for v, j in zip(variables, self._layer_vars[i], strict=True):
                    value = tf.cast(v.value, tf.float32)
                    w_sq += tf.reduce_sum(tf.square(value))
                    d_sq += tf.reduce_sum(tf.square(value - self.shadows[j]))
                _put(self.upd_buf, [slot, i], tf.stack([tf.sqrt(w_sq), tf.sqrt(d_sq)]))
            return tf.constant(0)

        tf.cond(_due(step, self.freqs.freq), write, lambda: tf.constant(0))

    def record_activation(self, index: int, outputs: tf.Tensor, step: tf.Tensor) -> None:
        """In-graph: on activation-recording steps, reduce one layer's output.

        Args:
            index: position of the layer in ``plan.act_layers``.
            outputs: the layer's output tensor.
            step: the current step.
        """
        kind = self.plan.act_layers[index][2]
        step = tf.cast(step, tf.int64)

        def write() -> tf.Tensor:
            slot = self.slot(step)
            _put(self.act_buf, [slot, index], stats.act_stats(outputs, kind))
            _put(self.act_step_buf, [slot, index], step)
            return tf.constant(0)

        def write_hist() -> tf.Tensor:
            _put(self.act_hist_buf, [self.slot(step), index], stats.act_histogram(outputs, kind))
            return tf.constant(0)

        tf.cond(_due(step, self.freqs.activation), write, lambda: tf.constant(0))
        if self.freqs.histogram:
            tf.cond(_due(step, self.freqs.histogram), write_hist, lambda: tf.constant(0))

    def record_loss(self, loss: tf.Tensor) -> None:
        """In-graph: remember this step's loss (a scalar assign, every step).

        Args:
            loss: the batch loss.
        """
        self.loss_var.assign(tf.cast(tf.reduce_mean(loss), tf.float32))

    def put_loss(self, step: int, loss: float) -> None:
        """Sets the loss of an already recorded step (Scope knows it only after the step).

        Args:
            step: a recorded step.
            loss: its loss.
        """
        step_t = tf.constant(step, tf.int64)
        _put(self.scalar_buf, [self.slot(step_t), 0], tf.constant(loss, tf.float32))

    # ------------------------------------------------------------------ host half

    def reset(self) -> None:
        """Forgets what was read so far and clears the buffers (host)."""
        self.step_buf.assign(tf.fill([self.slots], tf.constant(-1, tf.int64)))
        self.grad_step_buf.assign(tf.fill(self.grad_step_buf.shape, tf.constant(-1, tf.int64)))
        self.act_step_buf.assign(tf.fill(self.act_step_buf.shape, tf.constant(-1, tf.int64)))
        self.hist_step_buf.assign(tf.fill([self.slots], tf.constant(-1, tf.int64)))
        self._last_step = -1

    def read(
        self, epoch: int | None = None, loss_fallback: float | None = None
    ) -> tuple[list[StepRecord], list[tuple[int, dict[str, np.ndarray]]]]:
        """Host: returns records (and histograms) written since the previous read.

        Args:
            epoch: epoch to stamp on new records.
            loss_fallback: loss to use when the train step's loss was not captured.

        Returns:
            ``(records, histograms)``: new step records in step order, and for steps with
            histograms, ``(step, {"grad/<layer>" | "act/<layer>": counts})``.
        """
        steps = self.step_buf.numpy()
        fresh = sorted((int(s), k) for k, s in enumerate(steps) if s > self._last_step)
        if not fresh:
            return [], []
        act_steps = self.act_step_buf.numpy()
        hist_steps = self.hist_step_buf.numpy()
        scalars = self.scalar_buf.numpy()
        grads = self.grad_buf.numpy()
        var_vals = self.var_buf.numpy()
        upd = self.upd_buf.numpy()
        acts = self.act_buf.numpy()
        grad_steps = self.grad_step_buf.numpy()
        records: list[StepRecord] = []
        hists: list[tuple[int, dict[str, np.ndarray]]] = []
        for step, k in fresh:
            layers: dict[str, dict[str, float]] = {}
            absent = {i for i in range(len(self.plan.grad_layers)) if grad_steps[k, i] != step}
            for i, name in enumerate(self.plan.grad_layers):
                if i in absent:
                    continue
                row = {s: float(grads[k, i, n]) for n, s in enumerate(stats.GRAD_STAT_ORDER)}
                w_norm, d_norm = float(upd[k, i, 0]), float(upd[k, i, 1])
                row["weight_norm"] = w_norm
                row["update_norm"] = d_norm
                row["update_ratio"] = d_norm / w_norm if w_norm > 0 else math.nan
                layers[name] = row
            acted = act_steps[k] == step
            for i, (name, _, _) in enumerate(self.plan.act_layers):
                if acted[i]:
                    row = layers.setdefault(name, {})
                    for n, s in enumerate(stats.ACT_STAT_ORDER):
                        value = float(acts[k, i, n])
                        # NaN here means "does not apply to this activation kind".
                        if not (s in ("dead_frac", "sat_frac") and math.isnan(value)):
                            row[s] = value
            variables = {
                f"{self.plan.grad_layers[i]}/{short}": {
                    "grad_norm": float(var_vals[k, j, 0]),
                    "weight_norm": float(var_vals[k, j, 1]),
                }
                for j, (i, short) in enumerate(self._flat_vars)
                if i not in absent
            }
            loss: float | None = float(scalars[k, 0]) if self.loss_known else None
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
            if self.freqs.histogram and hist_steps[k] == step:
                hists.append((step, self._read_hist(k, acted, absent)))
        self._last_step = fresh[-1][0]
        return records, hists

    def _read_hist(self, k: int, acted: np.ndarray, absent: set[int]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        grad_hist = self.grad_hist_buf.numpy()[k]
        for i, name in enumerate(self.plan.grad_layers):
            if i not in absent:
                out[f"grad/{name}"] = grad_hist[i].copy()
        act_hist = self.act_hist_buf.numpy()[k] if acted.any() else None
        for i, (name, _, _) in enumerate(self.plan.act_layers):
            if act_hist is not None and acted[i]:
                out[f"act/{name}"] = act_hist[i].copy()
        return out
