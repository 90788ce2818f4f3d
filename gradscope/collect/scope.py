"""``Scope``: the GradScope engine for custom training loops."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from gradscope.collect.engine import Recorder, validate_frequencies
from gradscope.collect.hooks import Hooks
from gradscope.collect.layers import plan_watch
from gradscope.collect.session import RecordingSession, log_float


class Scope:
    """Records the same statistics as :class:`GradScope` from a custom training loop.

    Call :meth:`record_gradients` inside your (compiled) train step with the gradients you are
    about to apply, and :meth:`step_end` from Python after each step. Activations of watched
    layers are recorded from the forward pass of recorded steps (any call of the model while the
    scope is open; close it before evaluating if that matters).

    Like :class:`GradScope`, each Scope records into its own new run directory under
    ``log_dir``, named after the UTC time it was created (``runs/custom/20261126-094012``), so a
    re-run script never mixes records with an earlier run.

    Args:
        model: a built Keras model.
        log_dir: the directory runs go under (created if missing).
        freq: record every ``freq`` steps.
        histogram_freq: histograms every ``histogram_freq`` steps (0: off; multiple of freq).
        activation_freq: activations every ``activation_freq`` steps (None: freq; 0: off).
        layers: names of layers to watch; None watches all.
        optimizer: the optimizer, described in ``meta.json`` (optional).
        tensorboard: also write TensorBoard events.
        max_records: bound on step records kept on disk.

    Attributes:
        run_dir: this scope's run directory under ``log_dir``.

    Example:
        >>> scope = Scope(model, "runs/custom", freq=10)  # doctest: +SKIP
        >>> @tf.function
        ... def train_step(x, y):
        ...     with tf.GradientTape() as tape:
        ...         loss = loss_fn(y, model(x, training=True))
        ...     grads = tape.gradient(loss, model.trainable_variables)
        ...     scope.record_gradients(grads, model.trainable_variables)
        ...     optimizer.apply(grads, model.trainable_variables)
        ...     return loss
        >>> for x, y in dataset:  # doctest: +SKIP
        ...     scope.step_end(loss=train_step(x, y))
        >>> scope.close()  # doctest: +SKIP
        >>> run = gradscope.load_run(scope.run_dir)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: keras.Model,
        log_dir: str | Path,
        freq: int = 10,
        histogram_freq: int = 0,
        activation_freq: int | None = None,
        layers: Sequence[str] | None = None,
        optimizer: keras.optimizers.Optimizer | None = None,
        tensorboard: bool = True,
        max_records: int | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"`model` must be a keras.Model. Received: model={type(model).__name__}"
            )
        freqs = validate_frequencies(freq, activation_freq, histogram_freq)
        self.log_dir = Path(log_dir)
        self.model = model
        self.freqs = freqs
        plan = plan_watch(model, layers)
        self.plan = plan
        self._step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.recorder = Recorder(plan, freqs, slots=3)
        self._hooks = Hooks(model, self.recorder, step_fn=lambda: self._step_var.value())
        if freqs.activation:
            self._hooks.install_layers()
            self._hooks.activations_on = True
        config = {
            "log_dir": str(self.log_dir),
            "freq": freqs.freq,
            "histogram_freq": freqs.histogram,
            "activation_freq": freqs.activation,
            "layers": None if layers is None else list(layers),
            "custom_loop": True,
        }
        self.session = RecordingSession(
            self.log_dir, model, plan, self.recorder, config, optimizer, tensorboard, max_records
        )
        self.run_dir = self.session.run_dir
        self.epoch: int | None = None

    @property
    def step(self) -> int:
        """Number of completed steps (host value)."""
        return int(self._step_var.numpy())

    def record_gradients(
        self, grads: Sequence[tf.Tensor | None], variables: Sequence[tf.Variable]
    ) -> None:
        """In-graph: reduces the step's gradients on recorded steps. Call before applying them.

        Args:
            grads: gradients, one per variable (None allowed).
            variables: the variables they belong to (e.g. ``model.trainable_variables``).

        Raises:
            ValueError: if the two lists differ in length.
        """
        grads = list(grads)
        variables = list(variables)
        if len(grads) != len(variables):
            raise ValueError(
                "`grads` and `variables` must have the same length. "
                f"Received: {len(grads)} gradients and {len(variables)} variables"
            )
        self.recorder.record_gradients(
            list(zip(grads, variables, strict=False)), self._step_var.value()
        )

    def step_end(self, loss: Any = None, epoch: int | None = None) -> None:
        """Host: closes a step; on recorded steps measures the update and writes the record.

        Call it from Python after your train step returned (not inside ``tf.function``).

        Args:
            loss: the step's loss (tensor or float), recorded as is (NaN kept).
            epoch: optional epoch number stamped on records.

        Raises:
            RuntimeError: when called inside a ``tf.function``.
        """
        if tf.inside_function():
            raise RuntimeError(
                "Scope.step_end() reads a few numbers on the host and must be called from Python "
                "after the train step returns, not inside tf.function."
            )
        if epoch is not None:
            self.epoch = epoch
        step = self.step
        if step % self.freqs.freq == 0:
            self.recorder.record_update(tf.constant(step, tf.int64))
            value = log_float(loss)
            if value is not None:
                self.recorder.put_loss(step, value)
            self.session.poll(self.epoch)
        self._step_var.assign_add(1)

    def epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Records an epoch's logs (e.g. validation metrics).

        Args:
            epoch: the epoch index.
            logs: metric name -> value.
        """
        self.epoch = epoch + 1
        self.session.epoch_end(epoch, self.step, logs)

    def close(self) -> None:
        """Finishes the run and removes the activation hooks from the model (idempotent)."""
        self._hooks.remove()
        self.session.close("completed")

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self._hooks.remove()
        self.session.close("completed" if exc_type is None else "interrupted")
