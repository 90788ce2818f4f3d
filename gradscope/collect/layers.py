"""Which layers and variables to watch, and what kind of activation each layer has."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
        groups: names of the optimizers the variables are grouped by (empty: one optimizer,
            ``model.optimizer``, applied to every trainable variable).
        grad_groups: for each grad layer, the index in ``groups`` of the optimizer that updates
            it (empty when ``groups`` is).
    """

    infos: tuple[LayerInfo, ...]
    grad_layers: tuple[str, ...]
    grad_variables: tuple[tuple[keras.Variable, ...], ...]
    act_layers: tuple[tuple[str, keras.layers.Layer, str], ...]
    groups: tuple[str, ...] = ()
    grad_groups: tuple[int, ...] = ()


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


def _group_owners(groups: Sequence[tuple[str, Sequence[Any]]]) -> dict[int, int]:
    # id of a variable (and of its TensorFlow value) -> index of the first group updating it.
    owner: dict[int, int] = {}
    for g, (_, variables) in enumerate(groups):
        for v in variables:
            owner.setdefault(id(v), g)
            value = getattr(v, "value", None)
            if value is not None and not callable(value):
                owner.setdefault(id(value), g)
    return owner


def _entries(
    units: list[tuple[str, keras.layers.Layer]], groups: Sequence[tuple[str, Sequence[Any]]] | None
) -> list[tuple[str, keras.layers.Layer, tuple[keras.Variable, ...], int | None, bool]]:
    """``(name, layer, variables, group, trainable)``: one entry per layer and optimizer."""
    if groups is None:
        return [
            (path, layer, tuple(layer.trainable_variables), None, _trainable(layer))
            for path, layer in units
        ]
    owner = _group_owners(groups)
    prefix = len(groups) > 1
    split: list[dict[int, list[keras.Variable]]] = []
    # A layer without variables (LeakyReLU, Flatten) is named after the optimizer of the
    # sub-model around it, so a GAN's discriminator rows all start with "d_optimizer/".
    container_group: dict[str, int] = {}
    for path, layer in units:
        by_group: dict[int, list[keras.Variable]] = {}
        for v in layer.trainable_variables:
            g = owner.get(id(v), owner.get(id(v.value)))
            if g is not None:
                by_group.setdefault(g, []).append(v)
        split.append(by_group)
        if by_group:
            container_group.setdefault(path.rpartition("/")[0], min(by_group))
    out = []
    for (path, layer), by_group in zip(units, split, strict=True):

        def named(g: int | None, path: str = path) -> str:
            return f"{groups[g][0]}/{path}" if prefix and g is not None else path

        if by_group:
            out.extend((named(g), layer, tuple(vs), g, True) for g, vs in by_group.items())
        else:
            # Variables no optimizer of the train step updates (a distiller's teacher) do not
            # change during this fit: listed like frozen ones, never diagnosed.
            g = container_group.get(path.rpartition("/")[0])
            out.append((named(g), layer, (), None, not layer.trainable_variables))
    return out


def _trainable(layer: keras.layers.Layer) -> bool:
    return bool(layer.trainable) and (bool(layer.trainable_variables) or not layer.weights)


def plan_watch(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    groups: Sequence[tuple[str, Sequence[Any]]] | None = None,
) -> WatchPlan:
    """Decides which layers to watch.

    Every layer with trainable weights is watched for gradients and weights, and every layer with
    an activation for activations, unless ``layers`` names a subset. Frozen layers
    (``trainable=False``) are listed but not watched.

    With ``groups`` (a custom train step's optimizers and the variables each one applies), only
    those variables are watched, each with its optimizer; with several optimizers, every name
    starts with the optimizer's: ``"d_optimizer/discriminator/dense"``.

    Args:
        model: a Keras model: built, or with ``groups`` (a custom train step's outer model may
            never be built, only its sub-models).
        layers: optional names to restrict to; a name matches a layer's path (``"enc/dense"``),
            its plain name (``"dense"``) or its optimizer-prefixed name.
        groups: optional ``(optimizer name, variables it updates)`` pairs, in the order their
            names should be listed; None: ``model.optimizer`` updates every trainable variable.

    Returns:
        The :class:`WatchPlan`.

    Raises:
        ValueError: if the model is not built (and no groups are given) or a requested name
            matches no layer.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu")])
        >>> plan_watch(model).grad_layers
        ('dense',)
        >>> plan_watch(model, groups=[("opt", model.trainable_variables)]).grad_layers
        ('dense',)
    """
    if not model.built and groups is None:
        raise ValueError(
            "The model must be built before gradscope can watch it: call it on data or give it an "
            f"Input. Received: model={model.name!r} (not built)"
        )
    units = list(iter_units(model))
    entries = _entries(units, groups)
    wanted = None if layers is None else set(layers)
    if wanted is not None:
        known = {p for p, _ in units} | {layer.name for _, layer in units} | {e[0] for e in entries}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(
                f"`layers` names layers the model does not have: {unknown}. "
                f"Known layers: {[e[0] for e in entries]}. Received: layers={list(layers or [])}"
            )
    paths = {id(layer): path for path, layer in units}
    infos: list[LayerInfo] = []
    grad_layers: list[str] = []
    grad_vars: list[tuple[keras.Variable, ...]] = []
    grad_groups: list[int] = []
    act_layers: list[tuple[str, keras.layers.Layer, str]] = []
    act_seen: set[int] = set()
    for name, layer, tvars, group, trainable in entries:
        selected = wanted is None or {name, paths[id(layer)], layer.name} & wanted
        act = activation_name(layer)
        kind = activation_kind(act)
        watched = bool(selected) and bool(tvars)
        infos.append(
            LayerInfo(
                name=name,
                class_name=type(layer).__name__,
                activation=act,
                activation_kind=kind,
                kernel_initializer=_initializer_name(layer),
                units=_units(layer),
                params=int(sum(math.prod(v.shape) for v in layer.weights)),
                trainable=trainable,
                watched=watched,
                variables=tuple(v.path.rsplit("/", 1)[-1] for v in tvars),
            )
        )
        if watched:
            grad_layers.append(name)
            grad_vars.append(tvars)
            grad_groups.append(0 if group is None else group)
        # A layer updated by two optimizers has one output: its activations go with the first.
        if selected and kind is not None and id(layer) not in act_seen:
            act_seen.add(id(layer))
            act_layers.append((name, layer, kind))
    return WatchPlan(
        tuple(infos),
        tuple(grad_layers),
        tuple(grad_vars),
        tuple(act_layers),
        groups=tuple(name for name, _ in groups or ()),
        grad_groups=tuple(grad_groups) if groups is not None else (),
    )
