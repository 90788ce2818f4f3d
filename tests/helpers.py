"""Small models and independent reference computations shared by tests."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gradscope import GradScope, load_run
from gradscope.collect.layers import iter_units
from gradscope.data.store import Run


class LazyNet(keras.Model):
    """A subclassed model built by its first call: GradScope watches its first step, then hooks.

    Args:
        units: the hidden layer's width.
    """

    def __init__(self, units: int = 16) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def toy_data(
    n: int = 64, d: int = 8, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    w = rng.standard_normal((d, classes))
    y = np.argmax(x @ w, axis=1).astype("int32")
    return x, y


def reference_layer_grad_norms(
    model: keras.Model, x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """Per-layer L2 gradient norms from a plain tf.GradientTape on the batch (independent path)."""
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=pred, training=True)
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    by_id = {id(v): g for v, g in zip(variables, grads, strict=False)}
    out = {}
    for path, layer in iter_units(model):
        gs = [by_id[id(v)] for v in layer.trainable_variables if id(v) in by_id]
        if gs:
            out[path] = float(np.sqrt(sum(float(tf.reduce_sum(tf.square(g))) for g in gs)))
    return out


def fit_one_batch_recorded(model: keras.Model, x: np.ndarray, y: np.ndarray, log_dir) -> Run:
    """One epoch of one full, unshuffled batch with GradScope(freq=1); returns the loaded run."""
    callback = GradScope(log_dir, freq=1)
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    return load_run(callback.run_dir)
