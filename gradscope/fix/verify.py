"""Prove a fix helped: train the original and the fixed model side by side, and compare learning.

Both trials are the one trial of :mod:`gradscope.trial` (:func:`fix_trial`): they train copies
(the given models are never trained), start from each model's current weights, are compiled by
the one optimizer policy (the model's own compile settings: see
:mod:`gradscope.trial.setup`), see exactly the same batches in the same order under the same
seed, and are recorded with ``GradScope(freq=1)``; the run detectors and static rules then judge
both. The trial set is a few hundred examples (:func:`fix_data`) seen for several epochs, scored
whole after every pass (:class:`~gradscope.trial.learning.CurveRecorder`). A fix is *verified*
when the findings it targets are gone from the fixed model's run **and** it learns measurably
better: see :func:`gradscope.fix.trials.compare` and
:class:`~gradscope.config.RepairThresholds`.

Example:
    >>> result = verify(model, apply_fix(model, "relu_activation"), x, y)  # doctest: +SKIP
    >>> result.verified, result.after.first_last_grad_ratio  # doctest: +SKIP
    (True, 1.1)
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import keras
import numpy as np

from gradscope.config import DETECT_THRESHOLDS, REPAIR_THRESHOLDS, DetectThresholds
from gradscope.detect import detect, registered
from gradscope.detect.static import static_findings
from gradscope.errors import GradscopeInputError
from gradscope.findings import KINDS, sort_findings

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
from gradscope.trial import runner
from gradscope.trial.data import TrialData, feed
from gradscope.trial.learning import CurveRecorder
from gradscope.trial.policy import DEFAULT_OPTIMIZER
from gradscope.trial.runner import DEFAULT_BATCH_SIZE

#: Examples of a fix trial: a seeded subset of the user's data, or as many synthetic ones.
SYNTHETIC_EXAMPLES = REPAIR_THRESHOLDS.trial_examples


def check_kinds(kinds: Iterable[str] | None) -> frozenset[str] | None:
    """Checks the finding kinds a user restricts the trials to.

    Args:
        kinds: finding kinds (:data:`gradscope.findings.KINDS`), or None for all.

    Returns:
        The kinds as a set, or None for all.

    Raises:
        GradscopeInputError: for a kind gradscope does not know.

    Example:
        >>> sorted(check_kinds(["nonfinite", "dying_relu"]))
        ['dying_relu', 'nonfinite']
    """
    if kinds is None:
        return None
    chosen = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise GradscopeInputError(
            f"Unknown finding kinds {unknown}; known kinds: {', '.join(sorted(KINDS))}."
        )
    return chosen


def trial_steps(
    examples: int = SYNTHETIC_EXAMPLES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    epochs: int = REPAIR_THRESHOLDS.trial_epochs,
) -> int:
    """Optimizer steps of ``epochs`` passes over ``examples`` in batches of ``batch_size``.

    Args:
        examples: trial examples.
        batch_size: examples per step.
        epochs: passes over the examples.

    Returns:
        The step count (at least the detectors' 3).

    Example:
        >>> trial_steps(256, 32, 8)
        64
    """
    per_epoch = math.ceil(examples / max(1, min(batch_size, examples)))
    return max(DETECT_THRESHOLDS.window.min_records, epochs * per_epoch)


#: Trial steps by default: 8 passes over 256 examples at batch size 32.
DEFAULT_STEPS = trial_steps()


def fix_data(
    model: keras.Model,
    x: object = None,
    y: object = None,
    n: int = SYNTHETIC_EXAMPLES,
    seed: int = 0,
) -> TrialData:
    """The examples of a fix trial: ``n`` to train on, and up to ``n`` more held out to score.

    A trial judged on the examples it trained on rewards memorizing them, so with the user's
    data the learning curves score examples kept out of training whenever there are more
    than ``n``.

    Args:
        model: the model.
        x: inputs (one array, or one per input), or None for synthetic data.
        y: targets (required with x).
        n: examples trained on (a seeded subset of larger data).
        seed: seed of the subsets and of synthetic data.

    Returns:
        The training :class:`~gradscope.trial.data.TrialData`; its ``held_out`` holds up to
        ``n`` other examples of the user's (None when the data has at most ``n``, and for
        synthetic data: the trial then scores the examples it trains on). Synthetic targets come
        from a random linear teacher (:func:`gradscope.trial.synthetic.teacher_targets`), so
        they can be learned.

    Raises:
        GradscopeInputError: for unusable data.

    Example:
        >>> data = fix_data(model, x_train, y_train)  # doctest: +SKIP
        >>> len(data), len(data.held_out)  # doctest: +SKIP
        (256, 256)
    """
    if x is None:
        # Synthetic examples are scored where they are trained: a random teacher's classes take
        # more than a short trial to generalize (the chapter's deep sigmoid net, fixed, gains
        # 0.3 of accuracy on its 256 examples and nothing measurable on 256 others in 64 steps).
        return feed(model, n=n, seed=seed, teacher=True)
    pool = feed(model, x, y, n=n, seed=seed)
    if len(pool) <= n:
        return pool
    order = np.random.default_rng(seed).permutation(len(pool))
    train, held = np.sort(order[:n]), np.sort(order[n : 2 * n])
    return dataclasses.replace(pool.select(train), held_out=pool.select(held))


def trial_data(
    model: keras.Model,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    n: int = SYNTHETIC_EXAMPLES,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns checked user data, or synthetic data matching the model's input and loss.

    The trials' one feeder (:func:`gradscope.trial.data.feed`), so audit and fix see the same
    kind of data.

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
    data = fix_data(model, x, y, n=n, seed=seed)
    return data.x, data.y


def fix_trial(
    model: keras.Model,
    data: TrialData,
    run_dir: str | os.PathLike[str],
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    kinds: Collection[str] | None = None,
) -> TrialStats:
    """Runs the one trial (:func:`gradscope.trial.runner.run_trial`), scores and judges it.

    Args:
        model: the model (not trained; a copy is).
        data: what to train on (:func:`gradscope.trial.data.feed`).
        run_dir: where the trial's run goes: GradScope creates a new run directory under it
            (``TrialStats.run_dir``).
        steps: optimizer steps (>= 3, the detectors' minimum window).
        seed: Keras seed and batch order seed.
        batch_size: examples per step.
        thresholds: detector thresholds.
        kinds: finding kinds the trial is judged by (run detectors and static rules);
            default all (:func:`check_kinds`).

    Returns:
        The :class:`TrialStats`: the run's numbers, its learning curve (the whole trial set
        scored at the start and after each pass), with the findings of the run detectors and
        of the static rules on the model.

    Raises:
        GradscopeInputError: for steps < 3, unusable data or models that cannot be copied.

    Example:
        >>> stats = fix_trial(model, feed(model, n=512), "runs/trial", 30)  # doctest: +SKIP
    """
    if steps < thresholds.window.min_records:
        raise GradscopeInputError(
            f"steps must be at least {thresholds.window.min_records} for the detectors to judge "
            f"the trial. Received: steps={steps}"
        )
    size = min(batch_size, len(data))
    scored = data.held_out if data.held_out is not None else data
    recorder = CurveRecorder(
        scored, math.ceil(len(data) / size), size, len(data), data.held_out is not None
    )
    result = runner.run_trial(
        model, data, steps, run_dir, seed=seed, batch_size=batch_size, callbacks=[recorder]
    )
    # Static rules too, so fixes aimed at e.g. init_activation_mismatch are checked as well.
    run_kinds = None if kinds is None else [k for k in kinds if k in registered()]
    static = static_findings(spec_from_model(model), thresholds.static)
    if kinds is not None:
        static = [f for f in static if f.kind in kinds]
    findings = detect(result.run, thresholds, run_kinds) + static
    stats = summarize(result.run, sort_findings(findings), thresholds)
    return dataclasses.replace(stats, curve=recorder.curve())


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

    :func:`fix_trial` on checked arrays (e.g. from :func:`trial_data`).

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
        GradscopeInputError: for steps < 3, unusable data or models that cannot be copied.

    Example:
        >>> stats = run_trial(model, x, y, "runs/trial", steps=30)  # doctest: +SKIP
    """
    data = fix_data(model, x, y, seed=seed)
    return fix_trial(model, data, run_dir, steps, seed, batch_size, thresholds)


def verify(
    model: keras.Model,
    fixed_model: keras.Model,
    x: np.ndarray | TrialData | None = None,
    y: np.ndarray | None = None,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 32,
    targets: Sequence[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    before: TrialStats | None = None,
    loss_tolerance: float = LOSS_TOLERANCE,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    kinds: Collection[str] | None = None,
) -> Verification:
    """Trials the original and the fixed model on the same batches and compares them.

    Args:
        model: the original model (not trained; a copy is).
        fixed_model: the fixed model (not trained; a copy is).
        x: inputs; None (with y None) for synthetic data matching the model; or the
            :class:`~gradscope.trial.data.TrialData` of an earlier trial (y None).
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
        kinds: finding kinds the trials are judged by; default all.

    Returns:
        The :class:`Verification`.

    Raises:
        GradscopeInputError: for unusable data or steps, or models that cannot be copied.

    Example:
        >>> v = verify(model, apply_fix(model, "relu_activation"), x, y)  # doctest: +SKIP
        >>> v.verified  # doctest: +SKIP
        True
    """
    data = x if isinstance(x, TrialData) else fix_data(model, x, y, seed=seed)
    root = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="gradscope-fix-"))
    if before is None:
        before = fix_trial(model, data, root / "before", steps, seed, batch_size, thresholds, kinds)
    after = fix_trial(fixed_model, data, root / "after", steps, seed, batch_size, thresholds, kinds)
    return compare(before, after, targets, loss_tolerance)


__all__ = [
    "DEFAULT_OPTIMIZER",
    "DEFAULT_STEPS",
    "LOSS_TOLERANCE",
    "SYNTHETIC_EXAMPLES",
    "TrialStats",
    "Verification",
    "check_kinds",
    "compare",
    "fix_data",
    "fix_trial",
    "run_trial",
    "summarize",
    "trial_data",
    "trial_steps",
    "verify",
]
