"""Read a Keras model's layer graph: who feeds whom, what is the output head, which activation.

Transforms decide *where* to edit from this view (hidden layers only, the activation a kernel
layer really applies, the kernel layer feeding a standalone activation layer); :mod:`rebuild`
then does the editing. Works on Sequential and Functional models, nested ones included.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras

from gradscope.model.spec import parse_activation
from gradscope.model.taxonomy import (
    ACTIVATION_LAYER_CLASSES,
    ACTIVATION_LAYERS,
    LINEAR,
    NORMALIZATION_LAYERS,
    PASS_THROUGH_LAYERS,
)


def is_model(layer: Any) -> bool:
    """True for a nested Keras model used as a layer."""
    return isinstance(layer, keras.Model)


def is_rebuildable_model(layer: Any) -> bool:
    """True for a Sequential or Functional model: a layer graph gradscope can edit inside.

    A subclassed model wires its layers in Python code; nested in another model it is a single,
    opaque node (copied whole, never edited inside).
    """
    return isinstance(layer, keras.Sequential) or (is_model(layer) and is_functional(layer))


def is_kernel_layer(layer: keras.layers.Layer) -> bool:
    """True for Dense/Conv-like layers: one kernel with an initializer, not recurrent.

    Decided from the config so any layer class with the usual keys qualifies.
    """
    if is_model(layer):
        return False
    config = _config(layer)
    return "kernel_initializer" in config and "recurrent_initializer" not in config


def _config(layer: Any) -> dict[str, Any]:
    # A layer whose get_config() fails is no kernel layer and has no activation here; the
    # rebuild refuses it with a message naming it (reading the graph must not crash first).
    try:
        return dict(layer.get_config())
    except Exception:
        return {}


def layer_activation(layer: keras.layers.Layer) -> str | None:
    """The activation a layer applies itself, or None if it has no activation notion.

    Args:
        layer: any Keras layer.

    Returns:
        e.g. ``"sigmoid"`` for ``Dense(activation="sigmoid")`` or ``Activation("sigmoid")``,
        ``"relu"`` for a ``ReLU`` layer, ``"linear"`` for Dense without activation, else None.
    """
    name = type(layer).__name__
    if name in ACTIVATION_LAYERS:
        return ACTIVATION_LAYERS[name]
    config = _config(layer)
    if "activation" in config:
        return parse_activation(config["activation"])
    return None


def is_activation_layer(layer: keras.layers.Layer) -> bool:
    """True for standalone activation layers (Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax)."""
    return type(layer).__name__ in ACTIVATION_LAYER_CLASSES


@dataclass
class ModelGraph:
    """Producer/consumer links between the layers of one model level (nested models are nodes).

    Attributes:
        model: the model.
        layers: its layers in forward order (input layers excluded).
        parents: id(layer) -> layers feeding it.
        children: id(layer) -> layers it feeds.
        head: ids of layers on the output side: walking back from the model outputs through
            non-kernel layers, every layer met up to and including the first kernel layers.
            Fixes leave the head alone (the output activation is the task's, not a defect).
    """

    model: keras.Model
    layers: list[keras.layers.Layer]
    parents: dict[int, list[keras.layers.Layer]] = field(default_factory=dict)
    children: dict[int, list[keras.layers.Layer]] = field(default_factory=dict)
    head: set[int] = field(default_factory=set)

    def single_child(self, layer: keras.layers.Layer) -> keras.layers.Layer | None:
        """The only consumer of a layer, or None with zero or several consumers."""
        kids = self.children.get(id(layer), [])
        return kids[0] if len(kids) == 1 else None

    def single_parent(self, layer: keras.layers.Layer) -> keras.layers.Layer | None:
        """The only producer feeding a layer, or None with zero or several producers."""
        ups = self.parents.get(id(layer), [])
        return ups[0] if len(ups) == 1 else None

    def effective_activation(self, layer: keras.layers.Layer) -> str | None:
        """The activation applied to a kernel layer's output.

        Its own activation if non-linear, else the first standalone activation layer reached
        through pass-through layers (BatchNormalization, Dropout, ...), as in Géron's
        "Dense -> BatchNormalization -> Activation" pattern.

        Args:
            layer: a kernel layer of this model.

        Returns:
            The activation name, ``"linear"`` if none is applied.
        """
        own = layer_activation(layer) or "linear"
        if own not in LINEAR:
            return own
        node = self.single_child(layer)
        while node is not None and type(node).__name__ in PASS_THROUGH_LAYERS:
            node = self.single_child(node)
        if node is not None and is_activation_layer(node):
            return layer_activation(node) or "linear"
        return own

    def feeding_kernel(self, layer: keras.layers.Layer) -> keras.layers.Layer | None:
        """The kernel layer whose output a standalone activation layer transforms, if any."""
        node = self.single_parent(layer)
        while node is not None and type(node).__name__ in PASS_THROUGH_LAYERS:
            node = self.single_parent(node)
        return node if node is not None and is_kernel_layer(node) else None

    def normalized_after(self, layer: keras.layers.Layer) -> bool:
        """True if a normalization layer follows a kernel layer before anything else merges in."""
        node = self.single_child(layer)
        while node is not None and (
            type(node).__name__ in PASS_THROUGH_LAYERS or is_activation_layer(node)
        ):
            if type(node).__name__ in NORMALIZATION_LAYERS:
                return True
            node = self.single_child(node)
        return False


def model_graph(model: keras.Model) -> ModelGraph:
    """Builds the :class:`ModelGraph` of a Sequential or Functional model.

    Args:
        model: a built Sequential or Functional model.

    Returns:
        Its graph at this nesting level.

    Raises:
        TypeError: for subclassed models (their call graph is Python code, not data).

    Example:
        >>> g = model_graph(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
        >>> [x.name for x in g.layers] == [model.layers[0].name]  # doctest: +SKIP
    """
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        graph = ModelGraph(model, layers)
        for before, after in itertools.pairwise(layers):
            graph.children[id(before)] = [after]
            graph.parents[id(after)] = [before]
        outputs = layers[-1:]
    elif is_functional(model):
        ops = [op for op in model.operations if not isinstance(op, keras.layers.InputLayer)]
        graph = ModelGraph(model, ops)
        # Only this model's nodes: a shared layer also has nodes in other graphs.
        own_nodes = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
        for op in ops:
            for node in op._inbound_nodes:
                if id(node) not in own_nodes:
                    continue
                for parent in node.parent_nodes:
                    up = parent.operation
                    if isinstance(up, keras.layers.InputLayer):
                        continue
                    graph.parents.setdefault(id(op), []).append(up)
                    graph.children.setdefault(id(up), []).append(op)
        outputs = [t._keras_history.operation for t in keras.tree.flatten(model.outputs)]
    else:
        raise TypeError(f"Not a Sequential or Functional model. Received: {type(model).__name__}")
    graph.head = _head(graph, outputs)
    return graph


def is_functional(model: keras.Model) -> bool:
    """True for Functional models (Sequential models built with an Input are not)."""
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def _head(graph: ModelGraph, outputs: list[keras.layers.Layer]) -> set[int]:
    # Walk back from the outputs; stop at (and include) kernel layers and nested models.
    seen: set[int] = set()
    stack = [x for x in outputs if not isinstance(x, keras.layers.InputLayer)]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if is_kernel_layer(layer) or is_model(layer):
            continue
        stack.extend(graph.parents.get(id(layer), []))
    return seen


def iter_levels(
    model: keras.Model, at_output: bool = True
) -> Iterator[tuple[ModelGraph, frozenset[int]]]:
    """Yields the graph of a model and of every nested Sequential/Functional model, with heads.

    A nested model's own head counts as head only if the nested model sits in its parent's head
    (a nested classifier at the end is output; a nested feature extractor is hidden).

    Args:
        model: a Sequential or Functional model.
        at_output: whether this model's outputs are the final outputs.

    Yields:
        ``(graph, head_ids)`` per nesting level, outermost first.
    """
    graph = model_graph(model)
    head = frozenset(graph.head) if at_output else frozenset()
    yield graph, head
    for layer in graph.layers:
        if is_rebuildable_model(layer):
            yield from iter_levels(layer, at_output=id(layer) in head)
