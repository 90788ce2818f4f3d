"""Which layers and variables to watch, and what kind of activation each layer has."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import keras

from gradscope.data.schema import LayerInfo

# The activation kinds are decided in the model taxonomy (one table for the collector, the static
# rules and the fixes); activation_kind is re-exported here, where collection code finds it.
from gradscope.model.taxonomy import ACTIVATION_LAYERS, activation_kind, initializer_alias

__all__ = ["WatchPlan", "activation_kind", "activation_name", "iter_units", "plan_watch"]


def activation_name(layer: keras.layers.Layer) -> str | None:
    """Returns the name of the activation a layer applies to its output, if any.

    Args:
        layer: a Keras layer.

    Returns:
        ``"relu"``, ``"sigmoid"``, ... for Dense/Conv/Activation/ReLU-like layers; None for layers
        without an activation (BatchNormalization, Dropout, Flatten, ...).

    Example:
        >>> activation_name(keras.layers.Dense(3, activation="tanh"))
        'tanh'
    """
    cls = type(layer).__name__
    if cls in ACTIVATION_LAYERS:
        if cls == "ReLU" and getattr(layer, "max_value", None) == 6:
            return "relu6"
        return ACTIVATION_LAYERS[cls]
    fn = getattr(layer, "activation", None)
    if fn is None or not callable(fn):
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)


def _is_container(layer: keras.layers.Layer) -> bool:
    # Models (Sequential, Functional, subclassed) are looked into; any other layer is one unit,
    # even if it owns sublayers (an LSTM and its cell, attention and its projections).
    return isinstance(layer, keras.Model)


def _children(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def iter_units(model: keras.Model, prefix: str = "") -> Iterable[tuple[str, keras.layers.Layer]]:
    """Yields ``(path, layer)`` for every non-container layer, nested models flattened.

    Args:
        model: a Keras model (Sequential, Functional or subclassed).
        prefix: path prefix used for nested models.

    Returns:
        An iterator of (unique path such as ``"encoder/dense"``, layer) in tracking order.

    Example:
        >>> [p for p, _ in iter_units(keras.Sequential([keras.layers.Dense(2, name="d")]))]
        ['d']
    """
    seen: set[int] = set()
    for child in _children(model):
        if id(child) in seen or type(child).__name__ == "InputLayer":
            continue
        seen.add(id(child))
        path = f"{prefix}{child.name}"
        if _is_container(child):
            yield from iter_units(child, prefix=f"{path}/")
        else:
            yield path, child


@dataclass(frozen=True)
class WatchPlan:
    """What to record for a model.

    Attributes:
        infos: every layer of the model (watched or not), in tracking order.
        grad_layers: paths of layers whose gradients and weights are recorded.
        grad_variables: for each grad layer, its trainable variables (same order).
        act_layers: (path, layer, kind) of layers whose activations are recorded.
    """

    infos: tuple[LayerInfo, ...]
    grad_layers: tuple[str, ...]
    grad_variables: tuple[tuple[keras.Variable, ...], ...]
    act_layers: tuple[tuple[str, keras.layers.Layer, str], ...]


def _initializer_name(layer: keras.layers.Layer) -> str | None:
    init = getattr(layer, "kernel_initializer", None) or getattr(
        layer, "depthwise_initializer", None
    )
    if init is None:
        return None
    # The name users write ("he_normal"), also for the VarianceScaling configs fixes set.
    config = init.get_config() if hasattr(init, "get_config") else {}
    return initializer_alias({"class_name": type(init).__name__, "config": config})


def _units(layer: keras.layers.Layer) -> int | None:
    for attr in ("units", "filters"):
        value = getattr(layer, attr, None)
        if isinstance(value, int):
            return value
    return None


def plan_watch(model: keras.Model, layers: Sequence[str] | None = None) -> WatchPlan:
    """Decides which layers to watch.

    Every layer with trainable weights is watched for gradients and weights, and every layer with
    an activation for activations, unless ``layers`` names a subset. Frozen layers
    (``trainable=False``) are listed but not watched.

    Args:
        model: a built Keras model.
        layers: optional names to restrict to; a name matches a layer's path (``"enc/dense"``)
            or its plain name (``"dense"``).

    Returns:
        The :class:`WatchPlan`.

    Raises:
        ValueError: if the model is not built or a requested name matches no layer.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu")])
        >>> plan_watch(model).grad_layers
        ('dense',)
    """
    if not model.built:
        raise ValueError(
            "The model must be built before gradscope can watch it: call it on data or give it an "
            f"Input. Received: model={model.name!r} (not built)"
        )
    units = list(iter_units(model))
    wanted = None if layers is None else set(layers)
    if wanted is not None:
        known = {p for p, _ in units} | {layer.name for _, layer in units}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(
                f"`layers` names layers the model does not have: {unknown}. "
                f"Known layers: {[p for p, _ in units]}. Received: layers={list(layers or [])}"
            )
    infos: list[LayerInfo] = []
    grad_layers: list[str] = []
    grad_vars: list[tuple[keras.Variable, ...]] = []
    act_layers: list[tuple[str, keras.layers.Layer, str]] = []
    for path, layer in units:
        selected = wanted is None or path in wanted or layer.name in wanted
        tvars = tuple(layer.trainable_variables)
        act = activation_name(layer)
        kind = activation_kind(act)
        watched = selected and bool(tvars)
        infos.append(
            LayerInfo(
                name=path,
                class_name=type(layer).__name__,
                activation=act,
                activation_kind=kind,
                kernel_initializer=_initializer_name(layer),
                units=_units(layer),
                params=int(sum(math.prod(v.shape) for v in layer.weights)),
                trainable=bool(layer.trainable) and (bool(tvars) or not layer.weights),
                watched=watched,
                variables=tuple(v.path.rsplit("/", 1)[-1] for v in tvars),
            )
        )
        if watched:
            grad_layers.append(path)
            grad_vars.append(tvars)
        if selected and kind is not None:
            act_layers.append((path, layer, kind))
    return WatchPlan(tuple(infos), tuple(grad_layers), tuple(grad_vars), tuple(act_layers))
