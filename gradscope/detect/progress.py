"""Evidence of learning: is the loss falling or the accuracy rising?

AutoTrainer (ICSE 2021) reports gradient problems only when training also fails to converge; the
run detectors use :func:`assess_progress` the same way, so a model that trains fine gets at most
"info" findings about its gradient statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    loss_start: float | None
    loss_end: float | None
    loss_drop: float | None
    best_accuracy: float | None
    accuracy_gain: float | None
    learning: bool

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
        }


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
    and last windows of records.

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
    return Progress(start, end, drop, best, gain, learning)


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
