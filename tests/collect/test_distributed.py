"""Mixed precision (LossScaleOptimizer) and MirroredStrategy on two logical CPUs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import fit_one_batch_recorded, reference_layer_grad_norms, toy_data

from gradscope import GradScope, load_run


def _model(dtype: str | None = None) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", dtype=dtype),
            keras.layers.Dense(3, activation="softmax", dtype="float32"),
        ]
    )


def test_loss_scale_optimizer_records_unscaled_gradients(tmp_path) -> None:
    x, y = toy_data(64)
    model = _model("mixed_float16")
    model.compile(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.05)),
        "sparse_categorical_crossentropy",
    )
    reference = reference_layer_grad_norms(model, x, y)
    record = fit_one_batch_recorded(model, x, y, tmp_path / "run").records[0]
    for layer, ref in reference.items():
        # float16 forward pass: compare loosely, but far tighter than the 2**15 loss scale.
        assert record.layers[layer]["grad_norm"] == pytest.approx(ref, rel=2e-2)


def _mirrored_model() -> keras.Model:
    """``_model()`` compiled under a two-replica MirroredStrategy (skips without two CPUs)."""
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs two logical CPU devices (configured in conftest before TF starts)")
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    with strategy.scope():
        model = _model()
        model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    return model


def test_mirrored_strategy_two_replicas(tmp_path) -> None:
    model = _mirrored_model()
    x, y = toy_data(64)
    reference = reference_layer_grad_norms(model, x, y)
    # The loss is captured on replica 0, i.e. the first half of the global batch.
    first_half_loss = float(
        keras.losses.sparse_categorical_crossentropy(y[:32], model(x[:32])).numpy().mean()
    )
    run = fit_one_batch_recorded(model, x, y, tmp_path / "run")
    assert [r.step for r in run.records] == [0]
    record = run.records[0]
    assert record.loss == pytest.approx(first_half_loss, rel=1e-4)
    for layer, ref in reference.items():
        # All-reduced gradient of the global batch equals the single-device gradient.
        assert record.layers[layer]["grad_norm"] == pytest.approx(ref, rel=1e-4)
    assert 0.0 <= record.layers[model.layers[0].name]["dead_frac"] <= 1.0
    assert np.isfinite(record.layers[model.layers[0].name]["update_ratio"])


def test_mirrored_strategy_plain_steps_between_recorded_ones(tmp_path) -> None:
    model = _mirrored_model()
    x, y = toy_data(64)
    reference = reference_layer_grad_norms(model, x[:16], y[:16])
    callback = GradScope(tmp_path / "run", freq=2, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    run = load_run(callback.run_dir)
    # Steps 1 and 3 ran Keras's own function under the strategy; 0 and 2 the recorded one,
    # whose buffers the host read itself (Keras averages two replicas' logs: nothing carried).
    assert [r.step for r in run.records] == [0, 2]
    assert callback._recorder.carry is False
    assert int(model.optimizer.iterations.numpy()) == 4
    for layer, ref in reference.items():
        assert run.records[0].layers[layer]["grad_norm"] == pytest.approx(ref, rel=1e-4)
