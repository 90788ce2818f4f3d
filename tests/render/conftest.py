"""Real runs recorded by GradScope on tiny models, shared by the render tests (built once)."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from helpers import toy_data

from gradscope import GradScope


def _deep(activation: str, init: str, name: str) -> keras.Model:
    layers: list[keras.layers.Layer] = [keras.Input((8,))]
    for i in range(5):
        layers.append(
            keras.layers.Dense(
                12, activation=activation, kernel_initializer=init, name=f"hidden_{i + 1}"
            )
        )
    layers.append(keras.layers.Dense(3, activation="softmax", name="output"))
    return keras.Sequential(layers, name=name)


def _fit(model: keras.Model, run_dir: Path) -> Path:
    x, y = toy_data(96)
    model.compile(
        keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        validation_split=0.2,
        verbose=0,
        callbacks=[GradScope(run_dir, freq=1, histogram_freq=2)],
    )
    return run_dir


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TensorBoard log dir with two real runs: ``sick`` (deep sigmoid) and ``healthy``."""
    keras.utils.set_random_seed(7)
    root = tmp_path_factory.mktemp("logdir")
    _fit(_deep("sigmoid", "glorot_uniform", "deep_sigmoid"), root / "sick")
    _fit(_deep("relu", "he_normal", "deep_relu"), root / "healthy")
    return root
