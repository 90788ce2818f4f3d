"""Whether a zoo model learned, measured without gradscope: an error on held-out data, in NumPy.

Each score is an error (lower is better) computed from the model's predictions on examples it
did not train on; "learned" compares the error after training with the untrained model's.

Example:
    >>> import numpy as np
    >>> round(float(np.mean(np.array([0, 1, 1]) != np.array([0, 1, 0]))), 3)
    0.333
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from gradscope.zoo.data import GAN_CENTER


def classification_error(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """1 - accuracy (a single sigmoid output thresholded at 0.5, else the argmax)."""
    p = np.asarray(model.predict(x, verbose=0, batch_size=256), "float64")
    guess = (p[:, 0] > 0.5).astype(int) if p.shape[-1] == 1 else p.argmax(-1)
    return float(np.mean(guess != y.reshape(-1)))


def mean_squared_error(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the predictions (the reconstruction for autoencoders)."""
    p = np.asarray(model.predict(x, verbose=0, batch_size=256), "float64")
    return float(np.mean((p.reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2))


def gan_mismatch(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """How far 1,024 generated points are from the real ones: |mean gap| + |std gap|, averaged.

    Args:
        model: a :class:`gradscope.zoo.generative.GAN` (its ``call`` is the generator).
        x: unused (the real distribution is known: :data:`GAN_CENTER`, std 0.5).
        y: unused.

    Returns:
        The mismatch (0 for a perfect generator).
    """
    z = np.random.default_rng(123).normal(size=(1024, model.noise)).astype("float32")
    fake = np.asarray(model.predict(z, verbose=0, batch_size=256), "float64")
    return float(np.mean(np.abs(fake.mean(0) - GAN_CENTER)) + np.mean(np.abs(fake.std(0) - 0.5)))


SCORES = {
    "classification_error": classification_error,
    "mean_squared_error": mean_squared_error,
    "gan_mismatch": gan_mismatch,
}


@dataclass(frozen=True)
class Learns:
    """The "it learned" criterion of one zoo model, fixed before running it.

    Attributes:
        score: a key of :data:`SCORES` (an error: lower is better).
        at_most: the held-out error after training must be at most this (None: no bound).
        ratio: and at most ``ratio`` times the untrained model's error.
    """

    score: str
    at_most: float | None = None
    ratio: float = 1.0

    def error(self, model: keras.Model, x: np.ndarray, y: Any) -> float:
        """The held-out error of ``model`` (see :data:`SCORES`)."""
        return SCORES[self.score](model, x, y)

    def met(self, before: float, after: float) -> bool:
        """True if going from error ``before`` to ``after`` counts as learning."""
        bounded = self.at_most is None or after <= self.at_most
        return bool(np.isfinite(after) and bounded and after <= self.ratio * before)

    def describe(self) -> str:
        """E.g. 'classification_error <= 0.15 and <= 0.5x untrained'."""
        parts = [f"<= {self.at_most:g}"] if self.at_most is not None else []
        parts.append(f"<= {self.ratio:g}x untrained")
        return f"{self.score} " + " and ".join(parts)
