"""Learning curves of a trial: loss and accuracy on the trial's own examples, epoch by epoch.

A batch's loss says little about whether a network learns (it is one batch, and Keras logs a
running mean over the epoch). :class:`CurveRecorder` scores the whole trial set at the start of
the trial and after each pass over it, with the model in inference mode: the loss the model is
compiled with (:meth:`keras.Model.compute_loss`) and, when the loss compares labels, the
accuracy. Fix verification (:mod:`gradscope.fix.trials`) compares two such curves.

Example:
    >>> recorder = CurveRecorder(data, every=8)  # doctest: +SKIP
    >>> run_trial(model, data, 64, "runs/t", callbacks=[recorder])  # doctest: +SKIP
    >>> recorder.curve().final.accuracy  # doctest: +SKIP
    0.84
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from gradscope.trial.curve import CurvePoint, LearningCurve, accuracy
from gradscope.trial.data import TrialData

#: Examples scored per forward pass (bounded memory for large inputs).
EVAL_CHUNK = 256


def score(model: keras.Model, data: TrialData) -> tuple[float | None, float | None]:
    """Scores a model on every example of a trial set, in inference mode.

    Args:
        model: a compiled model.
        data: the examples.

    Returns:
        ``(loss, accuracy)``: the compiled loss (with any regularization losses), and the
        accuracy when the loss compares labels; each None when not computable.

    Example:
        >>> loss, acc = score(trained, data)  # doctest: +SKIP
    """
    index = np.arange(len(data))
    outputs = []
    for start in range(0, len(index), EVAL_CHUNK):
        xb, _ = data.take(index[start : start + EVAL_CHUNK])
        out = model(xb, training=False)
        if isinstance(out, (list, tuple, dict)):
            return None, None  # several outputs: no single loss to score
        outputs.append(keras.ops.convert_to_numpy(out))
    pred = np.concatenate(outputs)
    loss_obj = getattr(model, "loss", None)
    try:
        value = float(keras.ops.convert_to_numpy(model.compute_loss(y=data.y, y_pred=pred)))
    except Exception:  # a subclass's compute_loss that needs x, or no compiled loss
        value = None
    return value, accuracy(loss_obj, np.asarray(data.y), pred)


class CurveRecorder(keras.callbacks.Callback):
    """Scores the trial set at the start of training and every ``every`` steps after.

    Args:
        data: the examples scored (all of them, each time): the trial set, or examples held
            out of it.
        every: steps between scorings (one pass over the training data, usually).
        batch_size: examples per step, for the epoch count of each point.
        trained: examples the trial trains on, for the epoch count (default ``len(data)``).
        held_out: ``data`` was kept out of training.

    Example:
        >>> recorder = CurveRecorder(data, every=8, batch_size=32)  # doctest: +SKIP
    """

    def __init__(
        self,
        data: TrialData,
        every: int,
        batch_size: int,
        trained: int | None = None,
        held_out: bool = False,
    ) -> None:
        super().__init__()
        self.data = data
        self.every = max(1, int(every))
        self.batch_size = batch_size
        self.trained = trained or len(data)
        self.held_out = held_out
        self.points: list[CurvePoint] = []
        self._step = 0

    def _record(self) -> None:
        loss, acc = score(self.model, self.data)
        epoch = self._step * self.batch_size / max(self.trained, 1)
        self.points.append(CurvePoint(self._step, epoch, loss, acc))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Scores the untrained start (step 0)."""
        self._step = 0
        self._record()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Counts the step; scores after every ``every`` steps."""
        self._step += 1
        if self._step % self.every == 0:
            self._record()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Scores the end of the trial, unless the last step was just scored."""
        if not self.points or self.points[-1].step != self._step:
            self._record()

    def curve(self) -> LearningCurve:
        """The scorings so far as a :class:`LearningCurve`."""
        return LearningCurve(tuple(self.points), len(self.data), self.held_out)


__all__ = ["EVAL_CHUNK", "CurveRecorder", "score"]
