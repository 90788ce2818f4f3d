"""Image classifiers of the zoo: the convnets people train with Keras every day, made tiny.

Each builder returns a fresh compiled model for the 16x16 grey images of
:func:`gradscope.zoo.data.images` (4 classes). Call ``keras.utils.set_random_seed`` first for
reproducible weights.

Example:
    >>> model = cnn_dropout()  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 4)
"""

from __future__ import annotations

from typing import Any

import keras

from gradscope.zoo.data import IMAGE_CLASSES

_SHAPE = (16, 16, 1)


def _compile(model: keras.Model, optimizer: Any = None) -> keras.Model:
    model.compile(
        optimizer or keras.optimizers.Adam(1e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def cnn_dropout(learning_rate: float = 3e-3) -> keras.Model:
    """Two Conv2D/MaxPooling blocks, Dropout, a softmax head (the Keras MNIST convnet, tiny).

    Args:
        learning_rate: Adam's learning rate (the sick twin passes one 100x too high).

    Returns:
        The compiled Sequential model.
    """
    model = keras.Sequential(
        [
            keras.Input(_SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv_1"),
            keras.layers.MaxPooling2D(name="pool_1"),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv_2"),
            keras.layers.MaxPooling2D(name="pool_2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(0.3, name="dropout"),
            keras.layers.Dense(IMAGE_CLASSES, activation="softmax", name="output"),
        ],
        name="cnn_dropout",
    )
    return _compile(model, keras.optimizers.Adam(learning_rate))


def _residual_block(x: Any, filters: int, name: str) -> Any:
    shortcut = x
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv_a")(x)
    h = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn_a")(h)
    h = keras.layers.Activation("relu", name=f"{name}_relu_a")(h)
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv_b")(h)
    h = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn_b")(h)
    h = keras.layers.Add(name=f"{name}_add")([shortcut, h])
    return keras.layers.Activation("relu", name=f"{name}_out")(h)


def resnet_bn() -> keras.Model:
    """A stem convolution and two identity residual blocks with BatchNormalization (ResNet-style).

    Returns:
        The compiled Functional model.
    """
    inp = keras.Input(_SHAPE)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = keras.layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    x = _residual_block(x, 16, "block_1")
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = _residual_block(x, 16, "block_2")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(IMAGE_CLASSES, activation="softmax", name="output")(x)
    return _compile(keras.Model(inp, out, name="resnet_bn"))


def xception_separable() -> keras.Model:
    """Xception's entry flow, tiny: separable convolutions, BN, a strided 1x1 shortcut.

    Returns:
        The compiled Functional model.
    """
    inp = keras.Input(_SHAPE)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="entry_conv")(inp)
    x = keras.layers.BatchNormalization(momentum=0.9, name="entry_bn")(x)
    x = keras.layers.Activation("relu", name="entry_relu")(x)
    shortcut = keras.layers.Conv2D(32, 1, strides=2, padding="same", name="shortcut")(x)
    h = keras.layers.SeparableConv2D(32, 3, padding="same", name="sep_1")(x)
    h = keras.layers.BatchNormalization(momentum=0.9, name="sep_1_bn")(h)
    h = keras.layers.Activation("relu", name="sep_1_relu")(h)
    h = keras.layers.SeparableConv2D(32, 3, padding="same", name="sep_2")(h)
    h = keras.layers.BatchNormalization(momentum=0.9, name="sep_2_bn")(h)
    h = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="sep_pool")(h)
    x = keras.layers.Add(name="merge")([h, shortcut])
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(IMAGE_CLASSES, activation="softmax", name="output")(x)
    return _compile(keras.Model(inp, out, name="xception_separable"))


def mixed_precision_cnn() -> keras.Model:
    """A convnet computing in float16 (``mixed_float16`` policy) with a LossScaleOptimizer.

    The policy is given per layer rather than globally, so building it leaves every other model
    in the process in float32; the softmax runs in float32, as Keras's mixed-precision guide
    advises for numerical stability.

    Returns:
        The compiled Sequential model.
    """
    policy = "mixed_float16"
    model = keras.Sequential(
        [
            keras.Input(_SHAPE),
            keras.layers.Conv2D(16, 3, activation="relu", dtype=policy, name="conv_1"),
            keras.layers.MaxPooling2D(dtype=policy, name="pool"),
            keras.layers.Conv2D(16, 3, activation="relu", dtype=policy, name="conv_2"),
            keras.layers.GlobalAveragePooling2D(dtype=policy, name="gap"),
            keras.layers.Dense(IMAGE_CLASSES, dtype=policy, name="logits"),
            keras.layers.Activation("softmax", dtype="float32", name="output"),
        ],
        name="mixed_precision_cnn",
    )
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(3e-3))
    return _compile(model, optimizer)
