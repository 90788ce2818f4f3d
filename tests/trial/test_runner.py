"""The one trial: same batches for the same seed, the user's model untouched, the optimizer policy.

The losses a trial records are checked against an independent GradientTape loop that trains its
own copy on batches cut by hand from the documented order (seeded permutations, concatenated).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gradscope.errors import GradscopeInputError
from gradscope.model.loader import load_model_safely
from gradscope.trial import (
    DEFAULT_OPTIMIZER,
    OptimizerPolicy,
    TrialData,
    batch_order,
    compile_as_saved,
    feed,
    run_trial,
)

N, FEATURES, CLASSES, BATCH, STEPS, SEED = 50, 6, 3, 16, 7, 5


def net(activation: str = "tanh", compiled: bool = True) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation=activation),
            keras.layers.Dense(8, activation=activation),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(keras.optimizers.SGD(0.1, momentum=0.5), "sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def data() -> TrialData:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, N).astype("int32")
    return TrialData(x, y, synthetic=False)


def batches_by_hand(data: TrialData) -> list[tuple[np.ndarray, np.ndarray]]:
    # The documented order: permutations of default_rng(seed), concatenated, STEPS batches cut.
    rng = np.random.default_rng(SEED)
    perms = [rng.permutation(N) for _ in range(math.ceil(STEPS * BATCH / N))]
    order = np.concatenate(perms)
    cuts = [order[i * BATCH : (i + 1) * BATCH] for i in range(STEPS)]
    return [(data.x[c], data.y[c]) for c in cuts]


def tape_losses(model: keras.Model, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    # Independent of fit and of GradScope: a fresh copy, a fresh optimizer, a plain tape loop.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    losses = []
    for xb, yb in batches:
        with tf.GradientTape() as tape:
            pred = copy(xb, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(yb, pred))
        grads = tape.gradient(loss, copy.trainable_variables)
        optimizer.apply_gradients(zip(grads, copy.trainable_variables, strict=True))
        losses.append(float(loss))
    return losses


def recorded_losses(result) -> list[float]:
    return [r.loss for r in result.run.records]


def test_same_seed_same_batches_and_losses_for_two_candidates(data, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    candidates = {"tanh": net("tanh"), "relu": net("relu")}
    expected = batches_by_hand(data)
    for name, model in candidates.items():
        result = run_trial(model, data, STEPS, tmp_path / name, seed=SEED, batch_size=BATCH)
        assert result.run.steps.tolist() == list(range(STEPS))
        got = result.batches(data)
        assert len(got) == STEPS
        for (xb, yb), (xe, ye) in zip(got, expected, strict=True):
            np.testing.assert_array_equal(xb, xe)
            np.testing.assert_array_equal(yb, ye)
        np.testing.assert_allclose(
            recorded_losses(result), tape_losses(model, expected), rtol=1e-4, atol=1e-6
        )
        # The check has teeth: the same batches in another order give other losses.
        other_order = tape_losses(model, expected[::-1])
        assert not np.allclose(recorded_losses(result), other_order, rtol=1e-4, atol=1e-6)
    # The same seed again: the very same run, step for step.
    again = run_trial(candidates["relu"], data, STEPS, tmp_path / "again", seed=SEED, batch_size=16)
    first = run_trial(candidates["relu"], data, STEPS, tmp_path / "first", seed=SEED, batch_size=16)
    assert recorded_losses(again) == recorded_losses(first)
    # Another seed, another order.
    other = run_trial(candidates["relu"], data, STEPS, tmp_path / "other", seed=SEED + 1)
    assert not np.array_equal(other.order, first.order)


def test_every_example_is_seen_once_before_any_repeats() -> None:
    order = batch_order(10, steps=4, batch_size=4, seed=3)
    assert len(order) == 16
    assert sorted(order[:10].tolist()) == list(range(10))
    assert len(set(order[10:].tolist())) == 6


def test_the_users_model_is_never_mutated(data, tmp_path) -> None:
    model = net("sigmoid")
    model.fit(data.x, data.y, epochs=1, batch_size=25, verbose=0)  # optimizer state exists
    weights = [w.copy() for w in model.get_weights()]
    slots = [v.numpy().copy() for v in model.optimizer.variables]
    iterations = int(model.optimizer.iterations.numpy())
    result = run_trial(model, data, STEPS, tmp_path / "run", seed=SEED)
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, var in zip(slots, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(before, var.numpy())
    assert int(model.optimizer.iterations.numpy()) == iterations
    # ... while the copy trained, with an optimizer of its own, from step 0.
    assert result.trained is not model and result.trained.optimizer is not model.optimizer
    assert int(result.trained.optimizer.iterations.numpy()) == STEPS
    assert not all(
        np.array_equal(a, b) for a, b in zip(weights, result.trained.get_weights(), strict=True)
    )
    uncompiled = net(compiled=False)
    run_trial(uncompiled, data, 2, tmp_path / "uncompiled")
    assert not uncompiled.compiled and getattr(uncompiled, "optimizer", None) is None


def test_a_compiled_model_trains_with_its_own_settings(data, tmp_path) -> None:
    model = net()
    model.compile(
        keras.optimizers.Adam(0.005, beta_1=0.8, clipnorm=2.0),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    result = run_trial(model, data, 3, tmp_path / "run")
    assert result.optimizer_source == "model"
    config = result.trained.optimizer.get_config()
    assert type(result.trained.optimizer) is keras.optimizers.Adam
    assert config["learning_rate"] == pytest.approx(0.005)
    assert config["beta_1"] == pytest.approx(0.8) and config["clipnorm"] == 2.0
    assert result.run.meta.optimizer["class"] == "Adam"
    assert result.trained.get_compile_config()["loss"] == "sparse_categorical_crossentropy"
    assert "accuracy" in result.run.epochs[-1].logs  # the user's metrics too


def test_a_model_without_compile_settings_gets_the_default(data, tmp_path) -> None:
    result = run_trial(net(compiled=False), data, 3, tmp_path / "run")
    assert result.optimizer_source == "default"
    optimizer = result.trained.optimizer
    assert type(optimizer) is keras.optimizers.SGD
    assert optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    assert optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert DEFAULT_OPTIMIZER == {
        "class_name": "SGD",
        "config": {"learning_rate": 0.01, "momentum": 0.9},
    }
    # The loss the softmax output implies, with accuracy for a cross-entropy.
    assert result.trained.get_compile_config()["loss"] == "sparse_categorical_crossentropy"
    assert "accuracy" in result.run.epochs[-1].logs
    # Another default for a benchmark is one argument away.
    adam = OptimizerPolicy(default={"class_name": "Adam", "config": {"learning_rate": 1e-3}})
    other = run_trial(net(compiled=False), data, 2, tmp_path / "adam", policy=adam)
    assert type(other.trained.optimizer) is keras.optimizers.Adam


@keras.saving.register_keras_serializable("gradscope_tests")
class OwnCompile(keras.Model):
    """A subclass with its own compile(): Keras's compile-config round trip skips it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(CLASSES, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)


# Keras notes that its compile-config round trip skips a custom compile(); the trial then compiles
# the copy itself.
@pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called:UserWarning")
def test_a_subclass_with_its_own_compile_keeps_its_settings(data, tmp_path) -> None:
    model = OwnCompile()
    model(data.x[:1])
    model.compile(keras.optimizers.RMSprop(0.002), "sparse_categorical_crossentropy")
    result = run_trial(model, data, STEPS, tmp_path / "run", seed=SEED, batch_size=BATCH)
    assert result.optimizer_source == "model"
    assert type(result.trained.optimizer) is keras.optimizers.RMSprop
    assert result.trained.optimizer is not model.optimizer
    np.testing.assert_allclose(
        recorded_losses(result), tape_losses(model, batches_by_hand(data)), rtol=1e-4, atol=1e-6
    )


def test_files_are_compiled_as_saved(tmp_path) -> None:
    saved = net()
    saved.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    saved.save(tmp_path / "compiled.keras")
    loaded = compile_as_saved(load_model_safely(tmp_path / "compiled.keras"))
    assert type(loaded.optimizer) is keras.optimizers.SGD
    assert float(loaded.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    net(compiled=False).save(tmp_path / "plain.keras")
    assert not compile_as_saved(load_model_safely(tmp_path / "plain.keras")).compiled


def test_feed_follows_the_input_layer_and_the_loss() -> None:
    seq = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.LSTM(4), keras.layers.Dense(2, "softmax")]
    )
    data = feed(seq, n=10)
    assert data.synthetic and data.x.shape == (10, 16, 3) and data.y.shape == (10,)
    seq.compile("sgd", "categorical_crossentropy")
    np.testing.assert_array_equal(feed(seq, n=10).y.sum(axis=1), np.ones(10))
    with pytest.raises(GradscopeInputError, match="both x and y"):
        feed(seq, np.zeros((2, 8, 3)), None, n=10)


def test_small_data_and_bad_steps(data, tmp_path) -> None:
    small = TrialData(data.x[:5], data.y[:5], synthetic=False)
    result = run_trial(net(), small, 3, tmp_path / "small", batch_size=32)
    assert result.batch_size == 5 and len(result.run.records) == 3
    with pytest.raises(GradscopeInputError, match="at least 1"):
        run_trial(net(), data, 0, tmp_path / "none")


def test_targets_that_do_not_fit_are_one_line(data, tmp_path) -> None:
    bad = TrialData(data.x, np.full(N, 7, "int32"), synthetic=False)  # labels out of range
    with pytest.raises(GradscopeInputError, match="check that y fits"):
        run_trial(net(), bad, 2, tmp_path / "bad")
