"""The one short recorded training run: copy the model, compile it by the policy, fit, load.

:func:`run_trial` is what the audit's probe and every fix trial run. The given model is only
read: a copy (:func:`gradscope.model.rebuild.clone_with_weights`, same architecture and weights)
is compiled by :class:`~gradscope.trial.policy.OptimizerPolicy` and fitted for exactly ``steps``
batches in the seeded order of :func:`~gradscope.trial.data.batch_order`, recorded with
``GradScope(freq=1)`` into a new run directory under ``log_dir``. Two trials with the same data,
seed and batch size see the same batches in the same order, whichever models they train.

Example:
    >>> result = run_trial(model, feed(model, n=128), steps=8, log_dir="runs/t")  # doctest: +SKIP
    >>> result.optimizer_source, len(result.run.records)  # doctest: +SKIP
    ('default', 8)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.collect.callback import GradScope
from gradscope.data.store import Run, load_run
from gradscope.errors import GradscopeInputError, TrialNotRunError, error_summary
from gradscope.model.rebuild import clone_with_weights
from gradscope.trial.data import TrialData, batch_order, data_errors
from gradscope.trial.policy import OptimizerPolicy, OptimizerSource, infer_loss

#: Examples per step by default.
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class TrialResult:
    """One recorded trial.

    Attributes:
        run: the recorded run (``GradScope(freq=1)``: one record per step).
        trained: the trained copy (never the given model).
        order: example indices in training order; batch ``i`` is
            ``order[i * batch_size:(i + 1) * batch_size]``.
        batch_size: examples per step.
        optimizer_source: ``"model"`` (the model's own compile settings) or ``"default"``.
    """

    run: Run
    trained: keras.Model = field(repr=False)
    order: np.ndarray = field(repr=False)
    batch_size: int
    optimizer_source: OptimizerSource

    @property
    def run_dir(self) -> Path:
        """The run directory (``run.path``)."""
        return self.run.path

    def batches(self, data: TrialData) -> list[tuple[Any, np.ndarray]]:
        """The ``(x, y)`` batches the trial trained on, in order (x a list for several inputs).

        Args:
            data: the data the trial was given.

        Returns:
            One ``(x, y)`` pair per step.

        Example:
            >>> xb, yb = result.batches(data)[0]  # doctest: +SKIP
        """
        b = self.batch_size
        return [data.take(self.order[i : i + b]) for i in range(0, len(self.order), b)]


def run_trial(
    model: keras.Model,
    data: TrialData,
    steps: int,
    log_dir: str | os.PathLike[str],
    *,
    policy: OptimizerPolicy | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrialResult:
    """Trains a copy of ``model`` for ``steps`` steps with GradScope(freq=1) and loads the run.

    Args:
        model: the model; never trained, compiled or otherwise changed (a copy is).
        data: what to train on (:func:`gradscope.trial.data.feed`).
        steps: optimizer steps (>= 1).
        log_dir: GradScope creates a new run directory under it (``TrialResult.run_dir``).
        policy: how the copy is compiled (default :class:`OptimizerPolicy`).
        seed: ``keras.utils.set_random_seed`` before copying, and the batch order's seed.
        batch_size: examples per step (at most the number of examples).
        callbacks: more Keras callbacks for the fit, after GradScope (e.g. a
            :class:`~gradscope.trial.learning.CurveRecorder`).

    Returns:
        The :class:`TrialResult`.

    Raises:
        GradscopeInputError: for steps < 1 and user data that does not fit the model or its
            loss (one line, the cause chained).
        TrialNotRunError: (a GradscopeInputError) for models that cannot be copied or compiled,
            and synthetic data the model does not train on.

    Example:
        >>> result = run_trial(model, feed(model, x, y, n=0), 60, "runs/trial", seed=0)
        ... # doctest: +SKIP
        >>> result.run.steps.tolist()[:3]  # doctest: +SKIP
        [0, 1, 2]
    """
    if steps < 1:
        raise GradscopeInputError(f"--steps must be at least 1. Received: {steps}")
    trained, source = prepare_trial_model(model, policy, seed)
    # A data set smaller than a batch gives batches of all of it, each example once per step.
    size = min(batch_size, len(data))
    order = batch_order(len(data), steps, size, seed)
    callback = GradScope(log_dir, freq=1, tensorboard=False, verbose=0)
    x, y = data.take(order)
    with data_errors(trained, infer_loss(trained), synthetic=data.synthetic):
        trained.fit(
            x,
            y,
            batch_size=size,
            epochs=1,
            shuffle=False,  # the order above is the shared one
            verbose=0,
            callbacks=[callback, *callbacks],
        )
    assert callback.run_dir is not None  # set by the fit's first step
    return TrialResult(load_run(callback.run_dir), trained, order, size, source)


def prepare_trial_model(
    model: keras.Model, policy: OptimizerPolicy | None = None, seed: int = 0, copy: bool = True
) -> tuple[keras.Model, OptimizerSource]:
    """The model a trial trains: a copy (same architecture and weights) compiled by the policy.

    Copied right after seeding, so its random layers (dropout) draw the same masks in every
    trial of the same seed, whichever probe or trial trains it.

    Args:
        model: the model; only read.
        policy: how the copy is compiled (default :class:`OptimizerPolicy`).
        seed: ``keras.utils.set_random_seed`` before copying.
        copy: False trains ``model`` itself, for a caller that owns it and seeded right before
            building it (:func:`gradscope.model.loader.load_model_safely` with ``seed``): its
            random layers then hold what a copy's would. Only compiled by the policy.

    Returns:
        ``(copy, optimizer_source)``.

    Raises:
        TrialNotRunError: if the model cannot be copied or compiled.

    Example:
        >>> trained, source = prepare_trial_model(model)  # doctest: +SKIP
    """
    policy = policy or OptimizerPolicy()
    if not copy:
        if model.compiled and model.optimizer is not None and not model.optimizer.built:
            # Compiled and never trained: compiling it again would give it what it has.
            return model, "model"
        try:
            return model, policy.compile(model, model)
        except GradscopeInputError as err:
            raise TrialNotRunError(str(err), stage="compile") from err
    keras.utils.set_random_seed(seed)
    hint = "subclassed models and custom layers need get_config()/from_config()."
    try:
        trained = clone_with_weights(model, f"'{model.name}' for a trial", hint)
    except GradscopeInputError as err:
        # Keras's own message can hold the whole model config: the cause, in full sentences.
        cause = error_summary(err.__cause__) if err.__cause__ is not None else str(err)
        raise TrialNotRunError(
            f"Cannot copy '{model.name}' for a trial ({cause.rstrip('.')}); {hint}", stage="copy"
        ) from err
    try:
        source = policy.compile(trained, model)
    except GradscopeInputError as err:
        raise TrialNotRunError(str(err), stage="compile") from err
    return trained, source
