"""Dense models of the zoo on tabular features: a classifier and a regression MLP, sick twins.

The healthy builders take the knobs their sick twins turn (activation, initializer, bias,
learning rate), so a twin differs from its healthy model by exactly the fault the chapter
describes.

Example:
    >>> model = tabular_mlp()  # doctest: +SKIP
    >>> sick = tabular_mlp(activation="relu", bias=-5.0)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras

from gradscope.zoo.data import TABULAR_FEATURES

#: The chapter's bad initialization: far too large for any activation.
HUGE_INIT = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0}}


def tabular_mlp(
    depth: int = 6,
    width: int = 64,
    activation: str = "relu",
    init: Any = "he_normal",
    bias: float = 0.0,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> keras.Model:
    """A ``depth`` x Dense(``width``) classifier of the 16 tabular features into 3 classes.

    Args:
        depth: hidden layers.
        width: their units.
        activation: their activation.
        init: their kernel initializer (a name or an initializer config).
        bias: constant bias initialization of the hidden layers.
        optimizer: the optimizer (default Adam(3e-3)).

    Returns:
        The compiled Sequential model.
    """
    layers: list[Any] = [keras.Input((TABULAR_FEATURES,))]
    for i in range(1, depth + 1):
        layers.append(
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=keras.initializers.get(init),
                bias_initializer=keras.initializers.Constant(bias) if bias else "zeros",
                name=f"hidden_{i}",
            )
        )
    layers.append(keras.layers.Dense(3, activation="softmax", name="output"))
    model = keras.Sequential(layers, name="tabular_mlp")
    model.compile(
        optimizer or keras.optimizers.Adam(3e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def regression_mlp(learning_rate: float = 0.01) -> keras.Model:
    """Three Dense(32, ReLU) layers regressing a smooth target with MSE, SGD with momentum 0.9.

    Args:
        learning_rate: SGD's learning rate (the sick twin passes one 100x too high).

    Returns:
        The compiled Sequential model.
    """
    model = keras.Sequential(
        [
            keras.Input((TABULAR_FEATURES,)),
            keras.layers.Dense(32, activation="relu", name="hidden_1"),
            keras.layers.Dense(32, activation="relu", name="hidden_2"),
            keras.layers.Dense(32, activation="relu", name="hidden_3"),
            keras.layers.Dense(1, name="output"),
        ],
        name="regression_mlp",
    )
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9), "mse", metrics=["mae"])
    return model
