"""Instance-level patches that trace the recorder into Keras's own train step.

Nothing here changes a class: every patch is an attribute set on one object (the optimizer, the
model, a layer) and :meth:`Hooks.remove` deletes it again, so the user's model is left exactly as
it was once training ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from gradscope.collect.engine import Recorder
from gradscope.collect.readout import CARRY_KEY, buffer_values

_SENTINEL = object()


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """Returns the optimizer that really applies updates (unwraps LossScaleOptimizer).

    Args:
        optimizer: a Keras optimizer, possibly wrapping another one.

    Returns:
        The innermost optimizer.

    Example:
        >>> base_optimizer(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())).name
        'SGD'
    """
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


class Patches:
    """Wrapper functions set as attributes of single objects, each restored by :meth:`remove`.

    Wrappers check :attr:`active` and pass calls straight through once removed. That matters
    when two objects patch the same attribute (two GradScope callbacks on one model) and are
    not removed in reverse order: a wrapper another one has wrapped since cannot be cut out of
    the middle of the chain, so it stays there, inactive, until the outer one is removed and
    restores past every inactive wrapper below it.

    Attributes:
        active: False once :meth:`remove` ran.

    Example:
        >>> patches = Patches()
        >>> patches._patch(layer, "call", wrapped_call)  # doctest: +SKIP
        >>> patches.remove()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str, Any]] = []
        self._history: list[tuple[Any, str, Any]] = []  # every patch made, for reinstall()
        self.active = True

    def _patch(self, obj: Any, name: str, value: Callable[..., Any]) -> None:
        value._gradscope_patch = (self, obj.__dict__.get(name, _SENTINEL))  # type: ignore[attr-defined]
        self._patched.append((obj, name, value))
        self._history.append((obj, name, value))
        object.__setattr__(obj, name, value)

    def reinstall(self) -> None:
        """Sets every patch made so far again, after :meth:`remove`, in the same order.

        A later fit can then run functions traced through these very wrappers (a retrace, for
        a new input shape, goes through them again and stays instrumented).
        """
        history, self._history = self._history, []
        self.active = True
        for obj, name, value in history:
            self._patch(obj, name, value)

    def remove(self) -> None:
        """Restores every patched attribute still set to this object's wrapper (idempotent)."""
        self.active = False
        while self._patched:
            obj, name, value = self._patched.pop()
            if obj.__dict__.get(name, _SENTINEL) is not value:
                continue  # wrapped by another patch since: stays, inactive (see the class doc)
            previous = value._gradscope_patch[1]
            while (below := getattr(previous, "_gradscope_patch", None)) and not below[0].active:
                previous = below[1]
            if previous is _SENTINEL:
                obj.__dict__.pop(name, None)
            else:
                object.__setattr__(obj, name, previous)


class Hooks(Patches):
    """Installs and removes the recording patches for one model.

    While Keras traces the train step, the hooks also note (in Python, at trace time) what the
    step went through: ``step_traced``, ``applied`` (the optimizer groups whose update ran in
    it), ``loss_traced`` (Keras's loss computation ran in it) and ``called`` (the activation
    layers called in it), so the callback can say what a custom train step leaves unrecorded.

    Args:
        model: the model being trained.
        recorder: where statistics go.
        step_fn: returns the current step as a tensor (in-graph).
    """

    def __init__(
        self, model: keras.Model, recorder: Recorder, step_fn: Callable[[], tf.Tensor]
    ) -> None:
        super().__init__()
        self.model = model
        self.recorder = recorder
        self.step_fn = step_fn
        # True while Keras traces its train step (or while a probe batch runs), so that
        # evaluate/predict traces are not instrumented.
        self.activations_on = False
        self.in_train_step = False
        self.step_traced = False
        # None: Keras's loss computation could not be hooked, so nothing is known about it.
        self.loss_traced: bool | None = False
        self.applied: set[int | None] = set()
        self.called: set[int] = set()
        self.activations_in_step = False
        self.layers_hooked = False
        # Per thread (MirroredStrategy traces each replica's step in its own thread): the
        # activations of the step being traced, written together at its end, and that step's
        # graph. Unset outside a train step or probe pass (Scope's loop: each call writes).
        self._local = threading.local()

    def install_optimizer(
        self, optimizer: keras.optimizers.Optimizer, group: int | None = None
    ) -> None:
        """Wraps the optimizer's update so gradients and updates are reduced in its step.

        The TF optimizer's ``_all_reduce_sum_gradients`` returns the gradients that will be
        applied (unscaled, clipped, summed over replicas); ``_backend_update_step`` brackets the
        weight update itself.

        Args:
            optimizer: the (innermost) optimizer.
            group: its index in the plan's optimizer groups; None when it is the only one.

        Raises:
            ValueError: if the optimizer does not have the TensorFlow optimizer's update path.
        """
        if not hasattr(optimizer, "_backend_update_step") or not hasattr(
            optimizer, "_all_reduce_sum_gradients"
        ):
            raise ValueError(
                "GradScope needs a Keras 3 optimizer on the TensorFlow backend. "
                f"Received: optimizer={type(optimizer).__name__}"
            )
        recorder = self.recorder
        original_update = optimizer._backend_update_step
        original_reduce = optimizer._all_reduce_sum_gradients
        state: dict[str, Any] = {}

        def all_reduce(grads_and_vars: Any) -> Any:
            reduced = original_reduce(grads_and_vars)
            # Only in the instrumented step: Keras's own step, traced while these patches are
            # installed (its first call may come mid-fit), stays plain.
            if not (self.active and self.in_train_step):
                return reduced
            recorder.record_gradients(reduced, state["step"], state.get("lr"), group=group)
            return reduced

        def update_step(grads: Any, trainable_variables: Any, learning_rate: Any) -> Any:
            if not (self.active and self.in_train_step):
                return original_update(grads, trainable_variables, learning_rate)
            self.applied.add(group)
            state["step"] = self.step_fn()
            state["lr"] = learning_rate
            result = original_update(grads, trainable_variables, learning_rate)
            recorder.record_update(state["step"], group=group)
            return result

        self._patch(optimizer, "_all_reduce_sum_gradients", all_reduce)
        self._patch(optimizer, "_backend_update_step", update_step)

    def install_model(
        self,
        model: keras.Model,
        activations_in_step: bool = True,
        counter: tf.Variable | None = None,
    ) -> None:
        """Wraps ``train_step`` (to know when Keras traces training) and ``_compute_loss``.

        Args:
            model: the model being trained.
            activations_in_step: record activations of the training batch (False when a fixed
                probe batch is used instead).
            counter: a step counter to increment after every train step (the clock of custom
                train steps, whose optimizers may apply several times a step, or not at all).
        """
        recorder = self.recorder
        original_step = model.train_step
        replicas = model.distribute_strategy.num_replicas_in_sync
        self.activations_in_step = activations_in_step

        def train_step(data: Any) -> Any:
            if not self.active:
                return original_step(data)
            self.in_train_step = True
            self.step_traced = True
            self.activations_on = activations_in_step
            # Read now, before the step's update (a variable would be read at its use, after
            # it): the step its activations belong to.
            step = tf.convert_to_tensor(self.step_fn())
            pending = self.collect_activations()
            try:
                outputs = original_step(data)
                recorder.record_activations(pending, step)
                if counter is not None:
                    # After the step: every read of the counter in it sees the same value.
                    counter.assign_add(1)
                if recorder.carry and isinstance(outputs, dict):
                    # The buffers and the clock leave with the logs: the host needs no second
                    # call to read them (the dispatch takes them out before Keras sees them).
                    clock = tf.cast(self.step_fn(), tf.int64)
                    outputs = {**outputs, CARRY_KEY: (tuple(buffer_values(recorder)), clock)}
                return outputs
            finally:
                self.in_train_step = False
                self.activations_on = False
                self.collect_activations(stop=True)

        self._patch(model, "train_step", train_step)
        original_loss = getattr(model, "_compute_loss", None)
        if original_loss is None:
            self.loss_traced = None
            return

        def compute_loss(*args: Any, **kwargs: Any) -> Any:
            loss = original_loss(*args, **kwargs)
            if self.active and self.in_train_step:
                self.loss_traced = True
                # Keras divides the loss by the replica count under tf.distribute.
                recorder.record_loss(loss * replicas)
            return loss

        self._patch(model, "_compute_loss", compute_loss)

    def collect_activations(self, stop: bool = False) -> list[tuple[int, tf.Tensor]]:
        """Starts (or stops) collecting this thread's activation outputs for one traced step.

        Args:
            stop: stop collecting (layer calls write their own rows again).

        Returns:
            The list the layer wrappers append ``(index, output)`` to (empty when stopping).
        """
        pending: list[tuple[int, tf.Tensor]] = []
        self._local.pending = None if stop else pending
        self._local.graph = None if stop else tf.compat.v1.get_default_graph()
        return pending

    def install_train_function(self, function: Callable[[Any], Any]) -> None:
        """Sets ``model.train_function`` for this fit; :meth:`remove` puts Keras's back.

        Args:
            function: what ``fit`` calls with the data iterator.
        """
        self._patch(self.model, "train_function", function)

    def install_layers(self) -> None:
        """Wraps ``call`` of every layer whose activations are recorded."""
        self.layers_hooked = True
        for index, (_, layer, _) in enumerate(self.recorder.plan.act_layers):
            self._patch(layer, "call", self._wrap_call(layer.call, index))

    def _wrap_call(self, original: Callable[..., Any], index: int) -> Callable[..., Any]:
        recorder = self.recorder

        def call(*args: Any, **kwargs: Any) -> Any:
            outputs = original(*args, **kwargs)
            if self.active and self.activations_on:
                if self.in_train_step:
                    self.called.add(index)
                first = outputs[0] if isinstance(outputs, list | tuple) else outputs
                pending = getattr(self._local, "pending", None)
                # Outputs made inside a cond or loop of the step cannot leave it: written there.
                # An eager step (``run_eagerly=True``) has no graph: its tensors can always wait.
                if pending is not None and (
                    tf.executing_eagerly() or first.graph is self._local.graph
                ):
                    pending.append((index, first))
                else:
                    recorder.record_activation(index, first, self.step_fn())
            return outputs

        return call
