"""Activation swaps: hidden activations replaced (ReLU, LeakyReLU, ELU, SELU) on a copy.

Each swap also re-initializes the kernels it touches for the new activation (He for the ReLU
family, LeCun for SELU), as Géron, ch. 11 pairs them; the SELU swap turns Dropout into
AlphaDropout. The output head is never changed: its activation belongs to the task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from gradscope.fix.transforms.init import initializer, kernel_edit
from gradscope.fix.transforms.select import levels, named_layers, taken_names, unique_name
from gradscope.model.graph import is_activation_layer, is_kernel_layer, layer_activation
from gradscope.model.rebuild import FixNotApplicable, LayerEdit, rebuild
from gradscope.model.taxonomy import LINEAR


def activation_layer_factory(name: str, target: str, alpha: float) -> Callable[[], Any]:
    """A factory for a standalone activation layer (LeakyReLU for ``"leaky_relu"``).

    Args:
        name: the new layer's name.
        target: the activation, e.g. ``"relu"`` or ``"leaky_relu"``.
        alpha: LeakyReLU's negative slope (ignored for other activations).

    Returns:
        A function making the layer, for :class:`~gradscope.model.rebuild.LayerEdit`'s ``after``.

    Example:
        >>> activation_layer_factory("dense_relu", "relu", 0.0)().name  # doctest: +SKIP
        'dense_relu'
    """
    if target == "leaky_relu":
        return lambda: keras.layers.LeakyReLU(negative_slope=alpha, name=name)
    return lambda: keras.layers.Activation(target, name=name)


def _swap_activation(
    model: keras.Model,
    target: str,
    family: str,
    layers: Sequence[str] | None,
    alpha: float,
    seed: int | None,
) -> keras.Model:
    names = named_layers(model, layers)
    init = initializer(family, None, "truncated_normal", seed)
    taken = taken_names(model)
    edits: dict[int, LayerEdit] = {}
    swapped = 0

    def wanted(layer: keras.layers.Layer, head: frozenset[int]) -> bool:
        act = layer_activation(layer) or "linear"
        if act in LINEAR or act == target:
            return False
        return layer.name in names if names is not None else id(layer) not in head

    for graph, head in levels(model):
        for layer in graph.layers:
            if is_kernel_layer(layer) and wanted(layer, head):
                swapped += 1
                if target == "leaky_relu":
                    # A Dense activation string cannot carry alpha: a LeakyReLU layer follows
                    # (Géron's pattern "Dense(..., kernel_initializer='he_normal'), LeakyReLU").
                    name = unique_name(f"{layer.name}_leaky_relu", taken)
                    edit = kernel_edit(layer, init, activation="linear")
                    edits[id(layer)] = LayerEdit(
                        edit.config, None, (activation_layer_factory(name, target, alpha),)
                    )
                else:
                    edits[id(layer)] = kernel_edit(layer, init, activation=target)
            elif is_activation_layer(layer) and wanted(layer, head):
                swapped += 1
                replacement = (
                    keras.layers.LeakyReLU(negative_slope=alpha, name=layer.name)
                    if target == "leaky_relu"
                    else keras.layers.Activation(target, name=layer.name)
                )
                edits[id(layer)] = LayerEdit(
                    replacement.get_config(), type(replacement), reinit=frozenset()
                )
                kernel = graph.feeding_kernel(layer)
                if kernel is not None and id(kernel) not in edits:
                    edits[id(kernel)] = kernel_edit(kernel, init)
    if target == "selu":
        edits.update(_alpha_dropout_edits(model))
    if not swapped:
        raise FixNotApplicable(
            f"{target}_activation: '{model.name}' has no hidden activation to replace (all hidden "
            f"activations are already {target} or linear; the output head is never changed)."
        )
    return rebuild(model, edits)


def relu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with ReLU and re-initializes their kernels with He.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden layer with a non-linear
            activation other than ReLU (Dense/Conv ``activation=`` and standalone activation
            layers; for the latter the kernel layer feeding them is re-initialized).
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = relu_activation(deep_sigmoid_mlp)  # doctest: +SKIP
    """
    return _swap_activation(model, "relu", "he", layers, 0.0, seed)


def leaky_relu_activation(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    alpha: float = 0.2,
    seed: int | None = None,
) -> keras.Model:
    """Replaces hidden activations with LeakyReLU(alpha) and He-initialized kernels.

    Dense/Conv layers get ``activation="linear"`` followed by a new ``LeakyReLU`` layer.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        alpha: slope for negative inputs (Géron uses 0.2).
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.
        ValueError: if alpha is not in (0, 1).

    Example:
        >>> fixed = leaky_relu_activation(model, alpha=0.1)  # doctest: +SKIP
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1). Received: alpha={alpha}")
    return _swap_activation(model, "leaky_relu", "he", layers, alpha, seed)


def elu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with ELU and He-initialized kernels.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = elu_activation(model)  # doctest: +SKIP
    """
    return _swap_activation(model, "elu", "he", layers, 0.0, seed)


def selu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with SELU, LeCun-normal kernels and Dropout by AlphaDropout.

    Self-normalization also needs standardized inputs and a plain stack of Dense layers
    (Klambauer et al. 2017); gradscope cannot check the inputs from the model alone.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = selu_activation(model)  # doctest: +SKIP
    """
    return _swap_activation(model, "selu", "lecun", layers, 0.0, seed)


def _alpha_dropout_edits(model: keras.Model) -> dict[int, LayerEdit]:
    edits: dict[int, LayerEdit] = {}
    for graph, _ in levels(model):
        for layer in graph.layers:
            if type(layer).__name__ == "Dropout":
                config = layer.get_config()
                keys = ("name", "rate", "seed", "noise_shape")
                keep = {k: config[k] for k in keys if k in config}
                new = keras.layers.AlphaDropout(**keep)
                edits[id(layer)] = LayerEdit(new.get_config(), type(new))
    return edits


def alpha_dropout(model: keras.Model) -> keras.Model:
    """Replaces every Dropout layer with AlphaDropout of the same rate (for SELU networks).

    Args:
        model: a built Sequential or Functional model (not modified).

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if the model has no Dropout layer.

    Example:
        >>> fixed = alpha_dropout(selu_model)  # doctest: +SKIP
    """
    edits = _alpha_dropout_edits(model)
    if not edits:
        raise FixNotApplicable(f"alpha_dropout: '{model.name}' has no Dropout layer to replace.")
    return rebuild(model, edits)
