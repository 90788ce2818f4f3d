"""Initialization transforms: He, LeCun, Glorot and zero biases on a copy of the model.

What each is for follows Géron, *Hands-On Machine Learning*, ch. 11 (table 11-1): He for the
ReLU family, LeCun for SELU, Glorot for none/tanh/sigmoid/softmax. Every initializer set here is
a serialized ``VarianceScaling``, which the model taxonomy names the way users write it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from gradscope.fix.transforms.select import hidden_kernel_layers, levels, named_layers
from gradscope.model.graph import is_kernel_layer
from gradscope.model.rebuild import FixNotApplicable, LayerEdit, rebuild
from gradscope.model.taxonomy import (
    INIT_RULES,
    LINEAR,
    RELU_FAMILY,
    VARIANCE_SCALING_DISTRIBUTIONS,
    VARIANCE_SCALING_FAMILIES,
    parse_initializer,
)


def _init_scale_mode(config: Any) -> tuple[float, str] | None:
    # The (scale, mode) of a serialized initializer, or None if it is not variance scaling; the
    # model taxonomy is the one table of initializer names (he_normal, HeNormal, configs).
    spec = parse_initializer(config)
    if spec is None or spec.family not in VARIANCE_SCALING_FAMILIES or spec.scale is None:
        return None
    return spec.scale, str(spec.mode)


def initializer(
    family: str, mode: str | None, distribution: str, seed: int | None
) -> dict[str, Any]:
    """The serialized initializer of an init family.

    Args:
        family: ``"he"``, ``"lecun"`` or ``"glorot"``.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``; None for the family's own.
        distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
        seed: initializer seed.

    Returns:
        A serialized ``VarianceScaling`` initializer.

    Raises:
        ValueError: for an unknown distribution.

    Example:
        >>> initializer("he", None, "truncated_normal", 0)["config"]["scale"]
        2.0
    """
    rule = INIT_RULES[family]
    if distribution not in VARIANCE_SCALING_DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {VARIANCE_SCALING_DISTRIBUTIONS}. "
            f"Received: distribution={distribution!r}"
        )
    init = keras.initializers.VarianceScaling(
        scale=rule.scale, mode=mode or rule.mode, distribution=distribution, seed=seed
    )
    return keras.initializers.serialize(init)


def kernel_edit(layer: keras.layers.Layer, init: Mapping[str, Any], **changes: Any) -> LayerEdit:
    """An edit that gives a kernel layer a new initializer (and config changes), kernel re-drawn.

    Args:
        layer: a kernel layer.
        init: the serialized initializer (see :func:`initializer`).
        **changes: other config keys to set, e.g. ``activation="relu"``.

    Returns:
        The :class:`~gradscope.model.rebuild.LayerEdit`; other weights are copied.

    Example:
        >>> he = initializer("he", None, "uniform", seed=0)
        >>> edit = kernel_edit(dense, he, activation="relu")  # doctest: +SKIP
    """
    config = copy.deepcopy(layer.get_config())
    config.update(changes)
    config["kernel_initializer"] = copy.deepcopy(dict(init))
    return LayerEdit(config=config, reinit=frozenset({"kernel"}))


def _reinit(
    model: keras.Model,
    family: str,
    layers: Sequence[str] | None,
    mode: str | None,
    distribution: str,
    seed: int | None,
) -> keras.Model:
    rule = INIT_RULES[family]
    names = named_layers(model, layers)
    target = (rule.scale, mode or rule.mode)
    init = initializer(family, mode, distribution, seed)
    edits: dict[int, LayerEdit] = {}
    for graph, head in levels(model):
        for layer in graph.layers:
            if not is_kernel_layer(layer):
                continue
            if names is not None:
                chosen = layer.name in names
            else:
                # Default: layers whose activation this init is made for and that use another.
                act = graph.effective_activation(layer) or "linear"
                act = "linear" if act in LINEAR else act
                current = _init_scale_mode(layer.get_config().get("kernel_initializer"))
                chosen = act in rule.activations and current != target
                chosen = chosen and (family == "glorot" or id(layer) not in head)
            if chosen:
                edits[id(layer)] = kernel_edit(layer, init)
    if not edits:
        acts = "/".join(sorted(rule.activations))
        raise FixNotApplicable(
            f"{family}_init: no layer of '{model.name}' needs it (it is for {acts} layers not "
            f"already using {family} initialization). Pass layers=[...] to force it."
        )
    return rebuild(model, edits)


def he_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "truncated_normal",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes ReLU-family layers with He initialization (VarianceScaling scale 2).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to re-initialize; default: kernel layers whose activation is
            in the ReLU family and whose init is not already He.
        mode: ``"fan_in"`` (default, He et al.) or ``"fan_avg"`` (Géron's ``he_avg_init``).
        distribution: ``"truncated_normal"`` (as he_normal), ``"normal"`` or ``"uniform"``.
        seed: initializer seed.

    Returns:
        A new model; re-initialized kernels are fresh, every other weight is copied.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = he_init(model, mode="fan_avg", distribution="uniform")  # doctest: +SKIP
    """
    return _reinit(model, "he", layers, mode, distribution, seed)


def lecun_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "truncated_normal",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes SELU layers with LeCun initialization (VarianceScaling scale 1, fan_in).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers; default: SELU layers not already LeCun-initialized.
        mode: ``"fan_in"`` (default) or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (as lecun_normal), ``"normal"`` or ``"uniform"``.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = lecun_init(selu_model)  # doctest: +SKIP
    """
    return _reinit(model, "lecun", layers, mode, distribution, seed)


def glorot_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "uniform",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes linear/tanh/sigmoid/softmax layers with Glorot (scale 1, fan_avg).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers; default: such layers (output layer included) whose init is
            not already Glorot.
        mode: ``"fan_avg"`` (default, Glorot & Bengio) or ``"fan_in"``.
        distribution: ``"uniform"`` (as glorot_uniform), ``"normal"`` or ``"truncated_normal"``.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = glorot_init(model, layers=["dense_1"])  # doctest: +SKIP
    """
    return _reinit(model, "glorot", layers, mode, distribution, seed)


def _negative_bias(layer: keras.layers.Layer) -> bool:
    bias = getattr(layer, "bias", None)
    if bias is None:
        return False
    return float(np.mean(keras.ops.convert_to_numpy(bias))) < 0.0


def zero_bias_init(model: keras.Model, layers: Sequence[str] | None = None) -> keras.Model:
    """Sets the biases of ReLU-family hidden layers that are negative on average to zero.

    A strongly negative bias switches a ReLU unit off for every input before training starts,
    and a unit that is off gets no gradient to recover (Géron ch. 11, dying ReLUs); zeros is
    Keras's default bias initializer. The bias initializer becomes ``"zeros"`` too, so the saved
    model re-initializes the same way.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the kernel layers; default: hidden kernel layers with a ReLU-family
            activation whose bias has a negative mean.

    Returns:
        A new model; the chosen biases are zero, every other weight is copied.

    Raises:
        FixNotApplicable: if no layer has such a bias.

    Example:
        >>> fixed = zero_bias_init(model)  # doctest: +SKIP
    """
    names = named_layers(model, layers)
    edits: dict[int, LayerEdit] = {}
    for graph, layer in hidden_kernel_layers(model, names):
        if not layer.get_config().get("use_bias", True) or getattr(layer, "bias", None) is None:
            continue
        act = graph.effective_activation(layer) or "linear"
        if names is None and not (act in RELU_FAMILY and _negative_bias(layer)):
            continue
        config = copy.deepcopy(layer.get_config())
        config["bias_initializer"] = keras.initializers.serialize(keras.initializers.Zeros())
        edits[id(layer)] = LayerEdit(config=config, reinit=frozenset({"bias"}))
    if not edits:
        raise FixNotApplicable(
            f"zero_bias_init: no ReLU-family hidden layer of '{model.name}' has a negative mean "
            "bias. Pass layers=[...] to force it."
        )
    return rebuild(model, edits)
