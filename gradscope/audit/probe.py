"""Probe: a few training steps on a copy of the model, the audit's trial.

The user's model is never trained or mutated: :func:`probe` runs the one trial
(:func:`gradscope.trial.runner.run_trial`, or with ``light=True`` the untraced
:func:`gradscope.audit.light.light_probe`): a copy with the same weights, compiled by the trial
policy (the model's own compile settings, else ``SGD(0.01, momentum=0.9)``), fitted on the given
data or on synthetic inputs the model accepts (:mod:`gradscope.trial.synthetic`: token ids for
embeddings, a sequence length its convolutions fit, one array per input) with targets drawn to
match the loss. A probe that cannot run through no fault of the data raises
:class:`gradscope.errors.TrialNotRunError`; :func:`gradscope.audit.audit` then keeps the static
findings and reports the probe as not run.

The data helpers moved to :mod:`gradscope.trial.data` and the loss and optimizer rules to
:mod:`gradscope.trial.policy`; they are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.audit.light import light_probe, light_supported
from gradscope.data.store import Run
from gradscope.trial.data import (
    MAX_EXAMPLE_VALUES,
    UNKNOWN_DIM,
    TrialData,
    check_arrays,
    check_data,
    data_errors,
    feed,
    load_npz_data,
    synthetic_data,
)
from gradscope.trial.policy import infer_loss, legacy_optimizer
from gradscope.trial.runner import DEFAULT_BATCH_SIZE, run_trial

#: Training steps of the probe by default.
DEFAULT_STEPS = 8
#: Random seed of the audit's probe (Keras, synthetic data, batch order).
PROBE_SEED = 0
#: Batches in the probe's synthetic set: a small set seen repeatedly, so that a healthy model
#: visibly lowers its loss on it within a few steps.
SYNTHETIC_BATCHES = 4

#: The probe's data (the trial's data type, under its former name).
ProbeData = TrialData


def probe(
    model: keras.Model,
    data: tuple[Any, np.ndarray] | None = None,
    steps: int = DEFAULT_STEPS,
    log_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    light: bool = False,
    owned: bool = False,
) -> Run:
    """Trains a copy of ``model`` for a few steps, recording every step, and returns the run.

    The recorded probe fits the copy under ``GradScope(freq=1)``; the light one
    (:func:`gradscope.audit.light.light_probe`, the audit's default) runs the same steps in
    Keras's own traced step and records the same statistics without tracing an instrumented
    step. A model the light probe cannot follow
    (:func:`gradscope.audit.light.light_supported`) gets the recorded one.

    A model loaded from a file should be compiled as saved first
    (:func:`gradscope.trial.policy.compile_as_saved`), so the probe trains with the file's loss
    and optimizer.

    Args:
        model: the model to probe; it is not modified.
        data: ``(x, y)``; None for synthetic data (``batch_size * min(steps, 4)`` examples).
        steps: number of optimizer steps (>= 1).
        log_dir: where the probe's run goes (GradScope creates a new run directory under it,
            ``run.path``); a new temporary directory if None.
        batch_size: examples per step.
        seed: random seed of the synthetic data, the batch order and Keras.
        light: run the light probe when the model allows it.
        owned: let the light probe train ``model`` itself (see
            :func:`gradscope.audit.light.light_probe`); the recorded probe always copies.

    Returns:
        The recorded :class:`Run`.

    Raises:
        GradscopeInputError: for unusable data or steps.
        TrialNotRunError: for models that cannot be copied or compiled, or that gradscope's
            synthetic inputs do not fit.

    Example:
        >>> run = probe(model, steps=10)  # doctest: +SKIP
    """
    x, y = (None, None) if data is None else data
    n = batch_size * min(steps, SYNTHETIC_BATCHES)
    trial_data = feed(model, x, y, n=max(n, 1), seed=seed)
    root = (
        Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="gradscope-audit-"))
    )
    if light and light_supported(model):
        return light_probe(
            model, trial_data, steps, root, seed=seed, batch_size=batch_size, owned=owned
        )
    return run_trial(model, trial_data, steps, root, seed=seed, batch_size=batch_size).run


__all__ = [
    "DEFAULT_STEPS",
    "MAX_EXAMPLE_VALUES",
    "PROBE_SEED",
    "UNKNOWN_DIM",
    "ProbeData",
    "check_arrays",
    "check_data",
    "data_errors",
    "infer_loss",
    "legacy_optimizer",
    "load_npz_data",
    "probe",
    "synthetic_data",
]
