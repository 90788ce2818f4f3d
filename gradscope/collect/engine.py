"""The recording engine shared by the GradScope callback and Scope.

In-graph side: reductions of gradients, weights and activations of a recorded step
(``step % freq == 0``) are written into a small ring buffer of non-trainable variables: ``slots``
rows of a few floats per layer, one scatter per buffer per step. GradScope runs the instrumented
step only on recorded steps (:mod:`gradscope.collect.dispatch`), so the writes need no
``tf.cond``; where a traced step can be off the beat (Scope's loop, several steps per
execution) they sit in one. Host side: :meth:`Recorder.read`
copies that buffer (a few KB) and turns new rows into :class:`StepRecord` objects. The host never
sees a gradient or activation tensor, and memory does not grow with the number of steps.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from gradscope.collect import histograms, stats
from gradscope.collect.layers import WatchPlan
from gradscope.collect.options import Frequencies, validate_frequencies
from gradscope.collect.readout import read_buffers
from gradscope.config import HISTOGRAM_BINS
from gradscope.data.schema import StepRecord

__all__ = ["Frequencies", "Recorder", "validate_frequencies"]  # the option checks live in options

_ON_READ = {
    "synchronization": tf.VariableSynchronization.ON_READ,
    "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA,
    "trainable": False,
}


def _scatter(buffer: tf.Variable, rows: tf.Tensor, values: tf.Tensor) -> None:
    # One write per buffer per recorded step: every row of the step in one scatter. Assigning
    # the whole (small) buffer keeps this valid for every variable type, including the ON_READ
    # variables used under tf.distribute, and inside XLA.
    buffer.assign(tf.tensor_scatter_nd_update(buffer, rows, values))


def _rows(slot: tf.Tensor, indices: Sequence[int]) -> tf.Tensor:
    # [[slot, i0], [slot, i1], ...] for a scatter into a [slots, n, ...] buffer.
    n = len(indices)
    return tf.stack([tf.fill([n], slot), tf.constant(list(indices), tf.int64)], axis=1)


def _last_per_index(items: Sequence[tuple[int, tf.Tensor]]) -> list[tuple[int, tf.Tensor]]:
    # A layer called twice in one step (shared layer) keeps its last call, as a scatter with
    # duplicate rows would not promise.
    last = {index: value for index, value in items}
    return sorted(last.items())


class Recorder:
    """Ring-buffer state and the in-graph and host halves of recording.

    Args:
        plan: what to watch.
        freqs: recording frequencies.
        slots: number of ring-buffer rows; must exceed the number of recorded steps between two
            host reads (``ceil(steps_per_execution / freq) + 1`` is enough).
        strategy: the tf.distribute strategy the variables belong to.
        guarded: see :attr:`guarded` (True for :class:`~gradscope.collect.scope.Scope`).

    Attributes:
        guarded: True when a traced step may be off the recording beat: writes then sit in a
            ``tf.cond`` and the weights before a recorded update are copied into shadow
            variables, created when this is set. False (GradScope's instrumented step, run
            only on recorded steps) reads them as tensors instead: the update's copy-on-write
            keeps them, no copy is held between steps.
        carry: True when the traced step returns every buffer's value with its outputs
            (:func:`gradscope.collect.readout.buffer_values`): set by GradScope's attach for
            unguarded steps on one replica without a probe batch.
        carried: those values from the last recorded execution, until the host reads them.
        unread: whether the buffers may hold rows the host has not read (with ``carry``, set
            by the dispatch for each recorded execution; a read with nothing unread and
            nothing carried returns at once).
    """

    def __init__(
        self,
        plan: WatchPlan,
        freqs: Frequencies,
        slots: int,
        strategy: tf.distribute.Strategy | None = None,
        guarded: bool = True,
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
        # Entries per variable: a layer's mean and moments are combined on the host from these.
        self.var_sizes = np.array(
            [max(v.shape.num_elements() or 1, 1) for vs in plan.grad_variables for v in vs],
            np.float64,
        )
        self.var_layer = np.array([i for i, _ in self._flat_vars], np.int64)
        strategy = strategy or tf.distribute.get_strategy()
        self._strategy = strategy
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
            # Per variable: gradient sums (before the update), weight sums (after it).
            # float64: the gradients' sums whose float32 squares overflowed are taken again.
            wide = tf.float64
            self.grad_buf = var([k, max(n_vars, 1), len(stats.VAR_GRAD_ORDER)], math.nan, wide)
            self.weight_buf = var([k, max(n_vars, 1), len(stats.VAR_WEIGHT_ORDER)], math.nan, wide)
            self.act_buf = var([k, max(n_acts, 1), len(stats.ACT_STAT_ORDER)], math.nan)
            self.loss_var = var([], math.nan)
            if freqs.histogram:
                self.grad_hist_buf = var([k, max(n_layers, 1), HISTOGRAM_BINS.grad_bins], 0.0)
                self.act_hist_buf = var([k, max(n_acts, 1), HISTOGRAM_BINS.act_bins], 0.0)
        self.shadows: list[tf.Variable] = []
        # The weights before this step's update, per optimizer group, in the traced step
        # (per thread: MirroredStrategy traces each replica in its own).
        self._before = threading.local()
        self._last_step = -1
        self._last_act_step = -1
        self._snapshot_fn: Any = None  # the compiled read of every buffer (readout.snapshot)
        self.carry = False
        self.carried: Sequence[tf.Tensor] | None = None
        self.unread = True
        # False when the train step computes its own loss: the buffer's NaN then means "not
        # captured", not a diverged loss.
        self.loss_known = True
        self._guarded = False
        self.guarded = guarded

    @property
    def guarded(self) -> bool:
        """Whether writes check the beat in-graph (see the class attributes)."""
        return self._guarded

    @guarded.setter
    def guarded(self, value: bool) -> None:
        self._guarded = bool(value)
        if value:
            self.carry = False  # another dispatch's steps may write: the host reads
        if value and not self.shadows:
            # Created here, eagerly, before any step using them is traced. One copy of the
            # watched weights, held as long as the recorder.
            with self._strategy.scope():
                self.shadows = [
                    tf.Variable(tf.zeros(v.shape, tf.float32), **_ON_READ)
                    for variables in self.plan.grad_variables
                    for v in variables
                ]

    # ------------------------------------------------------------------ in-graph half

    def slot(self, step: tf.Tensor) -> tf.Tensor:
        """Ring-buffer row of a recorded step."""
        return (tf.cast(step, tf.int64) // self.freqs.freq) % self.slots

    def _when(self, step: tf.Tensor, every: int, write: Callable[[], None]) -> None:
        """Traces ``write`` to run on steps that are multiples of ``every`` (0: never).

        Without a ``tf.cond`` when no step can be off that beat: ``every`` is 1, or it is
        ``freq`` and the caller runs this step only when it is recorded (``guarded`` False:
        GradScope's instrumented step, which ``StepDispatch`` calls on recorded steps only).
        """
        if every <= 0:
            return
        if every == 1 or (every == self.freqs.freq and not self.guarded):
            write()
            return

        def branch() -> tf.Tensor:
            write()
            return tf.constant(0)

        tf.cond(tf.equal(step % every, 0), branch, lambda: tf.constant(0))

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
        written = [i for i, grads in enumerate(per_layer) if grads]

        def write() -> None:
            slot = self.slot(step)
            if written:
                rows = _rows(slot, written)
                _scatter(self.grad_step_buf, rows, tf.fill([len(written)], step))
                values = stats.variable_grad_stats([g for _, g, _ in per_var])
                _scatter(self.grad_buf, _rows(slot, [j for j, _, _ in per_var]), values)
                if self.guarded:
                    for j, _, v in per_var:
                        self.shadows[j].assign(tf.cast(v, tf.float32))
                else:
                    # Read now, before the update (reads and writes of a variable run in
                    # program order in a tf.function); the update copies rather than
                    # overwrite a buffer still read.
                    self._before_of()[group] = {
                        j: tf.cast(tf.convert_to_tensor(v), tf.float32) for j, _, v in per_var
                    }
            if not group:
                lr = math.nan if learning_rate is None else learning_rate
                scalars = tf.stack([self.loss_var, tf.cast(lr, tf.float32)])
                _scatter(self.scalar_buf, tf.reshape(slot, [1, 1]), scalars[None])
            _scatter(self.step_buf, tf.reshape(slot, [1, 1]), step[None])

        def write_hist() -> None:
            slot = self.slot(step)
            if written:
                hists = tf.stack([histograms.grad_histogram(per_layer[i]) for i in written])
                _scatter(self.grad_hist_buf, _rows(slot, written), hists)
            _scatter(self.hist_step_buf, tf.reshape(slot, [1, 1]), step[None])

        self._when(step, self.freqs.freq, write)
        self._when(step, self.freqs.histogram, write_hist)

    def record_update(self, step: tf.Tensor, group: int | None = None) -> None:
        """On recorded steps, after the optimizer update: weight norms and ‖Δw‖ per layer.

        Runs in-graph (callback) or eagerly (Scope).

        Args:
            step: the step whose update was just applied.
            group: the optimizer that applied it (its layers only); None: every layer.
        """
        step = tf.cast(step, tf.int64)
        layers = [
            i
            for i in range(len(self.plan.grad_variables))
            if group is None or self._layer_group[i] == group
        ]

        before = None if self.guarded else self._before_of().pop(group, None)

        def write() -> None:
            indices, values, olds = [], [], []
            for i in layers:
                for v, j in zip(self.plan.grad_variables[i], self._layer_vars[i], strict=True):
                    old = self.shadows[j] if before is None else before.get(j)
                    if old is None:
                        continue  # no gradient reached it in this step: no record row either
                    indices.append(j)
                    values.append(tf.cast(v.value, tf.float32))
                    olds.append(old)
            if not indices:
                return
            squares = stats.update_squares(values, olds)
            _scatter(self.weight_buf, _rows(self.slot(step), indices), squares)

        if before is None and not self.guarded:
            return  # the gradient hook did not run in this trace (nothing was recorded)
        self._when(step, self.freqs.freq, write)

    def _before_of(self) -> dict[int | None, dict[int, tf.Tensor]]:
        # This thread's weights-before-update, by optimizer group.
        if not hasattr(self._before, "groups"):
            self._before.groups = {}
        return self._before.groups

    def record_activation(self, index: int, outputs: tf.Tensor, step: tf.Tensor) -> None:
        """In-graph: on activation-recording steps, reduce one layer's output.

        Args:
            index: position of the layer in ``plan.act_layers``.
            outputs: the layer's output tensor.
            step: the current step.
        """
        self.record_activations([(index, outputs)], step)

    def record_activations(self, outputs: Sequence[tuple[int, tf.Tensor]], step: tf.Tensor) -> None:
        """In-graph: on activation-recording steps, reduce the outputs of one step's layers.

        One write per buffer for all of them (the train step hands them over at its end).

        Args:
            outputs: ``(index in plan.act_layers, output tensor)`` of each layer call.
            step: the current step.
        """
        items = _last_per_index(outputs)
        if not items:
            return
        step = tf.cast(step, tf.int64)
        indices = [i for i, _ in items]

        def write() -> None:
            rows = _rows(self.slot(step), indices)
            kinds = [self.plan.act_layers[i][2] for i, _ in items]
            _scatter(self.act_buf, rows, stats.act_stats_rows([x for _, x in items], kinds))
            _scatter(self.act_step_buf, rows, tf.fill([len(items)], step))

        def write_hist() -> None:
            values = [histograms.act_histogram(x, self.plan.act_layers[i][2]) for i, x in items]
            _scatter(self.act_hist_buf, _rows(self.slot(step), indices), tf.stack(values))

        self._when(step, self.freqs.activation, write)
        self._when(step, self.freqs.histogram, write_hist)

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
        slot = self.slot(tf.constant(step, tf.int64))
        rows = tf.reshape(tf.stack([slot, tf.constant(0, tf.int64)]), [1, 2])
        _scatter(self.scalar_buf, rows, tf.constant([loss], tf.float32))

    # ------------------------------------------------------------------ host half

    def reset(self) -> None:
        """Forgets what was read so far and clears the buffers (host)."""
        self.step_buf.assign(tf.fill([self.slots], tf.constant(-1, tf.int64)))
        self.grad_step_buf.assign(tf.fill(self.grad_step_buf.shape, tf.constant(-1, tf.int64)))
        self.act_step_buf.assign(tf.fill(self.act_step_buf.shape, tf.constant(-1, tf.int64)))
        self.hist_step_buf.assign(tf.fill([self.slots], tf.constant(-1, tf.int64)))
        self._last_step = -1
        self.carried = None
        self.unread = False  # cleared: nothing to read

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
        if self.carry and not self.unread:
            return [], []  # no recorded execution since the last read (e.g. the fit's end)
        records, hists, last = read_buffers(self, self._last_step, epoch, loss_fallback)
        self._last_step = last
        return records, hists
