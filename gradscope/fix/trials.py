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

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
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

#: Relative slack when comparing trial losses: "not worse" tolerates 1 % of batch noise.
LOSS_TOLERANCE = 0.01


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

    def to_json(self) -> dict[str, Any]:
        """Returns a JSON-ready dict of the comparison.

        Returns:
            ``{"verified", "loss_ok", "targets", "resolved", "remaining", "before", "after"}``
            (each trial carries its ``first_last_grad_ratio``).
        """
        return {
            "verified": self.verified,
            "loss_ok": self.loss_ok,
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
