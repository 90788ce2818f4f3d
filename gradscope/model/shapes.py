"""Shapes a stored Keras config records, and what per-example normalization layers reduce over.

Keras-free, like :mod:`gradscope.model.spec`, which fills :class:`~gradscope.model.spec.LayerSpec`
``input_shape`` and ``normalized_size`` from these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gradscope.model.taxonomy import PER_EXAMPLE_NORMALIZATION


def _shape(value: Any) -> tuple[int | None, ...] | None:
    # A stored shape with its batch axis -> the shape without it; None for anything else (a
    # list of shapes of a multi-input layer, strings, a bare batch axis).
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) < 2:
        return None
    if not all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value):
        return None
    return tuple(value[1:])


def stored_input_shape(layer: Mapping[str, Any]) -> tuple[int | None, ...] | None:
    """The input shape a stored layer config records, without the batch axis.

    Keras 3 stores a built layer's input shape in ``build_config``, and in a Functional config
    each call's arguments as serialized KerasTensors that carry their shape; Keras 2 configs
    record neither.

    Args:
        layer: one entry of a model config's ``layers`` (``{"class_name", "config", ...}``).

    Returns:
        The shape of its (first) input, or None when the config does not record one, or the
        layer takes several inputs.

    Example:
        >>> stored_input_shape({"build_config": {"input_shape": [None, 500, 1]}})
        (500, 1)
    """
    build = layer.get("build_config")
    if isinstance(build, Mapping) and (shape := _shape(build.get("input_shape"))) is not None:
        return shape
    nodes = layer.get("inbound_nodes")
    if isinstance(nodes, Sequence) and nodes and isinstance(nodes[0], Mapping):
        args = nodes[0].get("args") or ()  # a list in files, a tuple from a live model
        first = args[0] if isinstance(args, Sequence) and args else None
        if isinstance(first, Mapping) and first.get("class_name") == "__keras_tensor__":
            return _shape((first.get("config") or {}).get("shape"))
    return None


def _axes(value: Any, rank: int) -> list[int] | None:
    # A stored ``axis`` (int or list) as indices into a shape of ``rank`` axes with the batch axis
    # first; None if it is malformed or names the batch axis.
    axes = [value] if isinstance(value, int) else value
    if not isinstance(axes, Sequence) or not axes or isinstance(axes, str):
        return None
    out = []
    for axis in axes:
        if not isinstance(axis, int) or not -rank <= axis < rank or axis % rank == 0:
            return None
        out.append(axis % rank)
    return out


def normalized_size(
    class_name: str, config: Mapping[str, Any], input_shape: tuple[int | None, ...] | None
) -> int | None:
    """How many elements one statistic of a per-example normalization layer is taken over.

    Args:
        class_name: the layer's class, a key of
            :data:`~gradscope.model.taxonomy.PER_EXAMPLE_NORMALIZATION` (else None is returned).
        config: its stored config (``axis``; ``groups`` for GroupNormalization).
        input_shape: its input shape without the batch axis.

    Returns:
        The number of elements (1 means the layer cannot see its input), or None when a size
        involved is unknown.

    Example:
        >>> normalized_size("LayerNormalization", {"axis": -1}, (500, 1))
        1
        >>> normalized_size("GroupNormalization", {"groups": -1}, (64,))
        1
    """
    how = PER_EXAMPLE_NORMALIZATION.get(class_name)
    if how is None or input_shape is None:
        return None
    full = (None, *input_shape)
    axes = _axes(config.get("axis", -1), len(full))
    if axes is None:
        return None
    if how == "group":
        groups, channels = config.get("groups", 32), full[axes[0]]
        if channels is None or not isinstance(groups, int):
            return None
        groups = channels if groups == -1 else groups
        if groups <= 0 or channels % groups:
            return None
        # One group: its channels times every other non-batch axis (Wu & He 2018).
        axes = [i for i in range(1, len(full)) if i != axes[0]]
        sizes = [channels // groups] + [full[i] for i in axes]
    else:
        sizes = [full[i] for i in axes]
    if any(d is None for d in sizes):
        return None
    return math.prod(d for d in sizes if d is not None)
