"""Learning curves of a trial, learnable synthetic targets, and the user's training setup.

Scores are checked against Keras's own ``evaluate`` and NumPy; the teacher's targets against a
least-squares linear classifier (they must be linearly separable); the setup against the
optimizer a saved file round-trips.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gradscope.errors import GradscopeInputError
from gradscope.fix.load import load_for_fix
from gradscope.trial import feed, run_trial
from gradscope.trial.curve import accuracy
from gradscope.trial.learning import CurveRecorder, score
from gradscope.trial.setup import training_setup

FEATURES, CLASSES, N, BATCH = 6, 3, 48, 16


def net(compiled: bool = True, optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(optimizer or keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


def test_accuracy_reads_targets_the_way_the_loss_does() -> None:
    pred = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    labels = np.array([1, 2, 2])
    assert accuracy("sparse_categorical_crossentropy", labels, pred) == pytest.approx(2 / 3)
    onehot = np.eye(3)[labels]
    assert accuracy("categorical_crossentropy", onehot, pred) == pytest.approx(2 / 3)
    logits = np.array([[0.3], [-0.2], [-1.0]])
    binary = np.array([[1.0], [1.0], [0.0]])
    loss = {"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}
    assert accuracy(loss, binary, logits) == pytest.approx(2 / 3)  # threshold 0 for logits
    assert accuracy("binary_crossentropy", binary, logits) == pytest.approx(1 / 3)
    # Labels of shape (n,) against one sigmoid output per example, as Keras's loss reads them.
    assert accuracy("binary_crossentropy", binary[:, 0], logits) == pytest.approx(1 / 3)
    assert accuracy("mse", binary, logits) is None
    assert accuracy("sparse_categorical_crossentropy", labels, pred * np.nan) == 0.0


def test_curve_scores_the_whole_set_each_epoch_like_evaluate(tmp_path) -> None:
    model = net()
    data = feed(model, n=N, seed=3, teacher=True)
    recorder = CurveRecorder(data, every=N // BATCH, batch_size=BATCH)
    result = run_trial(
        model, data, 3 * N // BATCH, tmp_path, batch_size=BATCH, callbacks=[recorder]
    )
    curve = recorder.curve()
    assert [p.step for p in curve.points] == [0, 3, 6, 9]
    assert [p.epoch for p in curve.points] == [0.0, 1.0, 2.0, 3.0]
    # The last point is the trained copy scored on every example: Keras's evaluate agrees.
    expected = result.trained.evaluate(data.x, data.y, verbose=0, return_dict=True)["loss"]
    assert curve.final.loss == pytest.approx(expected, rel=1e-4)
    pred = result.trained.predict(data.x, verbose=0)
    assert curve.final.accuracy == pytest.approx(np.mean(pred.argmax(1) == data.y))
    # The first point is the untrained model, never the given one changed.
    start_loss, _ = score(model, data)
    assert curve.start.loss == pytest.approx(start_loss, rel=1e-5)


def test_teacher_targets_are_linearly_separable_random_ones_are_not() -> None:
    model = net()
    taught = feed(model, n=400, seed=0, teacher=True)
    drawn = feed(model, n=400, seed=0)
    np.testing.assert_array_equal(taught.x, drawn.x)  # same inputs, only the targets differ

    def linear_fit_accuracy(x: np.ndarray, y: np.ndarray) -> float:
        design = np.c_[x, np.ones(len(x))]
        weights, *_ = np.linalg.lstsq(design, np.eye(CLASSES)[y], rcond=None)
        return float(np.mean((design @ weights).argmax(1) == y))

    assert linear_fit_accuracy(taught.x, taught.y) > 0.8
    assert linear_fit_accuracy(drawn.x, drawn.y) < 0.6
    assert set(np.unique(taught.y)) == set(range(CLASSES))


def test_setup_of_an_uncompiled_model_names_its_defaults() -> None:
    model = net(compiled=False)
    copy_, setup = training_setup(model)
    assert not model.compiled  # the user's model is never compiled
    assert copy_.compiled and setup.optimizer == "SGD" and setup.learning_rate == 0.01
    assert setup.loss == "sparse_categorical_crossentropy" and setup.batch_size == 32
    assert set(setup.defaults) == {"optimizer", "learning_rate", "loss", "batch_size"}
    assert "(default)" in setup.describe()


def test_command_line_overrides_the_files_training_config(tmp_path) -> None:
    # A Keras 2-style HDF5 file stores its optimizer in training_config: Adagrad at 1.0.
    path = tmp_path / "adagrad.h5"
    net(optimizer=keras.optimizers.Adagrad(1.0)).save(path)
    loaded = load_for_fix(path)
    _, setup = training_setup(loaded)
    assert (setup.optimizer, setup.learning_rate) == ("Adagrad", 1.0)
    assert setup.sources["optimizer"] == "model"
    copy_, setup = training_setup(loaded, optimizer="adam", learning_rate=0.003, batch_size=8)
    assert setup.optimizer == "Adam" and setup.learning_rate == pytest.approx(0.003)
    assert type(copy_.optimizer).__name__ == "Adam"
    assert float(copy_.optimizer.learning_rate) == pytest.approx(0.003)
    assert setup.sources == {
        "optimizer": "command line",
        "learning_rate": "command line",
        "loss": "model",
        "batch_size": "command line",
    }
    with pytest.raises(GradscopeInputError, match="Unknown optimizer 'nope'"):
        training_setup(loaded, optimizer="nope")
    with pytest.raises(GradscopeInputError, match="learning-rate must be > 0"):
        training_setup(loaded, learning_rate=0.0)
