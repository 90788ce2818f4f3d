"""What a trial showed and how two trials compare: plain data, no Keras.

:func:`gradscope.fix.verify.fix_trial` records a short training run (the one trial,
:func:`gradscope.trial.runner.run_trial`); :func:`summarize` turns it into :class:`TrialStats`
(the first/last gradient ratio among them, as :mod:`gradscope.detect.summary` defines it), and
:func:`compare` judges a fix from two of them.

Example:
    >>> v = compare(summarize(load_run("t/before"), []), summarize(load_run("t/after"), []))
    ... # doctest: +SKIP
    >>> v.before.first_last_grad_ratio, v.after.first_last_grad_ratio  # doctest: +SKIP
    (6.2e-07, 1.1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscope.config import (
    DETECT_THRESHOLDS,
    REPAIR_THRESHOLDS,
    DetectThresholds,
    RepairThresholds,
)
from gradscope.data.store import Run
from gradscope.detect.summary import (
    GRAD_RATIO_KEY,
    GRAD_RATIO_TEXT_KEY,
    format_grad_ratio,
    gradient_ratio,
)
from gradscope.detect.window import (
    gradient_rms,
    last_window,
    median_loss,
    median_stat,
    usable_records,
    weight_layers,
)
from gradscope.findings import Finding, Severity
from gradscope.trial.curve import LearningCurve

#: Relative slack when comparing trial losses: "not worse" tolerates 1 % of batch noise.
LOSS_TOLERANCE = REPAIR_THRESHOLDS.max_loss_increase


@dataclass(frozen=True)
class TrialStats:
    """What one short trial training showed.

    Attributes:
        run_dir: the recorded run.
        losses: training loss of every step.
        final_loss: median loss over the last window of steps (the detectors' window).
        grad_rms: per-weight gradient RMS of each weight layer, median over the detectors'
            window, input to output (the statistic of the first/last ratio).
        first_last_grad_ratio: the first/last gradient ratio
            (:func:`gradscope.detect.summary.gradient_ratio`), None if not measurable.
        max_min_ratio: largest / smallest of ``grad_rms``.
        dead_frac: median fraction of dead units per layer that reports it.
        sat_frac: median fraction of saturated outputs per layer that reports it.
        findings: what the run detectors and the static rules found.
        curve: the trial set's loss and accuracy at the start and after each pass over it
            (:class:`~gradscope.trial.curve.LearningCurve`), None if not scored.
    """

    run_dir: Path
    losses: tuple[float, ...]
    final_loss: float | None
    grad_rms: dict[str, float]
    first_last_grad_ratio: float | None
    max_min_ratio: float | None
    dead_frac: dict[str, float] = field(default_factory=dict)
    sat_frac: dict[str, float] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    curve: LearningCurve | None = None

    @property
    def learned_loss(self) -> float | None:
        """The trial set's loss after the trial (the curve's last point), else ``final_loss``."""
        final = self.curve.final if self.curve is not None else None
        return final.loss if final is not None else self.final_loss

    @property
    def learned_accuracy(self) -> float | None:
        """The trial set's accuracy after the trial; None without labels or a curve."""
        final = self.curve.final if self.curve is not None else None
        return final.accuracy if final is not None else None

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
            "grad_rms": {k: _finite(v) for k, v in self.grad_rms.items()},
            GRAD_RATIO_KEY: _finite(self.first_last_grad_ratio),
            GRAD_RATIO_TEXT_KEY: format_grad_ratio(self.first_last_grad_ratio),
            "max_min_ratio": _finite(self.max_min_ratio),
            "dead_frac": self.dead_frac,
            "sat_frac": self.sat_frac,
            "findings": [f.to_json() for f in self.findings],
            "curve": None if self.curve is None else self.curve.to_json(),
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
        loss_ok: the fixed model is not worse: its loss after the trial rose by at most
            ``max_loss_increase`` and (with labels) its accuracy fell by at most
            ``min_accuracy_gain``.
        verified: targets gone (none remaining) and the fixed model learns measurably better
            (``learns_better``); without learning curves, targets gone and ``loss_ok``.
        learns_better: loss after the trial at least ``min_loss_gain`` lower, or accuracy at
            least ``min_accuracy_gain`` higher, and not worse (None without curves).
        learning: one line saying how the two trials learned, e.g.
            ``"loss 2.30 → 0.41, accuracy 0.11 → 0.93"``.
    """

    before: TrialStats
    after: TrialStats
    targets: tuple[str, ...]
    resolved: tuple[str, ...]
    remaining: tuple[str, ...]
    loss_ok: bool
    verified: bool
    learns_better: bool | None = None
    learning: str = ""

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready dict of the comparison.

        Returns:
            ``{"verified", "loss_ok", "targets", "resolved", "remaining", "before", "after"}``
            (each trial carries its ``first_last_grad_ratio``).
        """
        return {
            "verified": self.verified,
            "loss_ok": self.loss_ok,
            "learns_better": self.learns_better,
            "learning": self.learning,
            "targets": list(self.targets),
            "resolved": list(self.resolved),
            "remaining": list(self.remaining),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


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
        >>> summarize(load_run("runs/trial"), []).first_last_grad_ratio  # doctest: +SKIP
    """
    records = run.records
    # The ratio's own window and statistic, so grad_rms[first] / grad_rms[last] is the ratio.
    ratio_window = last_window(usable_records(records), thresholds.window)
    rms = {x.name: gradient_rms(ratio_window, x) for x in weight_layers(run)}
    norms = {k: v for k, v in rms.items() if v is not None}
    measured = gradient_ratio(run, thresholds.window)
    positive = [v for v in norms.values() if v > 0]
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
        None if measured is None else measured.value,
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


def compare(
    before: TrialStats,
    after: TrialStats,
    targets: Sequence[str] | None = None,
    loss_tolerance: float = LOSS_TOLERANCE,
    thresholds: RepairThresholds = REPAIR_THRESHOLDS,
) -> Verification:
    """Judges two trials: are the targeted findings gone, and does the fix learn better?

    With learning curves (every fix trial has them) the loss and accuracy on the trial examples
    after the trial decide (see :class:`~gradscope.config.RepairThresholds`): the fixed model
    must be measurably better and not worse in either. Without curves (trials from older runs)
    the median trial loss of the last window must not be worse.

    Args:
        before: the original's trial.
        after: the fixed model's trial.
        targets: kinds the fix should remove; default every kind in ``before`` (warning+).
        loss_tolerance: relative slack of "not worse" for the loss.
        thresholds: the learning margins.

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
    if before.curve is None or after.curve is None:
        loss_ok = _loss_not_worse(before.final_loss, after.final_loss, loss_tolerance)
        return Verification(
            before, after, wanted, resolved, remaining, loss_ok, loss_ok and not remaining
        )
    better, not_worse, text = judge_learning(before, after, loss_tolerance, thresholds)
    verified = better and not remaining
    return Verification(
        before, after, wanted, resolved, remaining, not_worse, verified, better, text
    )


def learns(trial: TrialStats, thresholds: RepairThresholds = REPAIR_THRESHOLDS) -> bool | None:
    """Did a trial learn at all: its loss or accuracy after it measurably better than at its start?

    Args:
        trial: a trial with a learning curve.
        thresholds: the same margins as :func:`judge_learning`.

    Returns:
        True if the trial set's loss fell by ``min_loss_gain`` or its accuracy rose by
        ``min_accuracy_gain`` from the untrained start; None without a curve.

    Example:
        >>> learns(before)  # doctest: +SKIP
        False
    """
    curve = trial.curve
    if curve is None or curve.start is None or curve.final is None:
        return None
    start, end = curve.start, curve.final
    if end.loss is None or not math.isfinite(end.loss):
        return False
    gain = thresholds.min_loss_gain
    start_loss = start.loss if start.loss is not None and math.isfinite(start.loss) else None
    if start_loss is not None and end.loss <= start_loss - gain * abs(start_loss):
        return True
    if start.accuracy is None or end.accuracy is None:
        return False
    return end.accuracy >= start.accuracy + thresholds.min_accuracy_gain


def _loss_not_worse(b: float | None, a: float | None, tolerance: float) -> bool:
    if a is None or not math.isfinite(a):
        return False
    if b is None or not math.isfinite(b):
        return True  # the original diverged or recorded nothing; a finite loss is better
    return a <= b + tolerance * abs(b)


def judge_learning(
    before: TrialStats,
    after: TrialStats,
    loss_tolerance: float = LOSS_TOLERANCE,
    thresholds: RepairThresholds = REPAIR_THRESHOLDS,
) -> tuple[bool, bool, str]:
    """Does ``after`` learn measurably better than ``before``, and is it not worse?

    Args:
        before: the original's trial (with a curve).
        after: the candidate's trial, same examples, batches and seed.
        loss_tolerance: relative loss rise still counted as "not worse".
        thresholds: ``min_loss_gain`` and ``min_accuracy_gain``.

    Returns:
        ``(better, not_worse, text)``: better = (loss lower by ``min_loss_gain`` or accuracy
        higher by ``min_accuracy_gain``) and not worse; the text says ``loss b → a, accuracy
        b → a``. When the original's loss after the trial is not finite, its scores at the
        start of the trial are the reference.

    Example:
        >>> judge_learning(before, after)  # doctest: +SKIP
        (True, True, 'loss 2.3 → 0.41, accuracy 0.11 → 0.93')
    """
    lb, la = before.learned_loss, after.learned_loss
    ab, aa = before.learned_accuracy, after.learned_accuracy
    start = before.curve.start if before.curve is not None else None
    if (lb is None or not math.isfinite(lb)) and start is not None:
        # The original diverged: a finite loss alone is no repair (a copy whose units all died
        # is finite too). It must beat the original's start, before training broke it.
        lb, ab = start.loss, start.accuracy
    finite_b = lb is not None and math.isfinite(lb)
    finite_a = la is not None and math.isfinite(la)
    if not finite_a:
        loss_better, loss_worse = False, finite_b
    elif not finite_b:
        loss_better, loss_worse = True, False
    else:
        assert lb is not None and la is not None
        loss_better = la <= lb - thresholds.min_loss_gain * abs(lb)
        loss_worse = la > lb + loss_tolerance * abs(lb)
    acc_better = acc_worse = False
    if ab is not None and aa is not None:
        acc_better = aa >= ab + thresholds.min_accuracy_gain
        acc_worse = aa < ab - thresholds.min_accuracy_gain
    not_worse = not (loss_worse or acc_worse)
    text = f"loss {_fmt(lb)} → {_fmt(la)}"
    if ab is not None and aa is not None:
        text += f", accuracy {ab:.2f} → {aa:.2f}"
    return (loss_better or acc_better) and not_worse, not_worse, text


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def ratio_change(v: Verification) -> str:
    """The first/last gradient ratio of two trials, before → after, in the one format.

    Args:
        v: a verification (the original's trial and the fixed model's).

    Returns:
        e.g. ``"first/last gradient ratio 6.2e-07 (6.2 orders of magnitude) → 1.1e+00 (0.0
        orders of magnitude)"``.

    Example:
        >>> ratio_change(result.overall)  # doctest: +SKIP
    """
    before, after = v.before.first_last_grad_ratio, v.after.first_last_grad_ratio
    return f"first/last gradient ratio {format_grad_ratio(before)} → {format_grad_ratio(after)}"
