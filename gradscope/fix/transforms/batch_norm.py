"""BatchNormalization inserted after each hidden Dense/Conv layer, on a copy of the model.

After the activation by default; before it (``use_bias=False`` on the layer, as in Géron, ch. 11)
on request. Layers already followed by a normalization layer and the output head are left alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import keras

from gradscope.fix.transforms.activation import activation_layer_factory
from gradscope.fix.transforms.select import (
    hidden_kernel_layers,
    named_layers,
    taken_names,
    unique_name,
)
from gradscope.model.graph import layer_activation
from gradscope.model.rebuild import FixNotApplicable, LayerEdit, rebuild
from gradscope.model.taxonomy import LINEAR


def batch_norm(
    model: keras.Model,
    position: str = "after",
    layers: Sequence[str] | None = None,
    momentum: float = 0.99,
) -> keras.Model:
    """Inserts BatchNormalization after each hidden Dense/Conv layer.

    ``position="after"``: Dense(act) -> BN; the Dense layer keeps all its weights.
    ``position="before"``: Dense(use_bias=False, no activation) -> BN -> Activation(act), as in
    Géron ch. 11 (BN's beta makes the bias redundant); the kernel is kept, the bias dropped.
    Layers already followed by a normalization layer are skipped; output layers never get one.

    Args:
        model: a built Sequential or Functional model (not modified).
        position: ``"after"`` or ``"before"`` the activation.
        layers: names of the kernel layers to follow with BN; default: all hidden ones.
        momentum: BatchNormalization momentum.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if every hidden layer is already normalized.
        UnsupportedModelError: for subclassed models (add the layers by hand).
        ValueError: for an unknown position.

    Example:
        >>> fixed = batch_norm(model, position="before")  # doctest: +SKIP
    """
    if position not in ("after", "before"):
        raise ValueError(f"position must be 'after' or 'before'. Received: position={position!r}")
    names = named_layers(model, layers)
    taken = taken_names(model)
    edits: dict[int, LayerEdit] = {}
    for graph, layer in hidden_kernel_layers(model, names):
        if graph.normalized_after(layer):
            continue
        config = copy.deepcopy(layer.get_config())
        axis = 1 if config.get("data_format") == "channels_first" else -1
        bn_name = unique_name(f"{layer.name}_bn", taken)

        def bn(name: str = bn_name, axis: int = axis) -> keras.layers.Layer:
            return keras.layers.BatchNormalization(axis=axis, momentum=momentum, name=name)

        act = layer_activation(layer) or "linear"
        if position == "after":
            edits[id(layer)] = LayerEdit(after=(bn,))
            continue
        config["use_bias"] = False
        after: tuple[Callable[[], keras.layers.Layer], ...] = (bn,)
        if act not in LINEAR:
            config["activation"] = "linear"
            act_name = unique_name(f"{layer.name}_{act}", taken)
            after = (bn, activation_layer_factory(act_name, act, 0.2))
        edits[id(layer)] = LayerEdit(config=config, after=after)
    if not edits:
        raise FixNotApplicable(
            f"batch_norm: every hidden Dense/Conv layer of '{model.name}' is already followed by "
            "a normalization layer (or there is no hidden layer)."
        )
    return rebuild(model, edits)
