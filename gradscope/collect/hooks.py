"""Instance-level patches that trace the recorder into Keras's own train step.

Nothing here changes a class: every patch is an attribute set on one object (the optimizer, the
model, a layer) and :meth:`Hooks.remove` deletes it again, so the user's model is left exactly as
it was once training ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from gradscope.collect.engine import Recorder

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


class Hooks:
    """Installs and removes the recording patches for one model.

    Args:
        model: the model being trained.
        recorder: where statistics go.
        step_fn: returns the current step as a tensor (in-graph).
    """

    def __init__(
        self, model: keras.Model, recorder: Recorder, step_fn: Callable[[], tf.Tensor]
    ) -> None:
        self.model = model
        self.recorder = recorder
        self.step_fn = step_fn
        self._patched: list[tuple[Any, str, Any]] = []
        # True while Keras traces its train step (or while a probe batch runs), so that
        # evaluate/predict traces are not instrumented.
        self.activations_on = False
        # Set while a probe batch is traced: activations are written for this step instead.
        self.step_override: tf.Tensor | None = None
        self.in_train_step = False

    def _patch(self, obj: Any, name: str, value: Any) -> None:
        previous = obj.__dict__.get(name, _SENTINEL)
        self._patched.append((obj, name, previous))
        object.__setattr__(obj, name, value)

    def remove(self) -> None:
        """Restores every patched attribute (idempotent)."""
        while self._patched:
            obj, name, previous = self._patched.pop()
            if previous is _SENTINEL:
                obj.__dict__.pop(name, None)
            else:
                object.__setattr__(obj, name, previous)

    def install_optimizer(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Wraps the optimizer's update so gradients and updates are reduced in its step.

        The TF optimizer's ``_all_reduce_sum_gradients`` returns the gradients that will be
        applied (unscaled, clipped, summed over replicas); ``_backend_update_step`` brackets the
        weight update itself.

        Args:
            optimizer: the (innermost) optimizer.

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
            recorder.record_gradients(reduced, state["step"], state.get("lr"))
            return reduced

        def update_step(grads: Any, trainable_variables: Any, learning_rate: Any) -> Any:
            state["step"] = self.step_fn()
            state["lr"] = learning_rate
            result = original_update(grads, trainable_variables, learning_rate)
            recorder.record_update(state["step"])
            return result

        self._patch(optimizer, "_all_reduce_sum_gradients", all_reduce)
        self._patch(optimizer, "_backend_update_step", update_step)

    def install_model(self, model: keras.Model, activations_in_step: bool = True) -> None:
        """Wraps ``train_step`` (to know when Keras traces training) and ``_compute_loss``.

        Args:
            model: the model being trained.
            activations_in_step: record activations of the training batch (False when a fixed
                probe batch is used instead).
        """
        recorder = self.recorder
        original_step = model.train_step
        replicas = model.distribute_strategy.num_replicas_in_sync

        def train_step(data: Any) -> Any:
            self.in_train_step = True
            self.activations_on = activations_in_step
            try:
                return original_step(data)
            finally:
                self.in_train_step = False
                self.activations_on = False

        self._patch(model, "train_step", train_step)
        original_loss = getattr(model, "_compute_loss", None)
        if original_loss is None:
            return

        def compute_loss(*args: Any, **kwargs: Any) -> Any:
            loss = original_loss(*args, **kwargs)
            if self.in_train_step:
                # Keras divides the loss by the replica count under tf.distribute.
                recorder.record_loss(loss * replicas)
            return loss

        self._patch(model, "_compute_loss", compute_loss)

    def install_layers(self) -> None:
        """Wraps ``call`` of every layer whose activations are recorded."""
        for index, (_, layer, _) in enumerate(self.recorder.plan.act_layers):
            self._patch(layer, "call", self._wrap_call(layer.call, index))

    def _wrap_call(self, original: Callable[..., Any], index: int) -> Callable[..., Any]:
        recorder = self.recorder

        def call(*args: Any, **kwargs: Any) -> Any:
            outputs = original(*args, **kwargs)
            if self.activations_on:
                first = outputs[0] if isinstance(outputs, list | tuple) else outputs
                step = self.step_override if self.step_override is not None else self.step_fn()
                recorder.record_activation(index, first, step)
            return outputs

        return call
