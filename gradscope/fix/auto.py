"""Fix a model end to end: trial the original, search fixes, keep what makes it learn better.

:func:`auto_fix` is what ``gradscope fix --auto`` runs: the original's trial (on more seeds
when the first shows nothing to fix, :mod:`gradscope.fix.seeds`), then the candidates of
:mod:`gradscope.fix.search` (the plan, the chapter's other single fixes, then
combinations) on the model fixed so far, each kept only when its targeted findings are gone and
it learns measurably better (:func:`gradscope.fix.trials.compare`), until no targeted finding is
open or the time budget is spent. :func:`fix_model` applies the fixes a user names
(``--apply``) and verifies the result as a whole. Neither ever returns a copy that learns worse
than the original: if the kept fixes together do not beat it, the original is returned.

Example:
    >>> result = auto_fix(model, x, y)  # doctest: +SKIP
    >>> result.applied, result.verified  # doctest: +SKIP
    (['relu_activation'], True)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.config import DETECT_THRESHOLDS, REPAIR_THRESHOLDS, DetectThresholds
from gradscope.findings import Finding
from gradscope.fix.plan import FixPlan, plan_fixes
from gradscope.fix.result import FixResult, SearchInfo, StepOutcome
from gradscope.fix.search import (
    NO_LEARNING,
    UNSTEADY,
    Candidate,
    apply_candidate,
    combination_candidates,
    learning_rate_candidates,
    plan_candidates,
    single_candidates,
    steadying_candidates,
)
from gradscope.fix.seeds import probe_seeds, steady_over
from gradscope.fix.transforms import FixNotApplicable, UnsupportedModelError, apply_fixes
from gradscope.fix.trials import learns, ratio_change
from gradscope.fix.verify import (
    TrialStats,
    Verification,
    check_kinds,
    compare,
    fix_data,
    fix_trial,
    trial_steps,
    verify,
)
from gradscope.trial.runner import DEFAULT_BATCH_SIZE
from gradscope.trial.setup import Source, TrainingSetup, describe_compiled, training_setup


def _root(run_dir: str | os.PathLike[str] | None) -> Path:
    return Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="gradscope-fix-"))


def _prepare(
    model: keras.Model, setup: TrainingSetup | None, batch_size: int
) -> tuple[keras.Model, TrainingSetup]:
    # The trials and optimizer fixes need a compiled model: an uncompiled one is copied and
    # compiled with the policy's defaults (the user's object is never compiled here).
    if not model.compiled:
        return training_setup(
            model, batch_size=None if batch_size == DEFAULT_BATCH_SIZE else batch_size
        )
    return model, setup or _described(model, batch_size)


def auto_fix(
    model: keras.Model,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run_dir: str | os.PathLike[str] | None = None,
    findings: Sequence[Finding] = (),
    *,
    epochs: int | None = None,
    budget: float | None = None,
    setup: TrainingSetup | None = None,
    kinds: Iterable[str] | None = None,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
) -> FixResult:
    """Trials the model, searches fixes for its findings, keeps those that make it learn better.

    Candidates (:mod:`gradscope.fix.search`) are tried in order on the model fixed so far: the
    plan, the chapter's other single fixes, then combinations, each only while a finding it
    targets is still open. A candidate is kept when its targets are gone from its trial and it
    learns measurably better than the model before it. The search stops when no targeted finding
    is open or the budget is spent (the first candidate always runs).

    Args:
        model: the model (never modified). An uncompiled one trains with the trial policy's
            defaults, and the fixed copy is saved compiled with them.
        x: trial inputs; None for synthetic data matching the model.
        y: trial targets.
        steps: trial steps per model; default ``epochs`` passes over the trial examples.
        seed: seed shared by every trial (same batches, same order); when the original's
            trial on it shows nothing to fix, the next seeds are tried and the search may run
            on one of them (:attr:`SearchInfo.seed`).
        batch_size: examples per step.
        run_dir: where the trial runs go; temporary if None.
        findings: extra findings to plan from (e.g. an earlier audit's); the original's trial
            findings are always used.
        epochs: passes over the trial examples (default
            :attr:`~gradscope.config.RepairThresholds.trial_epochs`); ignored with ``steps``.
        budget: seconds for the search (default
            :attr:`~gradscope.config.RepairThresholds.budget_seconds`).
        setup: how ``model`` was compiled for the trials (:func:`training_setup`), for the
            result; read from the model when None.
        kinds: finding kinds the trials look for (run detectors and static rules, e.g.
            ``["nonfinite", "dying_relu"]``); default all. Leaving a kind out means no fix is
            searched for it.
        thresholds: the detectors' thresholds for every trial.

    Returns:
        The :class:`FixResult`.

    Raises:
        GradscopeInputError: for unusable data, unknown ``kinds`` or models that cannot be
            copied.

    Example:
        >>> auto_fix(sick_model, x, y, budget=60).applied  # doctest: +SKIP
        ['relu_activation']
    """
    started = time.monotonic()
    judged = check_kinds(kinds)
    budget = REPAIR_THRESHOLDS.budget_seconds if budget is None else float(budget)
    root = _root(run_dir)
    original = model
    model, setup = _prepare(model, setup, batch_size)
    # One data set for every trial of the chain: same examples, same batches, same seed.
    data = fix_data(model, x, y, seed=seed)
    steps = steps or trial_steps(len(data), batch_size, epochs or REPAIR_THRESHOLDS.trial_epochs)
    findings = [f for f in findings if judged is None or f.kind in judged]

    def targets_of(trial: TrialStats) -> list[str]:
        plan = plan_fixes([*findings, *trial.findings], model)
        # A trial whose curve does not move is a finding of its own (round 4 of the search).
        return _all_targets(plan) + ([NO_LEARNING] if learns(trial) is False else [])

    first = fix_trial(model, data, root / "original", steps, seed, batch_size, thresholds, judged)
    # One trial that learns proves little: a rate far too high kills on some seeds only.
    probe = probe_seeds(
        model, data, root, steps, seed, batch_size, first, lambda t: bool(targets_of(t)),
        thresholds, judged,
    )  # fmt: skip
    seed, before = probe.seed, probe.trial
    plan = plan_fixes([*findings, *before.findings], model)
    wanted = targets_of(before) + ([UNSTEADY] if probe.unsteady else [])
    unsteady_open = probe.unsteady
    current, current_trial = model, before
    outcomes: list[StepOutcome] = []
    # Kinds reported from outside the trial (e.g. a full training run) stay open until a kept
    # fix has targeted them; the trial itself decides for everything it can observe.
    outside = {f.kind for f in findings}
    tried_keys: set[tuple[Any, ...]] = set()
    not_tried: list[str] = []
    tried = 0

    def open_kinds() -> list[str]:
        present = current_trial.kinds() | outside
        if learns(current_trial) is False:
            present.add(NO_LEARNING)
        if unsteady_open:
            present.add(UNSTEADY)
        return [k for k in wanted if k in present]

    def rounds() -> Any:
        yield from plan_candidates(plan)
        yield from single_candidates(open_kinds())
        yield from combination_candidates(open_kinds())
        if NO_LEARNING in open_kinds():
            yield from learning_rate_candidates()
        if UNSTEADY in open_kinds():
            yield from steadying_candidates()

    for candidate in rounds():
        targets = [k for k in candidate.answers if k in open_kinds()]
        if not targets:
            if candidate.round == "plan":
                outcomes.append(
                    StepOutcome(
                        candidate.label, False, "not needed: earlier fixes resolved its findings"
                    )
                )
            continue
        try:
            fixed, applied = apply_candidate(current, candidate)
        except (FixNotApplicable, UnsupportedModelError) as err:
            if candidate.round == "plan":
                outcomes.append(StepOutcome(candidate.label, False, str(err)))
            continue
        chosen = {k: tuple(sorted(o.items())) for k, o in candidate.options.items() if k in applied}
        key = (id(current), applied, tuple(sorted(chosen.items())))
        if key in tried_keys:
            continue
        tried_keys.add(key)
        if tried and time.monotonic() - started > budget:
            not_tried.append(candidate.label)
            continue
        tried += 1
        label = _applied_label(candidate, applied)
        v = verify(
            current,
            fixed,
            data,
            steps=steps,
            seed=seed,
            batch_size=batch_size,
            targets=targets,
            run_dir=root / f"step_{tried}_{'+'.join(applied)}",
            before=current_trial,
            thresholds=thresholds,
            kinds=judged,
        )
        if v.verified and UNSTEADY in targets:
            # Better on the worst seed is not enough: the copy must end steady on every seed.
            where = root / f"step_{tried}_seeds"
            if steady_over(
                fixed, v.after, probe, data, where, steps, batch_size, thresholds, judged
            ):
                v = dataclasses.replace(v, resolved=(*v.resolved, UNSTEADY))
                unsteady_open = False
            else:
                v = dataclasses.replace(v, verified=False, remaining=(*v.remaining, UNSTEADY))
        if v.verified:
            outside -= set(targets)
            current, current_trial = fixed, v.after
        outcomes.append(
            StepOutcome(label, v.verified, _why(v, kept=v.verified), v, applied, candidate.round)
        )
    kept_targets = [
        k for o in outcomes if o.kept and o.verification for k in o.verification.targets
    ]
    overall = compare(before, current_trial, list(dict.fromkeys(kept_targets)) or wanted)
    if any(o.kept for o in outcomes) and not overall.learns_better:
        # Each kept step beat the one before, but together they do not beat the original (trial
        # noise adding up): never hand back a copy that learns worse.
        note = f"dropped: all kept fixes together do not learn better ({overall.learning})"
        outcomes = [
            StepOutcome(o.fix_id, False, note, o.verification, o.fixes, o.round) if o.kept else o
            for o in outcomes
        ]
        current, current_trial = model, before
        overall = compare(before, before, wanted)
    search = SearchInfo(
        budget,
        time.monotonic() - started,
        tried,
        bool(not_tried),
        tuple(not_tried),
        tuple(open_kinds()),
        probe.seeds,
        seed,
        tuple(wanted),
    )
    result_model = current if any(o.kept for o in outcomes) else original
    return FixResult(result_model, overall, tuple(outcomes), plan, setup, search)


def _described(model: keras.Model, batch_size: int = DEFAULT_BATCH_SIZE) -> TrainingSetup:
    name, lr, clip, loss, metrics = describe_compiled(model)
    sources: dict[str, Source] = {
        "optimizer": "model",
        "learning_rate": "model",
        "loss": "model",
        "batch_size": "default" if batch_size == DEFAULT_BATCH_SIZE else "argument",
    }
    return TrainingSetup(name, lr, clip, loss, metrics, batch_size, sources)


def _applied_label(candidate: Candidate, applied: tuple[str, ...]) -> str:
    if applied == candidate.fixes:
        return candidate.label
    return Candidate(applied, candidate.options).label


def _all_targets(plan: FixPlan) -> list[str]:
    return list(dict.fromkeys(k for s in plan.steps for k in s.answers))


def _why(v: Verification, kept: bool) -> str:
    learning = v.learning or f"trial loss {_fmt(v.before.final_loss)} → {_fmt(v.after.final_loss)}"
    numbers = f"{learning}; {ratio_change(v)}"
    if kept:
        gone = ", ".join(v.resolved) or "no targeted finding left"
        # "in its trial": these are the short trial's numbers, not a later full run's.
        return f"verified: {gone} resolved, learns better in its trial ({numbers})"
    if v.remaining:
        return f"not verified: {', '.join(v.remaining)} still present in its trial ({numbers})"
    if v.learns_better is False and v.loss_ok:
        return f"not verified: does not learn measurably better in its trial ({numbers})"
    return f"not verified: learns worse in its trial ({numbers})"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def fix_model(
    model: keras.Model,
    fix_ids: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    epochs: int | None = None,
    setup: TrainingSetup | None = None,
    kinds: Iterable[str] | None = None,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
) -> FixResult:
    """Applies the named fixes (in stage order) and verifies the result against the original.

    Args:
        model: the model (never modified).
        fix_ids: fix ids to apply, e.g. ``["he_init", "batch_norm"]``.
        options: per fix id, options for its transform.
        x: trial inputs; None for synthetic data.
        y: trial targets.
        steps: trial steps per model; default ``epochs`` passes over the trial examples.
        seed: seed shared by both trials.
        batch_size: examples per step.
        run_dir: where the two trial runs go; temporary if None.
        epochs: passes over the trial examples; ignored with ``steps``.
        setup: how ``model`` was compiled for the trials, for the result.
        kinds: finding kinds the trials look for; default all.
        thresholds: the detectors' thresholds for both trials.

    Returns:
        The :class:`FixResult`; ``model`` holds every requested fix whether or not it verified.

    Raises:
        KeyError: for ids without a transform.
        FixNotApplicable, UnsupportedModelError: if a fix cannot be applied (nothing is
            half-applied: no model is returned).

    Example:
        >>> fix_model(model, ["he_init"], x=x, y=y).verified  # doctest: +SKIP
    """
    model, setup = _prepare(model, setup, batch_size)
    judged = check_kinds(kinds)
    fixed = apply_fixes(model, fix_ids, options)
    data = fix_data(model, x, y, seed=seed)
    steps = steps or trial_steps(len(data), batch_size, epochs or REPAIR_THRESHOLDS.trial_epochs)
    v = verify(
        model,
        fixed,
        data,
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        run_dir=run_dir,
        thresholds=thresholds,
        kinds=judged,
    )
    applied = list(dict.fromkeys(fix_ids))
    outcomes = tuple(
        StepOutcome(f, True, _why(v, kept=v.verified), v, round="apply") for f in applied
    )
    return FixResult(fixed, v, outcomes, setup=setup)


__all__ = ["FixResult", "SearchInfo", "StepOutcome", "TrialStats", "auto_fix", "fix_model"]
