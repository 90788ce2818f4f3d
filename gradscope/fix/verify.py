"""Prove a fix helped: train the original and the fixed model briefly, side by side, and compare.

Both trials train copies (the given models are never trained), start from each model's current
weights, see exactly the same batches in the same order under the same seed, and are recorded with
``GradScope(freq=1)``; the run detectors then judge both runs. A fix is *verified* when the
findings it targets are gone from the fixed model's run and its trial loss is not worse.

Example:
    >>> result = verify(model, apply_fix(model, "relu_activation"), x, y)  # doctest: +SKIP
    >>> result.verified, result.after.first_last_grad_ratio  # doctest: +SKIP
    (True, 1.1)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.audit.probe import check_data, data_errors, infer_loss, synthetic_data
from gradscope.collect.callback import GradScope
from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import load_run
from gradscope.detect import detect
from gradscope.detect.static import static_findings
from gradscope.errors import GradscopeInputError
from gradscope.findings import sort_findings

# TrialStats, Verification, summarize and compare are plain data (no Keras) in fix.trials;
# re-exported here, where callers have always found them.
from gradscope.fix.trials import (
    LOSS_TOLERANCE,
    TrialStats,
    Verification,
    compare,
    summarize,
)
from gradscope.model.extract import spec_from_model
from gradscope.model.rebuild import UnsupportedModelError, clone_with_weights, rebuild

#: Trial steps by default: enough records for the detectors' windows, seconds on a CPU.
DEFAULT_STEPS = 60
#: Optimizer for models saved without one (what the chapter's experiments use).
DEFAULT_OPTIMIZER = {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9}}


def trial_data(
    model: keras.Model,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    n: int = 512,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns checked user data, or synthetic data matching the model's input and loss.

    Synthetic data comes from the audit probe's generator (standard-normal inputs, targets drawn
    to match the loss), so audit and fix see the same kind of data.

    Args:
        model: the model.
        x: inputs, or None for synthetic data.
        y: targets (required with x).
        n: number of synthetic examples.
        seed: seed of the synthetic data.

    Returns:
        ``(x, y)``.

    Raises:
        GradscopeInputError: for unusable data (shapes, NaN, lengths) or only one of x, y.

    Example:
        >>> x, y = trial_data(model)  # doctest: +SKIP
    """
    if (x is None) != (y is None):
        raise GradscopeInputError("Pass both x and y, or neither for synthetic data.")
    if x is None or y is None:
        data = synthetic_data(model, _loss_of(model), n=n, seed=seed)
    else:
        data = check_data(model, np.asarray(x), np.asarray(y))
    return data.x, data.y


def _loss_of(model: keras.Model) -> Any:
    if model.compiled:
        loss = model.get_compile_config().get("loss")
        if loss is not None:
            return loss
    return infer_loss(model)


def _trial_copy(model: keras.Model) -> keras.Model:
    # A copy to train: same weights, compiled like the original (fresh optimizer state).
    try:
        copy_ = rebuild(model, {})
    except UnsupportedModelError:
        copy_ = clone_with_weights(
            model,
            f"'{model.name}' for a trial",
            "subclassed models need get_config()/from_config().",
        )
        if model.compiled:
            copy_.compile_from_config(model.get_compile_config())
    if not copy_.compiled:
        loss = infer_loss(model)
        metrics = ["accuracy"] if "crossentropy" in str(loss) else None
        optimizer = keras.optimizers.deserialize(dict(DEFAULT_OPTIMIZER))
        copy_.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return copy_


def _order(n: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    # Example indices for exactly `steps` batches: seeded permutations, concatenated.
    rng = np.random.default_rng(seed)
    need = steps * batch_size
    chunks = [rng.permutation(n) for _ in range(math.ceil(need / n))]
    return np.concatenate(chunks)[:need]


def run_trial(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    run_dir: str | os.PathLike[str],
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
) -> TrialStats:
    """Trains a copy of a model for ``steps`` steps with GradScope(freq=1) and summarizes it.

    Args:
        model: the model (not trained; a copy is).
        x: inputs.
        y: targets.
        run_dir: where the trial's run goes: GradScope creates a new run directory under it
            (``TrialStats.run_dir``).
        steps: optimizer steps (>= 3, the detectors' minimum window).
        seed: Keras seed and batch order seed.
        batch_size: examples per step.
        thresholds: detector thresholds.

    Returns:
        The :class:`TrialStats`.

    Raises:
        GradscopeInputError: for steps < 3 or models that cannot be copied.

    Example:
        >>> stats = run_trial(model, x, y, "runs/trial", steps=30)  # doctest: +SKIP
    """
    if steps < thresholds.window.min_records:
        raise GradscopeInputError(
            f"steps must be at least {thresholds.window.min_records} for the detectors to judge "
            f"the trial. Received: steps={steps}"
        )
    keras.utils.set_random_seed(seed)
    trained = _trial_copy(model)
    order = _order(len(x), steps, batch_size, seed)
    callback = GradScope(run_dir, freq=1, tensorboard=False, verbose=0)
    # Targets that do not fit the output or loss only fail inside fit: one line, not a traceback.
    with data_errors(trained, _loss_of(trained)):
        trained.fit(
            x[order],
            y[order],
            batch_size=batch_size,
            epochs=1,
            shuffle=False,  # the order above is the shared one
            verbose=0,
            callbacks=[callback],
        )
    run = load_run(callback.run_dir)
    # Static rules too, so fixes aimed at e.g. init_activation_mismatch are checked as well.
    findings = detect(run, thresholds) + static_findings(spec_from_model(model), thresholds.static)
    return summarize(run, sort_findings(findings), thresholds)


def verify(
    model: keras.Model,
    fixed_model: keras.Model,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    targets: Sequence[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    before: TrialStats | None = None,
    loss_tolerance: float = LOSS_TOLERANCE,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
) -> Verification:
    """Trials the original and the fixed model on the same batches and compares them.

    Args:
        model: the original model (not trained; a copy is).
        fixed_model: the fixed model (not trained; a copy is).
        x: inputs; None (with y None) for synthetic data matching the model.
        y: targets.
        steps: trial steps per model.
        seed: Keras seed and batch order, shared by both trials.
        batch_size: examples per step.
        targets: finding kinds the fix should remove; default every kind found (warning or
            worse) in the original's trial.
        run_dir: folder for the two runs (under ``before/`` and ``after/``, one run directory
            each per call); a temporary one if None.
        before: a trial of the original already run with the same data, steps and seed (saves
            retraining it when several fixes are verified in turn).
        loss_tolerance: relative slack for "the loss is not worse".
        thresholds: detector thresholds.

    Returns:
        The :class:`Verification`.

    Raises:
        GradscopeInputError: for unusable data or steps, or models that cannot be copied.

    Example:
        >>> v = verify(model, apply_fix(model, "relu_activation"), x, y)  # doctest: +SKIP
        >>> v.verified  # doctest: +SKIP
        True
    """
    x, y = trial_data(model, x, y, seed=seed)
    root = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="gradscope-fix-"))
    if before is None:
        before = run_trial(model, x, y, root / "before", steps, seed, batch_size, thresholds)
    after = run_trial(fixed_model, x, y, root / "after", steps, seed, batch_size, thresholds)
    return compare(before, after, targets, loss_tolerance)


__all__ = [
    "DEFAULT_OPTIMIZER",
    "DEFAULT_STEPS",
    "LOSS_TOLERANCE",
    "TrialStats",
    "Verification",
    "compare",
    "run_trial",
    "summarize",
    "trial_data",
    "verify",
]
