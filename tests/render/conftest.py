"""Real runs recorded by GradScope on tiny models (built once) and one headless Chromium, shared
by the render tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    callback = GradScope(run_dir.parent, freq=1, histogram_freq=2)
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        validation_split=0.2,
        verbose=0,
        callbacks=[callback],
    )
    # GradScope names its run after the time; renamed (a run directory is self-contained) so
    # the render tests can say "sick" and "healthy".
    return callback.run_dir.rename(run_dir)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TensorBoard log dir with two real runs: ``sick`` (deep sigmoid) and ``healthy``."""
    keras.utils.set_random_seed(7)
    root = tmp_path_factory.mktemp("logdir")
    _fit(_deep("sigmoid", "glorot_uniform", "deep_sigmoid"), root / "sick")
    _fit(_deep("relu", "he_normal", "deep_relu"), root / "healthy")
    return root


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless system Chromium (Playwright) for every browser test of the session.

    Skips with the reason when ``/usr/bin/chromium`` is missing (CI installs it) or Playwright
    is not installed (it is in the ``dev`` extra).
    """
    pytest.importorskip("playwright.sync_api", reason="Playwright missing: pip install -e .[dev]")
    from chromium import CHROMIUM, NO_CHROMIUM, launch
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()
