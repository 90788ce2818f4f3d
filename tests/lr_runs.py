"""Tiny real Keras fits at learning rates too high, too low and right, recorded by GradScope.

Shared by the unstable_loss and slow_convergence tests; each fit runs once per test process
(32 recorded steps on 256 synthetic examples, about a second).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from gradscope import GradScope, load_run
from gradscope.data.store import Run
from gradscope.detect import detect
from gradscope.findings import Finding, Severity

N, FEATURES, CLASSES = 256, 16, 4


def data(label_noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A linearly separable 4-class problem: a network at a good rate learns it in 2 epochs.

    Args:
        label_noise: the share of labels replaced by random classes.

    Returns:
        ``(x, y)``.
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, FEATURES)).astype("float32")
    y = np.argmax(x @ rng.standard_normal((FEATURES, CLASSES)), axis=1).astype("int32")
    flip = rng.random(N) < label_noise
    y[flip] = rng.integers(0, CLASSES, int(flip.sum()))
    return x, y


def mlp(activation: str = "relu") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation=activation, name="h1"),
            keras.layers.Dense(32, activation=activation, name="h2"),
            keras.layers.Dense(CLASSES, activation="softmax", name="out"),
        ]
    )


@functools.cache
def _trained_weights() -> tuple[np.ndarray, ...]:
    # A converged model: 60 full-batch Adam steps bring the training loss to about 5e-5 (one
    # epoch over the data repeated: Keras's per-epoch overhead would dominate otherwise).
    keras.utils.set_random_seed(1)
    model = mlp()
    model.compile(keras.optimizers.Adam(3e-2), "sparse_categorical_crossentropy")
    x, y = data()
    model.fit(np.tile(x, (60, 1)), np.tile(y, 60), batch_size=N, shuffle=False, verbose=0)
    return tuple(model.get_weights())


def trained() -> keras.Model:
    """A fresh copy of the converged model."""
    model = mlp()
    model.set_weights(list(_trained_weights()))
    return model


def frozen_backbone() -> keras.Model:
    """The converged model's hidden layers, frozen, under a new trainable head (transfer)."""
    base = trained()
    for layer in base.layers:
        layer.trainable = False
    head = keras.layers.Dense(CLASSES, activation="softmax", name="new_head")
    return keras.Sequential([keras.Input((FEATURES,)), base.layers[0], base.layers[1], head])


@dataclass(frozen=True)
class Fit:
    """One recorded fit.

    Attributes:
        model: the trained model.
        run: its recorded run.
        findings: ``detect(run)``.
        history: Keras's epoch logs (an independent record of the loss).
        before: the weights before fit, per layer name (kernels), to measure steps with numpy.
        lr: the optimizer's learning rate.
    """

    model: keras.Model
    run: Run
    findings: list[Finding]
    history: dict[str, list[float]]
    before: dict[str, np.ndarray]
    lr: float

    def serious(self) -> dict[str, Finding]:
        """Findings at warning or above, by kind."""
        return {f.kind: f for f in self.findings if f.severity >= Severity.WARNING}

    def kind(self, kind: str) -> Finding | None:
        """The finding of a kind at any severity, if any."""
        return next((f for f in self.findings if f.kind == kind), None)


#: Where the runs are written; removed when the test process exits.
_ROOT = tempfile.TemporaryDirectory(prefix="gradscope_lr_runs_")

SGD, ADAM = keras.optimizers.SGD, keras.optimizers.Adam

#: name -> (model builder, optimizer builder, batch size, epochs, metrics); label noise in
#: :data:`NOISY`.
FITS: dict[str, tuple[Callable[[], keras.Model], Callable[[], object], int, int, tuple]] = {
    # 100x the healthy SGD(0.01, momentum=0.9) below.
    "sgd_100x_high": (lambda: mlp("tanh"), lambda: SGD(1.0, momentum=0.9), 16, 2, ()),
    # 1e4x below it.
    "sgd_too_low": (mlp, lambda: SGD(1e-6), 16, 2, ("accuracy",)),
    "adam": (mlp, lambda: ADAM(1e-3), 16, 2, ()),
    "sgd_momentum": (lambda: mlp("tanh"), lambda: SGD(0.01, momentum=0.9), 16, 2, ()),
    # Batches of 4 and 60 % random labels: large steps (update ratio 2e-2 for seeds 0-2), a
    # loss that jumps from batch to batch and falls < 10 % in one epoch, and steps that cancel
    # (weight norm 0.99x): minibatch noise, not a rate too high.
    "noisy_small_batch": (mlp, lambda: SGD(0.1), 4, 1, ()),
    "nan": (mlp, lambda: SGD(1e3), 16, 1, ()),
    "converged_sgd": (trained, lambda: SGD(0.01), 16, 2, ()),
    # Keras's transfer-learning guide: fine-tune the whole trained model at Adam(1e-5).
    "fine_tune_low_rate": (trained, lambda: ADAM(1e-5), 16, 2, ()),
    "frozen_backbone": (frozen_backbone, lambda: ADAM(1e-3), 16, 2, ()),
}

#: Fits on labels with this share replaced at random.
NOISY = {"noisy_small_batch": 0.6}


@functools.cache
def fit(name: str) -> Fit:
    """Trains one of :data:`FITS` with ``GradScope(freq=1)`` (once per process).

    Args:
        name: a key of :data:`FITS`.

    Returns:
        The :class:`Fit`.
    """
    build, optimizer, batch, epochs, metrics = FITS[name]
    keras.utils.set_random_seed(0)
    model = build()
    opt = optimizer()
    model.compile(opt, "sparse_categorical_crossentropy", metrics=list(metrics))
    before = {
        layer.name: np.array(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")
    }
    x, y = data(NOISY.get(name, 0.0))
    scope = GradScope(f"{_ROOT.name}/{name}", freq=1, verbose=0)
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[scope])
    run = load_run(scope.run_dir)
    lr = float(keras.ops.convert_to_numpy(opt.learning_rate))
    return Fit(model, run, detect(run), history.history, before, lr)
