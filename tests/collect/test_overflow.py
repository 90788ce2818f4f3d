"""Gradients whose squares overflow float32 are recorded as the finite numbers they are.

A float32 sum of squares overflows once entries pass ~1.8e19; the recorded step then takes the
gradients' sums again in float64. Before that, a diverging net whose gradients were still finite
showed ``inf`` norms, and the non-finite finding named a step one early. Checked against a
``tf.GradientTape`` pass with float64 norms in numpy (an independent computation). Weights get no
such retake (its cost, a second branch, fell on every first fit): see ``test_stats.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from gradscope.detect import detect
from tests.helpers import fit_one_batch_recorded


def _linear(kernel: float) -> keras.Model:
    # Loss = mean output: its gradient is the mean input, whatever the kernel. A zero learning
    # rate keeps the weights as they are (their squares have no float64 retake).
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                1,
                use_bias=False,
                kernel_initializer=keras.initializers.Constant(kernel),
                name="dense",
            ),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), loss=lambda y, p: tf.reduce_mean(p))
    return model


def _tape_norm(model: keras.Model, x: np.ndarray) -> float:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x, training=True))
    (grad,) = tape.gradient(loss, model.trainable_variables)
    return float(np.linalg.norm(grad.numpy().astype(np.float64)))


def test_gradients_beyond_the_square_range_keep_their_norm(tmp_path) -> None:
    x = np.full((8, 4), 1e20, np.float32)  # gradient entries 1e20: squares 1e40 > float32 max
    model = _linear(1e-3)
    expected = _tape_norm(model, x)
    run = fit_one_batch_recorded(model, x, np.zeros((8, 1), np.float32), tmp_path / "run")
    stats = run.records[0].layers["dense"]
    assert np.isfinite(expected) and expected > 1e19
    assert stats["grad_norm"] == pytest.approx(expected, rel=1e-6)
    assert stats["grad_max_abs"] == pytest.approx(1e20, rel=1e-6)
    assert stats["nonfinite"] == 0
    assert "nonfinite" not in {f.kind for f in detect(run)}
