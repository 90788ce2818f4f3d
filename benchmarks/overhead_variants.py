"""Models, data and benchmarked configurations of ``overhead.py``.

What is fitted (standardized digits, tiled; a deep MLP and a small CNN) and under which
callbacks (the ``id`` column of the overhead tables); ``overhead.py`` does the timing and the
tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Variant:
    """One benchmarked configuration."""

    id: str
    description: str
    make: Callable[[str, np.ndarray], list[Any]]  # (log_dir, probe batch) -> callbacks


def load_data(examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardized scikit-learn digits (8x8 images, 10 classes), tiled to ``examples`` rows."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    y = digits.target.astype(np.int32)
    reps = -(-examples // len(x))
    return np.tile(x, (reps, 1))[:examples], np.tile(y, reps)[:examples]


def build_mlp(seed: int = 0, depth: int = 10) -> Any:
    """``depth`` hidden Dense(256, relu) layers + softmax head, for 64 inputs (issue 3: 10)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers: list[Any] = [keras.Input((64,))]
    layers += [keras.layers.Dense(256, activation="relu") for _ in range(depth)]
    layers += [keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers, name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def build_cnn(seed: int = 0) -> Any:
    """Small CNN on digits-sized 8x8x1 images: 2 conv + max-pool + 2 dense."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


MODELS: dict[str, tuple[str, Callable[[], Any], tuple[int, ...]]] = {
    "mlp": ("MLP 10x256 Dense ReLU, 64 inputs", build_mlp, (64,)),
    "cnn": ("CNN 2 conv + pool + 2 dense, 8x8x1 images", build_cnn, (8, 8, 1)),
}


def variants() -> list[Variant]:
    """The benchmarked configurations (``plain`` first: it is the baseline of every ratio).

    GradScope gets ``verbose=0``: it only silences the end-of-fit summary print; the diagnosis
    itself still runs and is timed.
    """
    import keras

    from gradscope import GradScope

    def scope(**kwargs: Any) -> Callable[[str, np.ndarray], list[Any]]:
        return lambda d, p: [GradScope(d, verbose=0, **kwargs)]

    def probed(**kwargs: Any) -> Callable[[str, np.ndarray], list[Any]]:
        return lambda d, p: [GradScope(d, verbose=0, probe_data=p, **kwargs)]

    class NoopBatchEnd(keras.callbacks.Callback):
        """Does nothing, but defines on_train_batch_end (Keras then syncs every batch)."""

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            pass

    return [
        Variant("plain", "model.fit, no callback", lambda d, p: []),
        Variant("gs_default", "GradScope defaults (freq=10, wrapped activations)", scope()),
        Variant(
            "gs_default_no_tb",
            "GradScope(tensorboard=False): host-side cost without TensorBoard events",
            scope(tensorboard=False),
        ),
        Variant(
            "gs_freq1_hist10",
            "GradScope(freq=1, histogram_freq=10)",
            scope(freq=1, histogram_freq=10),
        ),
        Variant(
            "tensorboard_hist1",
            "keras.callbacks.TensorBoard(histogram_freq=1)",
            lambda d, p: [keras.callbacks.TensorBoard(d, histogram_freq=1)],
        ),
        Variant(
            "noop_batch_cb", "empty on_train_batch_end callback", lambda d, p: [NoopBatchEnd()]
        ),
        Variant("gs_f10_act_off", "GradScope(activation_freq=0)", scope(activation_freq=0)),
        Variant("gs_f10_probe", "GradScope(probe_data=256 examples)", probed()),
        Variant(
            "gs_f1_act_off",
            "GradScope(freq=1, activation_freq=0)",
            scope(freq=1, activation_freq=0),
        ),
        Variant(
            "gs_f1_wrapped",
            "GradScope(freq=1, activation_freq=1), no probe",
            scope(freq=1, activation_freq=1),
        ),
        Variant(
            "gs_f1_probe",
            "GradScope(freq=1, activation_freq=1, probe_data=256 examples)",
            probed(freq=1, activation_freq=1),
        ),
    ]


#: (freq, activations off, wrapped calls, probe batch) for the activation-source comparison.
ACTIVATION_TRIPLES = (
    (10, "gs_f10_act_off", "gs_default", "gs_f10_probe"),
    (1, "gs_f1_act_off", "gs_f1_wrapped", "gs_f1_probe"),
)
