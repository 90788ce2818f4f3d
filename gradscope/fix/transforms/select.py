"""Which layers a transform edits: validated user names, hidden kernel layers, fresh names.

Shared by the init, activation and batch-norm transforms; the output head (the last kernel
layers and their activation) is never chosen by default, since its activation belongs to the task.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from gradscope.model.graph import ModelGraph, is_kernel_layer, iter_levels
from gradscope.model.rebuild import require_built


def levels(model: keras.Model) -> list[tuple[ModelGraph, frozenset[int]]]:
    """The graph of a model and of every nested model, with the ids of their head layers.

    Args:
        model: a built Sequential or Functional model.

    Returns:
        ``(graph, head_ids)`` per nesting level, outermost first.

    Raises:
        UnsupportedModelError: if the model is not built or is subclassed.

    Example:
        >>> [g.model.name for g, _ in levels(model)]  # doctest: +SKIP
        ['sequential']
    """
    require_built(model)
    return list(iter_levels(model))


def named_layers(model: keras.Model, names: Sequence[str] | None) -> set[str] | None:
    """Validates user-given layer names against the model (nested layers by their own name).

    Args:
        model: the model the names refer to.
        names: layer names, or None for "the transform's default choice".

    Returns:
        The names as a set, or None when ``names`` is None.

    Raises:
        ValueError: naming the unknown layers and the known ones.

    Example:
        >>> named_layers(model, ["dense_1"])  # doctest: +SKIP
        {'dense_1'}
    """
    if names is None:
        return None
    known = taken_names(model)
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"No layers named {unknown} in '{model.name}'. Received: layers={list(names)}; "
            f"known layers: {sorted(known)}"
        )
    return set(names)


def taken_names(model: keras.Model) -> set[str]:
    """The names of every layer of a model, nested models' layers included.

    Args:
        model: a built Sequential or Functional model.

    Returns:
        The set of names (new layers must avoid them).

    Example:
        >>> "dense" in taken_names(model)  # doctest: +SKIP
        True
    """
    return {layer.name for graph, _ in levels(model) for layer in graph.layers}


def hidden_kernel_layers(
    model: keras.Model, names: set[str] | None
) -> list[tuple[ModelGraph, keras.layers.Layer]]:
    """Kernel (Dense/Conv-like) layers to edit, with the graph each belongs to.

    Args:
        model: a built Sequential or Functional model.
        names: the user's choice (validated by :func:`named_layers`), or None for every kernel
            layer outside the output head.

    Returns:
        ``(graph, layer)`` pairs in forward order.

    Example:
        >>> [layer.name for _, layer in hidden_kernel_layers(model, None)]  # doctest: +SKIP
        ['dense', 'dense_1']
    """
    out = []
    for graph, head in levels(model):
        for layer in graph.layers:
            if not is_kernel_layer(layer):
                continue
            if names is not None:
                if layer.name in names:
                    out.append((graph, layer))
            elif id(layer) not in head:
                out.append((graph, layer))
    return out


def unique_name(base: str, taken: set[str]) -> str:
    """A layer name not in ``taken`` (``base``, else ``base_1``, ``base_2``, ...), then taken.

    Args:
        base: the preferred name.
        taken: names in use; the returned name is added to it.

    Returns:
        The new name.

    Example:
        >>> unique_name("dense_bn", {"dense_bn"})
        'dense_bn_1'
    """
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name
