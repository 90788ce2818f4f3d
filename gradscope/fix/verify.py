"""Prove a fix helped: train the original and the fixed model briefly, side by side, and compare.

Both trials train copies (the given models are never trained), start from each model's current
weights, see exactly the same batches in the same order under the same seed, and are recorded with
``GradScope(freq=1)``; the run detectors then judge both runs. A fix is *verified* when the
findings it targets are gone from the fixed model's run and its trial loss is not worse.

Example:
    >>> result = verify(model, apply_fix(model, "relu_activation"), x, y)  # doctest: +SKIP
    >>> result.verified, result.ratio_improvement  # doctest: +SKIP
    (True, 2.1e+06)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.audit.extract import spec_from_model
from gradscope.audit.probe import check_data, data_errors, infer_loss, synthetic_data
from gradscope.audit.static import static_findings
from gradscope.collect.callback import GradScope
from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import Run, load_run
from gradscope.detect import detect
from gradscope.detect.window import last_window, median_loss, median_stat, weight_layers
from gradscope.errors import GradscopeInputError
from gradscope.findings import Finding, Severity, sort_findings
from gradscope.fix.rebuild import UnsupportedModelError, clone_with_weights, rebuild

#: Trial steps by default: enough records for the detectors' windows, seconds on a CPU.
DEFAULT_STEPS = 60
#: Relative slack when comparing trial losses: "not worse" tolerates 1 % of batch noise.
LOSS_TOLERANCE = 0.01
#: Optimizer for models saved without one (what the chapter's experiments use).
DEFAULT_OPTIMIZER = {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9}}


@dataclass(frozen=True)
class TrialStats:
    """What one short trial training showed.

    Attributes:
        run_dir: the recorded run.
        losses: training loss of every step.
        final_loss: median loss over the last window of steps (the detectors' window).
        grad_norms: median gradient L2 norm per weight layer over the run, input to output.
        first_last_ratio: grad norm of the first weight layer / of the last one.
        max_min_ratio: largest / smallest per-layer median gradient norm.
        dead_frac: median fraction of dead units per layer that reports it.
        sat_frac: median fraction of saturated outputs per layer that reports it.
        findings: what the run detectors and the static rules found.
    """

    run_dir: Path
    losses: tuple[float, ...]
    final_loss: float | None
    grad_norms: dict[str, float]
    first_last_ratio: float | None
    max_min_ratio: float | None
    dead_frac: dict[str, float] = field(default_factory=dict)
    sat_frac: dict[str, float] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()

    def kinds(self, min_severity: Severity = Severity.WARNING) -> set[str]:
        """Finding kinds at or above a severity.

        Args:
            min_severity: the lowest severity counted.

        Returns:
            The set of kinds.
        """
        return {f.kind for f in self.findings if f.severity >= min_severity}

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready summary (NaN becomes None).

        Returns:
            A dict with the fields of this object; findings as their JSON form.
        """
        return {
            "run_dir": str(self.run_dir),
            "losses": [_finite(v) for v in self.losses],
            "final_loss": _finite(self.final_loss),
            "grad_norms": {k: _finite(v) for k, v in self.grad_norms.items()},
            "first_last_ratio": _finite(self.first_last_ratio),
            "max_min_ratio": _finite(self.max_min_ratio),
            "dead_frac": self.dead_frac,
            "sat_frac": self.sat_frac,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(frozen=True)
class Verification:
    """Before/after comparison of a fix.

    Attributes:
        before: the original model's trial.
        after: the fixed model's trial.
        targets: finding kinds the fix was meant to remove.
        resolved: targets present (warning or worse) before and absent after.
        remaining: targets still present (warning or worse) after.
        loss_ok: the fixed model's final trial loss is not worse than the original's.
        verified: targets gone (none remaining) and loss_ok.
    """

    before: TrialStats
    after: TrialStats
    targets: tuple[str, ...]
    resolved: tuple[str, ...]
    remaining: tuple[str, ...]
    loss_ok: bool
    verified: bool

    @property
    def ratio_improvement(self) -> float | None:
        """How many times closer to 1 the first/last gradient-norm ratio got (log distance)."""
        b, a = self.before.first_last_ratio, self.after.first_last_ratio
        if not (b and a) or not (math.isfinite(b) and math.isfinite(a)):
            return None
        return float(10 ** (abs(math.log10(b)) - abs(math.log10(a))))

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready dict of the comparison.

        Returns:
            ``{"verified", "loss_ok", "targets", "resolved", "remaining", "ratio_improvement",
            "before", "after"}``.
        """
        return {
            "verified": self.verified,
            "loss_ok": self.loss_ok,
            "targets": list(self.targets),
            "resolved": list(self.resolved),
            "remaining": list(self.remaining),
            "ratio_improvement": _finite(self.ratio_improvement),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


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


def summarize(
    run: Run, findings: Iterable[Finding], thresholds: DetectThresholds = DETECT_THRESHOLDS
) -> TrialStats:
    """Summarizes a recorded run into before/after numbers.

    Args:
        run: the loaded run.
        findings: the detectors' findings on it.
        thresholds: window sizes for the final loss.

    Returns:
        The :class:`TrialStats`.

    Example:
        >>> summarize(load_run("runs/trial"), []).first_last_ratio  # doctest: +SKIP
    """
    records = run.records
    norms: dict[str, float] = {}
    for info in weight_layers(run):
        value = median_stat(records, info.name, "grad_norm")
        if value is not None:
            norms[info.name] = value
    values = list(norms.values())
    first_last = values[0] / values[-1] if len(values) >= 2 and values[-1] > 0 else None
    positive = [v for v in values if v > 0]
    max_min = max(positive) / min(positive) if len(positive) >= 2 else None
    window = last_window(records, thresholds.window)
    dead = _layer_medians(run, window, "dead_frac")
    sat = _layer_medians(run, window, "sat_frac")
    losses = tuple(float("nan") if r.loss is None else float(r.loss) for r in records)
    return TrialStats(
        run.path,
        losses,
        median_loss(window),
        norms,
        first_last,
        max_min,
        dead,
        sat,
        tuple(findings),
    )


def _layer_medians(run: Run, records: Sequence[Any], stat: str) -> dict[str, float]:
    out = {}
    for info in run.layers:
        value = median_stat(records, info.name, stat)
        if value is not None:
            out[info.name] = value
    return out


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


def compare(
    before: TrialStats,
    after: TrialStats,
    targets: Sequence[str] | None = None,
    loss_tolerance: float = LOSS_TOLERANCE,
) -> Verification:
    """Judges two trials: are the targeted findings gone and is the loss not worse?

    Args:
        before: the original's trial.
        after: the fixed model's trial.
        targets: kinds the fix should remove; default every kind in ``before`` (warning+).
        loss_tolerance: relative slack for the loss comparison.

    Returns:
        The :class:`Verification`.

    Example:
        >>> compare(before, after, ["vanishing_gradients"]).verified  # doctest: +SKIP
    """
    present = before.kinds()
    wanted = tuple(targets) if targets is not None else tuple(sorted(present))
    after_kinds = after.kinds()
    remaining = tuple(k for k in wanted if k in after_kinds)
    resolved = tuple(k for k in wanted if k in present and k not in after_kinds)
    b, a = before.final_loss, after.final_loss
    if a is None or not math.isfinite(a):
        loss_ok = False
    elif b is None or not math.isfinite(b):
        loss_ok = True  # the original diverged or recorded nothing; a finite loss is better
    else:
        loss_ok = a <= b + loss_tolerance * abs(b)
    return Verification(
        before, after, wanted, resolved, remaining, loss_ok, loss_ok and not remaining
    )
