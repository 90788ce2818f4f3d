"""Small fits the dispatch tests share: an MLP, its tape reference, a fit counting traces."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from helpers import toy_data

from gradscope import GradScope
from gradscope.collect.layers import iter_units

LR = 0.05
BATCH = 8


def mlp(seed: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(12, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def tape_norms(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int) -> list[dict]:
    """Per-step layer gradient norms of plain SGD on unshuffled batches, by tf.GradientTape."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    units = list(iter_units(clone))
    out = []
    for step in range(steps):
        xb = x[step * BATCH : (step + 1) * BATCH]
        yb = y[step * BATCH : (step + 1) * BATCH]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, clone(xb, training=True))
        variables = clone.trainable_variables
        grads = tape.gradient(loss, variables)
        by_id = {id(v): g for v, g in zip(variables, grads, strict=True)}
        out.append(
            {
                path: float(
                    np.sqrt(sum(float(tf.reduce_sum(by_id[id(v)] ** 2)) for v in layer.weights))
                )
                for path, layer in units
            }
        )
        for v, g in zip(variables, grads, strict=True):
            v.assign_sub(LR * g)
    return out


def counted_fit(tmp_path, scope: bool) -> tuple[int, dict]:
    """Fits a fresh MLP compiled with a metric; returns its train step's traces and history."""
    model = mlp()
    model.compile(
        keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    traces = []
    original = model.train_step

    def train_step(data):
        traces.append(1)  # Python runs when a function traces the step, not when it runs
        return original(data)

    model.train_step = train_step
    x, y = toy_data(n=96)
    callbacks = [GradScope(tmp_path, freq=4, tensorboard=False, verbose=0)] if scope else []
    history = model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=callbacks
    )
    return len(traces), history.history


def assert_match_tape(records: list, reference: list[dict]) -> None:
    """Every record's per-layer gradient norm equals the tape's at its step (rel 1e-4)."""
    import pytest

    for record in records:
        for layer, ref in reference[record.step].items():
            assert record.layers[layer]["grad_norm"] == pytest.approx(ref, rel=1e-4), layer
