"""Model files and the timed calls of ``audit_latency.py``.

The two saved models (``sigmoid_mlp``, ``cnn``) and one runner per variant of the in-process
table: ``bare`` (issue 4's baseline, also run in a fresh process by ``--cli``), ``traced`` and
the three ``audit`` flavours.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 32
#: The default light probe's steps, given explicitly to run the recorded probe instead.
PROBE_STEPS = 8


def build_sigmoid_mlp() -> Any:
    """10 x Dense(256, sigmoid), RandomNormal(1.0), SGD(0.01): vanishing + saturation."""
    import keras

    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=1.0)
    model = keras.Sequential(
        [keras.Input((32,))]
        + [
            keras.layers.Dense(256, activation="sigmoid", kernel_initializer=init)
            for _ in range(10)
        ]
        + [keras.layers.Dense(10, activation="softmax")],
        name="sigmoid_mlp",
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def build_cnn() -> Any:
    """Small healthy CNN on 28x28x1: 2 conv (ReLU, He) + pool + 2 dense, Adam."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer="he_normal"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def write_models(root: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """Saves the requested files (``<model>.<keras|h5>``) under ``root``."""
    import warnings

    builders = {"sigmoid_mlp": build_sigmoid_mlp, "cnn": build_cnn}
    paths = {}
    for name in names:
        stem = name.split(".")[0]
        path = root / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns that HDF5 is a legacy format
            builders[stem]().save(path)
        paths[name] = path
    return paths


def batch_for(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """32 standard-normal inputs for the model's input shape and integer class targets."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, *model.inputs[0].shape[1:])).astype("float32")
    y = rng.integers(0, int(model.outputs[0].shape[-1]), BATCH).astype("int32")
    return x, y


def bare(path: Path) -> None:
    """Issue 4's baseline: load_model + one eager forward/backward pass.

    ``compile=False``, as the audit itself loads: the pass needs no optimizer, and restoring the
    stored one would only make the baseline slower (and the ratio look better).
    """
    import keras
    import tensorflow as tf

    model = keras.models.load_model(path, compile=False)
    x, y = batch_for(model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    float(loss)
    _ = [g.numpy() for g in grads]  # make sure the backward pass really ran


def traced(path: Path) -> None:
    """load_model + one compiled train step (traces a tf.function, as the audit's probe does)."""
    import keras

    # A fresh optimizer: one restored from an .h5 file refuses the loaded model's variables.
    model = keras.models.load_model(path, compile=False)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x, y = batch_for(model)
    model.train_on_batch(x, y)


def traced_own(path: Path) -> None:
    """As :func:`traced`, with a fresh optimizer of the file's own class and settings.

    The file's one training step: the audit's probe trains with the file's optimizer (Adam for
    the CNN), whose update step costs more to trace and run than SGD's.
    """
    import keras

    saved = keras.models.load_model(path)  # compiled as saved, for its optimizer and loss
    optimizer = type(saved.optimizer).from_config(saved.optimizer.get_config())
    saved.compile(optimizer, "sparse_categorical_crossentropy")
    x, y = batch_for(saved)
    saved.train_on_batch(x, y)


def run_audit(path: Path, steps: int | None = None) -> None:
    """``gradscope.audit.audit`` on the file, its probe run written to a temporary directory."""
    from gradscope.audit import audit

    with tempfile.TemporaryDirectory(prefix="gs-audit-bench-") as tmp:
        audit(path, steps=steps, log_dir=Path(tmp) / "run")


RUNNERS: dict[str, Callable[[Path], None]] = {
    "bare": bare,
    "traced": traced,
    "traced_own": traced_own,
    "audit": run_audit,
    "audit_recorded": lambda p: run_audit(p, steps=PROBE_STEPS),
    "audit_static": lambda p: run_audit(p, steps=0),
}
