"""Scope records the same statistics from a custom tf.function training loop."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import toy_data

from gradscope import Scope, load_run


def _setup():
    x, y = toy_data(64)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return x, y, model, loss_fn


def test_custom_loop_matches_gradient_tape(tmp_path) -> None:
    x, y, model, loss_fn = _setup()
    optimizer = keras.optimizers.SGD(0.1)
    scope = Scope(model, tmp_path / "run", freq=2, optimizer=optimizer)

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        scope.record_gradients(grads, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss, grads

    expected = {}
    for step in range(5):
        xb, yb = x[step * 8 : (step + 1) * 8], y[step * 8 : (step + 1) * 8]
        loss, grads = train_step(xb, yb)
        if step % 2 == 0:
            expected[step] = (
                float(loss),
                float(np.sqrt(sum(np.sum(g.numpy() ** 2) for g in grads[:2]))),
                0.1 * float(np.sqrt(sum(np.sum(g.numpy() ** 2) for g in grads[2:]))),
            )
        scope.step_end(loss=loss)
    scope.close()
    run = load_run(tmp_path / "run")
    assert [r.step for r in run.records] == [0, 2, 4]
    first, last = model.layers[0].name, model.layers[1].name
    for record in run.records:
        loss, norm_first, update_last = expected[record.step]
        assert record.loss == pytest.approx(loss, rel=1e-6)
        assert record.layers[first]["grad_norm"] == pytest.approx(norm_first, rel=1e-5)
        assert record.layers[last]["update_norm"] == pytest.approx(update_last, rel=1e-4)
        assert 0.0 <= record.layers[first]["dead_frac"] <= 1.0
    assert run.meta.optimizer["class"] == "SGD"
    assert "call" not in model.layers[0].__dict__


def test_step_end_inside_tf_function_is_refused(tmp_path) -> None:
    _, _, model, _ = _setup()
    with Scope(model, tmp_path / "run") as scope:

        @tf.function
        def bad():
            scope.step_end(loss=1.0)
            return 0

        with pytest.raises(RuntimeError, match="not inside tf.function"):
            bad()


def test_mismatched_lists_are_refused(tmp_path) -> None:
    _, _, model, _ = _setup()
    with Scope(model, tmp_path / "run") as scope, pytest.raises(ValueError, match="same length"):
        scope.record_gradients([None], model.trainable_variables)


def test_exception_marks_run_interrupted(tmp_path) -> None:
    _, _, model, _ = _setup()
    with pytest.raises(ZeroDivisionError), Scope(model, tmp_path / "run"):
        1 / 0  # noqa: B018
    assert load_run(tmp_path / "run").meta.status == "interrupted"
