"""A trial's learning curve as plain data: scorings of the trial set, and accuracy by loss.

:class:`~gradscope.trial.learning.CurveRecorder` fills a :class:`LearningCurve` during a trial;
fix verification (:mod:`gradscope.fix.trials`) compares two. No Keras here.

Example:
    >>> curve = LearningCurve((CurvePoint(0, 0.0, 2.3, 0.1), CurvePoint(8, 1.0, 1.9, 0.4)), 256)
    >>> curve.final.accuracy
    0.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CurvePoint:
    """The trial set scored once.

    Attributes:
        step: optimizer steps taken before the scoring (0: the untrained start).
        epoch: passes over the trial examples so far (``step * batch_size / examples``).
        loss: the compiled loss on every trial example; None if it could not be computed.
        accuracy: the share of examples classified right; None without labels.
    """

    step: int
    epoch: float
    loss: float | None
    accuracy: float | None

    def to_json(self) -> dict[str, Any]:
        """Returns ``{"step", "epoch", "loss", "accuracy"}`` (NaN/Inf as None)."""
        return {
            "step": self.step,
            "epoch": round(self.epoch, 3),
            "loss": _finite(self.loss),
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class LearningCurve:
    """Scores of the trial set over a trial.

    Attributes:
        points: the scorings, in step order (the first at step 0).
        examples: how many examples were scored each time.
        held_out: True if they were kept out of training (scores of generalization), False if
            they are the examples trained on.
    """

    points: tuple[CurvePoint, ...]
    examples: int
    held_out: bool = False

    @property
    def start(self) -> CurvePoint | None:
        """The first scoring (before training), or None for an empty curve."""
        return self.points[0] if self.points else None

    @property
    def final(self) -> CurvePoint | None:
        """The last scoring (after the trial), or None for an empty curve."""
        return self.points[-1] if self.points else None

    @property
    def has_accuracy(self) -> bool:
        """True if the loss compares labels, so each point has an accuracy."""
        return bool(self.points) and all(p.accuracy is not None for p in self.points)

    @property
    def scored_on(self) -> str:
        """What was scored, e.g. ``"256 held-out examples"`` or ``"the 64 examples trained on"``."""
        if self.held_out:
            return f"{self.examples} held-out examples"
        return f"the {self.examples} examples trained on"

    def to_json(self) -> dict[str, Any]:
        """Returns ``{"examples", "held_out", "points": [...]}``."""
        return {
            "examples": self.examples,
            "held_out": self.held_out,
            "points": [p.to_json() for p in self.points],
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss.lower()
    if isinstance(loss, dict):
        config = loss.get("config")
        inner = config.get("name", "") if isinstance(config, dict) else ""
        return f"{loss.get('class_name', '')}{inner}".lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def _from_logits(loss: Any) -> bool:
    if isinstance(loss, dict):
        return bool(loss.get("config", {}).get("from_logits", False))
    get_config = getattr(loss, "get_config", None)
    if callable(get_config):
        try:
            return bool(get_config().get("from_logits", False))
        except Exception:  # a custom loss whose get_config needs arguments
            return False
    return False


def accuracy(loss: Any, y: np.ndarray, pred: np.ndarray) -> float | None:
    """The share of examples classified right, judged the way the loss reads the targets.

    Args:
        loss: the compiled loss (a name, a serialized loss or a loss object).
        y: targets.
        pred: the model's outputs.

    Returns:
        The accuracy: class labels against the argmax (sparse categorical), one-hot rows
        against the argmax (categorical), 0/1 against the output thresholded at 0.5 (at 0 for
        logits; binary); None for losses without labels (regression).

    Example:
        >>> accuracy("sparse_categorical_crossentropy", np.array([1]), np.array([[0.2, 0.8]]))
        1.0
    """
    name = _loss_name(loss).replace("_", "")
    if not np.isfinite(pred).all():
        return 0.0  # a diverged network classifies nothing (NaN's argmax is an artifact)
    if "categorical" in name:
        if "sparse" in name:
            truth = y.reshape(pred.shape[:-1])
        elif y.shape == pred.shape:
            truth = np.argmax(y, axis=-1)
        else:
            return None
        return float(np.mean(np.argmax(pred, axis=-1) == truth))
    if "binary" in name and "crossentropy" in name and y.size == pred.size:
        # Labels of shape (n,) against an output of (n, 1): Keras's loss squeezes them alike.
        threshold = 0.0 if _from_logits(loss) else 0.5
        return float(np.mean((pred > threshold) == (y.reshape(pred.shape) > 0.5)))
    return None


__all__ = ["CurvePoint", "LearningCurve", "accuracy"]
