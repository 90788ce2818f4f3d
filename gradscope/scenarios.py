"""The chapter's scenario suite: sick and healthy networks on digits, with the expected diagnosis.

One place for the model builders and their ground truth, shared by the tests
(``tests/detect/test_scenarios.py`` asserts on them) and ``benchmarks/scenarios.py`` (which
measures precision and recall of the detectors through the callback and ``gradscope audit``).

The expected kinds are set by construction, from the chapter, not from what gradscope reports:
a deep sigmoid stack with ``RandomNormal(1.0)`` vanishes and saturates; a strongly negative bias
kills ReLUs; a large learning rate or initialization without clipping explodes (and then turns
into NaN); He+ReLU (with or without BN), SELU+LeCun and a shallow Glorot+tanh net are healthy.

Example:
    >>> scenario = SCENARIOS["deep_sigmoid"]
    >>> sorted(scenario.expected_run)
    ['saturation', 'vanishing_gradients']
    >>> model = scenario.build()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.zoo.tabular import HUGE_INIT

#: Input width of the digits data (8x8 pixels).
DIGITS_FEATURES = 64


@dataclass(frozen=True)
class Scenario:
    """One network of the suite and the diagnosis it should get.

    Attributes:
        name: the scenario id.
        build: returns a fresh, compiled model (call after ``keras.utils.set_random_seed``).
        expected_run: finding kinds the run detectors should report at warning or above.
        expected_static: kinds the static rules should report from the architecture alone.
        description: one line for tables.
        regression: True if the model regresses the digit value (MSE) instead of classifying.
    """

    name: str
    build: Callable[[], keras.Model]
    expected_run: frozenset[str] = field(default_factory=frozenset)
    expected_static: frozenset[str] = field(default_factory=frozenset)
    description: str = ""
    regression: bool = False

    @property
    def sick(self) -> bool:
        """True if any finding is expected."""
        return bool(self.expected_run or self.expected_static)

    def targets(self, y: np.ndarray) -> np.ndarray:
        """The training targets for digit labels ``y`` (floats for the regression scenario).

        Args:
            y: integer labels 0-9.

        Returns:
            ``y`` as the model's loss expects it.
        """
        return y.astype("float32") if self.regression else y


def mlp(
    depth: int,
    width: int,
    act: str,
    init: Any,
    *,
    bn: bool = False,
    optimizer: keras.optimizers.Optimizer | None = None,
    bias: float = 0.0,
    loss: str = "sparse_categorical_crossentropy",
    out: int = 10,
    name: str | None = None,
    compiled: bool = True,
) -> keras.Model:
    """An MLP on the 64 digits features: the one builder of the scenarios and the demo.

    Layers are named ``hidden_1`` ... ``hidden_<depth>`` and ``output`` (with ``bn``, each
    hidden block is ``hidden_i``, ``hidden_i_bn``, ``hidden_i_act``), so runs and reports name
    the same layers whatever else was built in the process.

    Args:
        depth: hidden Dense layers.
        width: units per hidden layer.
        act: hidden activation.
        init: kernel initializer of the hidden layers.
        bn: insert BatchNormalization between each Dense and its activation.
        optimizer: the optimizer (default Adam(1e-3)).
        bias: constant bias initialization of the hidden layers (0: Keras's "zeros").
        loss: the loss.
        out: output units (softmax if > 1, linear if 1).
        name: the model's name (Keras's default if None).
        compiled: compile with ``optimizer``, ``loss`` and (for classifiers) accuracy; False
            returns the model uncompiled (``optimizer`` and ``loss`` are then unused).

    Returns:
        The model.

    Example:
        >>> len(mlp(2, 8, "relu", "he_normal").layers)
        3
        >>> mlp(2, 8, "sigmoid", "glorot_uniform", compiled=False).compiled
        False
    """
    bias_init = keras.initializers.Constant(bias) if bias else "zeros"
    layers: list[Any] = [keras.Input((DIGITS_FEATURES,))]
    for i in range(1, depth + 1):
        layers.append(
            keras.layers.Dense(
                width,
                activation=None if bn else act,
                kernel_initializer=init,
                bias_initializer=bias_init,
                name=f"hidden_{i}",
            )
        )
        if bn:
            layers += [
                keras.layers.BatchNormalization(name=f"hidden_{i}_bn"),
                keras.layers.Activation(act, name=f"hidden_{i}_act"),
            ]
    layers.append(keras.layers.Dense(out, activation="softmax" if out > 1 else None, name="output"))
    model = keras.Sequential(layers, name=name)
    if compiled:
        model.compile(
            optimizer or keras.optimizers.Adam(1e-3),
            loss,
            metrics=None if out == 1 else ["accuracy"],
        )
    return model


def unusual() -> keras.Model:
    """Frozen random first layer, ELU, LayerNormalization, tanh, RMSprop: odd, but it trains.

    Returns:
        The compiled Functional model.
    """
    inp = keras.Input((DIGITS_FEATURES,))
    h = keras.layers.Dense(48, activation="relu", kernel_initializer="he_uniform", trainable=False)(
        inp
    )
    h = keras.layers.Dense(48, activation="elu")(h)
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.Dense(32, activation="tanh")(h)
    out = keras.layers.Dense(10, activation="softmax")(h)
    model = keras.Model(inp, out)
    model.compile(
        keras.optimizers.RMSprop(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


# A config, not an instance: Keras builds one initializer per layer from it, each drawing its seed
# after ``keras.utils.set_random_seed``. A shared ``RandomNormal(stddev=1.0)`` instance fixes its
# seed when this module is imported, from whatever state Python's ``random`` had then, so a run
# depended on what the process did before, and every same-shape layer got the same kernel.
_HUGE = HUGE_INIT

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "deep_sigmoid",
            # The chapter's sick net: 10 sigmoid layers, RandomNormal(stddev=1.0), plain SGD.
            lambda: mlp(10, 256, "sigmoid", _HUGE, optimizer=keras.optimizers.SGD(0.01)),
            frozenset({"vanishing_gradients", "saturation"}),
            frozenset({"deep_saturating_stack", "init_activation_mismatch"}),
            "10 x sigmoid, RandomNormal(1.0), SGD",
        ),
        Scenario(
            "negative_bias_relu",
            lambda: mlp(4, 64, "relu", "he_normal", bias=-5.0),
            frozenset({"dying_relu"}),
            description="4 x ReLU, He, bias -5",
        ),
        Scenario(
            "regression_high_lr",
            lambda: mlp(
                4, 64, "relu", "he_normal", optimizer=keras.optimizers.SGD(0.05), loss="mse", out=1
            ),
            frozenset({"exploding_gradients", "nonfinite"}),
            description="4 x ReLU, He, MSE on 0-9, SGD(0.05), no clipping",
            regression=True,
        ),
        Scenario(
            "huge_init_sgd",
            lambda: mlp(6, 64, "relu", _HUGE, optimizer=keras.optimizers.SGD(0.01)),
            frozenset({"exploding_gradients", "nonfinite"}),
            frozenset({"init_activation_mismatch"}),
            "6 x ReLU, RandomNormal(1.0), SGD(0.01)",
        ),
        Scenario("he_relu", lambda: mlp(4, 64, "relu", "he_normal"), description="4 x ReLU, He"),
        Scenario(
            "he_relu_sgd",
            # Plain SGD: the stalled-update rule must stay quiet on a healthy net too.
            lambda: mlp(4, 64, "relu", "he_normal", optimizer=keras.optimizers.SGD(0.05)),
            description="4 x ReLU, He, SGD(0.05)",
        ),
        Scenario(
            "he_relu_bn",
            lambda: mlp(4, 64, "relu", "he_normal", bn=True),
            description="4 x (Dense, BN, ReLU), He",
        ),
        Scenario(
            "selu_lecun",
            lambda: mlp(8, 64, "selu", "lecun_normal"),
            description="8 x SELU, LeCun normal",
        ),
        Scenario(
            "glorot_tanh_shallow",
            lambda: mlp(2, 64, "tanh", "glorot_uniform"),
            description="2 x tanh, Glorot",
        ),
        Scenario(
            "unusual_working",
            unusual,
            description="frozen layer, ELU, LayerNorm, tanh, RMSprop",
        ),
    )
}


@dataclass
class TrainedScenario:
    """A scenario after a short fit with the GradScope callback.

    Attributes:
        model: the trained model.
        run_dir: the run directory (the callback's ``run_dir``).
        findings: the callback's findings (run detectors).
        history: Keras's ``history.history``.
    """

    model: keras.Model
    run_dir: Path
    findings: list[Any]
    history: dict[str, list[float]]


def fit_scenario(
    scenario: Scenario,
    x: np.ndarray,
    y: np.ndarray,
    log_dir: Path,
    epochs: int = 2,
    batch_size: int = 64,
    seed: int = 0,
) -> TrainedScenario:
    """Trains a scenario the way the suite does: seeded, ``GradScope(freq=1)``, no TensorBoard.

    Args:
        scenario: the scenario.
        x: inputs (digits, standardized).
        y: integer labels.
        log_dir: where the run goes (a new run directory is created under it).
        epochs: training epochs (2 x 1797 examples / 64 = 58 recorded steps).
        batch_size: examples per step.
        seed: ``keras.utils.set_random_seed`` before building.

    Returns:
        The :class:`TrainedScenario`.

    Example:
        >>> done = fit_scenario(SCENARIOS["he_relu"], x, y, Path("runs/he"))  # doctest: +SKIP
        >>> done.findings  # doctest: +SKIP
        []
    """
    from gradscope.collect.callback import GradScope

    keras.utils.set_random_seed(seed)
    model = scenario.build()
    callback = GradScope(log_dir, freq=1, tensorboard=False, verbose=0)
    history = model.fit(
        x,
        scenario.targets(y),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[callback],
    )
    assert callback.run_dir is not None  # set by the fit's first step
    return TrainedScenario(model, callback.run_dir, callback.findings, history.history)
