"""Evidence of learning: is the loss falling or the accuracy rising?

AutoTrainer (ICSE 2021) reports gradient problems only when training also fails to converge; the
run detectors use :func:`assess_progress` the same way, so a model that trains fine gets at most
"info" findings about its gradient statistics.

AutoTrainer's test needs epochs. A short run (the audit's probe, a fix trial: one epoch of a few
steps) is judged from its own batches instead: the per-batch loss trend, :func:`loss_trend`, a
Theil-Sen slope (the median of the pairwise slopes, robust to a few noisy batches; Theil 1950,
Sen 1968) with a Mann-Kendall test of its sign (Mann 1945; Kendall 1975).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gradscope.config import DETECT_THRESHOLDS, ProgressThresholds, WindowThresholds
from gradscope.data.store import Run
from gradscope.detect.window import first_window, last_window, median_loss, usable_records
from gradscope.findings import Severity


@dataclass(frozen=True)
class Progress:
    """How well a run is learning.

    Attributes:
        loss_start: median loss of the first window of records (None if unknown).
        loss_end: median loss of the last window of records.
        loss_drop: relative drop ``1 - loss_end / loss_start`` (negative when the loss rose).
        best_accuracy: best training accuracy over the epochs, if an accuracy metric was logged.
        accuracy_gain: best accuracy minus first-epoch accuracy (None with fewer than 2 epochs).
        learning: True when the evidence says training works.
        trend: the per-batch loss trend (:func:`loss_trend`), None with too few finite losses.
        loss_falling: the loss falls significantly (Mann-Kendall), whatever the size of the drop.
    """

    loss_start: float | None
    loss_end: float | None
    loss_drop: float | None
    best_accuracy: float | None
    accuracy_gain: float | None
    learning: bool
    trend: LossTrend | None = None
    loss_falling: bool = False

    def to_evidence(self) -> dict[str, float | bool | None]:
        """Returns the JSON-safe summary used in findings' evidence.

        Returns:
            A dict with the fields of this object.
        """
        return {
            "loss_start": self.loss_start,
            "loss_end": self.loss_end,
            "loss_drop": self.loss_drop,
            "best_accuracy": self.best_accuracy,
            "accuracy_gain": self.accuracy_gain,
            "learning": self.learning,
            "loss_trend_drop": None if self.trend is None else self.trend.drop,
            "loss_trend_z": None if self.trend is None else self.trend.z,
            "loss_falling": self.loss_falling,
        }


#: Most losses :func:`loss_trend` compares pairwise (about 130k pairs); longer runs are thinned.
TREND_MAX_POINTS = 512


@dataclass(frozen=True)
class LossTrend:
    """The trend of the per-batch loss over a run's records.

    Attributes:
        slope: Theil-Sen slope, loss per step (negative when the loss falls).
        start: the trend line's value at the first record (the Theil-Sen intercept).
        drop: relative drop of the trend line over the records, ``-slope * (n - 1) / start``
            (negative when the loss rises; None when ``start`` is not positive).
        z: Mann-Kendall's z (continuity-corrected), negative for a falling loss.
        n: finite losses used.
    """

    slope: float
    start: float
    drop: float | None
    z: float
    n: int


def loss_trend(losses: Sequence[float | None], min_records: int = 2) -> LossTrend | None:
    """Theil-Sen slope and Mann-Kendall z of a series of batch losses, in order.

    Args:
        losses: per-batch losses in step order; None and non-finite values are left out; more
            than :data:`TREND_MAX_POINTS` are thinned to that many, evenly spaced.
        min_records: fewer finite losses than this give None.

    Returns:
        The :class:`LossTrend`, or None.

    Example:
        >>> t = loss_trend([2.0, 1.9, 1.7, 1.8, 1.5, 1.4, 1.45, 1.2])
        >>> round(t.slope, 3), round(t.drop, 2), t.z < -1.645
        (-0.1, 0.36, True)
    """
    pairs = [(i, v) for i, v in enumerate(losses) if v is not None and math.isfinite(v)]
    if len(pairs) < max(2, min_records):
        return None
    if len(pairs) > TREND_MAX_POINTS:
        # Both statistics take every pair of points (n^2/2: 2e8 for a 20k-record run, gigabytes).
        # Evenly spaced points keep the slope's estimate and make the test more conservative.
        keep = np.unique(np.linspace(0, len(pairs) - 1, TREND_MAX_POINTS).round().astype(int))
        pairs = [pairs[k] for k in keep]
    n = len(pairs)
    x = np.array([p[0] for p in pairs], np.float64)
    y = np.array([p[1] for p in pairs], np.float64)
    i, j = np.triu_indices(n, 1)
    slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    start = float(np.median(y - slope * (x - x[0])))
    s = float(np.sum(np.sign(y[j] - y[i])))
    var = n * (n - 1) * (2 * n + 5) / 18.0  # no tie correction: float losses rarely tie
    z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s else 0.0
    drop = -slope * float(x[-1] - x[0]) / start if start > 0 else None
    return LossTrend(slope, start, drop, z, n)


def _accuracies(run: Run) -> list[float]:
    # Training accuracy per epoch under Keras's usual names ("accuracy", "acc",
    # "sparse_categorical_accuracy", ...); validation metrics judge generalization, not training.
    out: list[float] = []
    for epoch in run.epochs:
        keys = [
            k
            for k in epoch.logs
            if not k.startswith("val_") and (k == "acc" or k.endswith("accuracy"))
        ]
        values = [epoch.logs[k] for k in keys if epoch.logs[k] == epoch.logs[k]]
        if values:
            out.append(max(values))
    return out


def assess_progress(
    run: Run,
    thresholds: ProgressThresholds = DETECT_THRESHOLDS.progress,
    window: WindowThresholds = DETECT_THRESHOLDS.window,
) -> Progress:
    """Judges whether a run is learning.

    With an accuracy metric: learning when the best accuracy reaches ``good_accuracy`` and (with
    two or more epochs) improved by at least ``min_accuracy_gain`` (AutoTrainer's convergence
    test). Otherwise: learning when the loss fell by at least ``min_loss_drop`` between the first
    and last windows of records. A short run (fewer than two epochs logged) also learns when its
    per-batch loss falls significantly (Mann-Kendall z at most ``-trend_z``) and its Theil-Sen
    trend line drops by at least ``short_run_drop`` (:func:`loss_trend`): one epoch's mean
    accuracy and a first/last window of three batches say little about eight steps.

    Args:
        run: a loaded run.
        thresholds: the learning criteria.
        window: window sizes.

    Returns:
        The :class:`Progress`.

    Example:
        >>> assess_progress(run).learning  # doctest: +SKIP
        True
    """
    records = usable_records(run.records)
    start = median_loss(first_window(records, window))
    end = median_loss(last_window(records, window))
    drop = None
    if start is not None and end is not None and start > 0:
        drop = 1.0 - end / start
    accs = _accuracies(run)
    best = max(accs) if accs else None
    gain = best - accs[0] if len(accs) >= 2 and best is not None else None
    if best is not None:
        learning = best >= thresholds.good_accuracy and (
            gain is None or gain >= thresholds.min_accuracy_gain
        )
    else:
        learning = drop is not None and drop >= thresholds.min_loss_drop
    trend = loss_trend([r.loss for r in records], thresholds.trend_min_records)
    falling = trend is not None and trend.z <= -thresholds.trend_z
    short = len(run.epochs) < 2
    if short and falling and trend is not None and trend.drop is not None:
        learning = learning or trend.drop >= thresholds.short_run_drop
    return Progress(start, end, drop, best, gain, learning, trend, falling)


def gate(severity: Severity, progress: Progress) -> Severity:
    """Lowers a gradient-statistics finding to info when the run is learning.

    Args:
        severity: the severity the statistics alone call for.
        progress: the run's learning evidence.

    Returns:
        ``Severity.INFO`` if the run is learning, else ``severity``.

    Example:
        >>> gate(Severity.ERROR, Progress(2.0, 0.1, 0.95, None, None, True))
        <Severity.INFO: 0>
    """
    return Severity.INFO if progress.learning else severity
