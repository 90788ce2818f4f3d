"""Rebuild a model as a new one with some layers edited, replaced or followed by new layers.

The input model is only read: every layer of the result is a new object made with
``from_config`` (Keras's own cloning path, ``keras.models.clone_model``), and weights are copied
over afterwards, so the original's variables are never touched. Functional graphs are re-run
with the cloned layers (``clone_model(..., call_function=...)``), Sequential models re-listed;
nested models are rebuilt recursively.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from gradscope.errors import GradscopeInputError
from gradscope.model.deserialize import unsafe_deserialization
from gradscope.model.graph import is_functional, is_model

LayerFactory = Callable[[], keras.layers.Layer]


class UnsupportedModelError(GradscopeInputError):
    """The model cannot be rewritten automatically; the message says what to do by hand."""


class FixNotApplicable(GradscopeInputError):
    """The fix has nothing to change in this model (e.g. clipping is already on)."""


@dataclass(frozen=True)
class LayerEdit:
    """How one layer changes in the rebuilt model.

    Attributes:
        config: the new layer's config (None: the original config, unchanged).
        layer_class: class to build instead of the original's (e.g. AlphaDropout for Dropout).
        after: factories of layers inserted right after this layer, in order.
        reinit: names of the layer's variables left freshly initialized (not copied), e.g.
            ``{"kernel"}`` after an initializer change.
    """

    config: Mapping[str, Any] | None = None
    layer_class: type[keras.layers.Layer] | None = None
    after: tuple[LayerFactory, ...] = ()
    reinit: frozenset[str] = frozenset()


def require_built(model: keras.Model) -> None:
    """Raises UnsupportedModelError unless the model is built Sequential/Functional.

    Args:
        model: the model to check.

    Raises:
        UnsupportedModelError: for subclassed or unbuilt models, naming what to do.
    """
    if not isinstance(model, keras.Model):
        raise UnsupportedModelError(
            f"Expected a keras.Model. Received: {type(model).__name__}. Pass the model object."
        )
    if not (isinstance(model, keras.Sequential) or is_functional(model)):
        raise UnsupportedModelError(
            f"'{model.name}' is a subclassed model ({type(model).__name__}); its layers are wired "
            "in Python code, so gradscope cannot rewrite it. Apply the change by hand in the "
            "class's __init__/call (e.g. add keras.layers.BatchNormalization() after each Dense), "
            "or rebuild it as a Functional model."
        )
    if not model.built or (isinstance(model, keras.Sequential) and not _has_input(model)):
        raise UnsupportedModelError(
            f"'{model.name}' is not built (no input shape), so its weights cannot be carried over. "
            "Start it with keras.Input(shape=...) or call it once on a batch, then retry."
        )


def _has_input(model: keras.Sequential) -> bool:
    return bool(model._layers) and isinstance(model._layers[0], keras.layers.InputLayer)


def rebuild(
    model: keras.Model,
    edits: Mapping[int, LayerEdit],
    compile_config: Mapping[str, Any] | None = None,
) -> keras.Model:
    """Returns a new model with ``edits`` applied and all other weights copied.

    Args:
        model: a built Sequential or Functional model (only read).
        edits: ``id(layer) -> LayerEdit`` for layers of ``model`` or of its nested models.
        compile_config: compile the result with this config (from ``get_compile_config()``);
            None compiles like the original if it was compiled, else leaves it uncompiled.

    Returns:
        The new model, same name, new variables.

    Raises:
        UnsupportedModelError: for subclassed or unbuilt models.

    Example:
        >>> copy = rebuild(model, {})  # doctest: +SKIP  (an exact copy with copied weights)
    """
    require_built(model)
    # A live model's Lambda functions are already in this process; rebuilding re-creates them
    # from its own config, so Keras's safe mode (meant for files) would only block the copy.
    with unsafe_deserialization(True):
        new_model = _rebuild_level(model, edits)
    config = compile_config
    if config is None and model.compiled:
        config = model.get_compile_config()
    if config is not None:
        new_model.compile_from_config(copy.deepcopy(dict(config)))
    return new_model


def clone_with_weights(model: keras.Model, what: str, hint: str) -> keras.Model:
    """Copies a model Keras's way, ``clone_model`` then the weights, for what rebuild() refuses.

    Subclassed models have no layer graph to rebuild; their own get_config()/from_config() is the
    only route. A live model's functions are already in this process, so the copy runs in the
    scoped unsafe block (see :func:`rebuild`).

    Args:
        model: a built model.
        what: how the error names the model, e.g. ``"'net' for a trial"``.
        hint: what the user can do instead, ending the error message.

    Returns:
        An uncompiled copy with the same weights and name.

    Raises:
        UnsupportedModelError: if Keras cannot clone the model.

    Example:
        >>> copy = clone_with_weights(net, f"'{net.name}'", "copy it by hand.")  # doctest: +SKIP
    """
    try:
        with unsafe_deserialization(True):
            clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
    except Exception as err:
        raise UnsupportedModelError(
            f"Cannot copy {what} ({type(err).__name__}: {err}); {hint}"
        ) from err
    # A subclass whose get_config() leaves out `name` comes back as "net_1": the copy (and so
    # the fixed model and its runs) keeps the name the user gave.
    clone.name = model.name
    return clone


def _rebuild_level(model: keras.Model, edits: Mapping[int, LayerEdit]) -> keras.Model:
    pairs: list[tuple[keras.layers.Layer, keras.layers.Layer, LayerEdit | None]] = []
    inserted: dict[int, tuple[LayerFactory, ...]] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if is_model(layer):
            require_built(layer)
            return _rebuild_level(layer, edits)  # copies its own weights
        edit = edits.get(id(layer))
        config = layer.get_config() if edit is None or edit.config is None else edit.config
        cls = type(layer) if edit is None or edit.layer_class is None else edit.layer_class
        new = cls.from_config(copy.deepcopy(dict(config)))
        pairs.append((layer, new, edit))
        if edit is not None and edit.after:
            inserted[id(new)] = edit.after
        return new

    if isinstance(model, keras.Sequential):
        new_layers: list[keras.layers.Layer] = []
        for layer in model.layers:
            new = clone(layer)
            new_layers.append(new)
            new_layers.extend(factory() for factory in inserted.get(id(new), ()))
        ref = model._layers[0]
        inputs = keras.Input(
            batch_shape=ref.batch_shape, dtype=ref._dtype, name=ref.name, optional=ref.optional
        )
        new_model = keras.Sequential([inputs, *new_layers], name=model.name)
        new_model.trainable = model.trainable
    else:

        def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
            out = layer(*args, **kwargs)
            for factory in inserted.get(id(layer), ()):
                out = factory()(out)
            return out

        # clone_model caches clones per layer, so a shared layer stays shared in the copy.
        new_model = keras.models.clone_model(model, clone_function=clone, call_function=call)
        new_model.trainable = model.trainable
    for old, new, edit in pairs:
        _copy_weights(old, new, edit)
    return new_model


def _copy_weights(old: keras.layers.Layer, new: keras.layers.Layer, edit: LayerEdit | None) -> None:
    if edit is None:
        new.set_weights(old.get_weights())
        return
    by_name: dict[str, list[Any]] = {}
    for var in old.weights:
        by_name.setdefault(var.name, []).append(var)
    for var in new.weights:
        if var.name in edit.reinit:
            continue
        match = [v for v in by_name.get(var.name, []) if tuple(v.shape) == tuple(var.shape)]
        if len(match) == 1:
            var.assign(np.asarray(match[0].numpy()))
