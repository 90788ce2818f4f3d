"""Rebuild a model as a new one with some layers edited, replaced or followed by new layers.

The input model is only read: every layer of the result is a new object made with
``from_config`` (Keras's own cloning path, ``keras.models.clone_model``), and weights are copied
over afterwards, so the original's variables are never touched. Functional graphs are re-run
with the cloned layers (``clone_model(..., call_function=...)``), Sequential models re-listed;
nested Sequential/Functional models are rebuilt recursively.

Everything Keras can serialize is copied the same way: operations of a Functional graph (``x + y``
becomes a ``keras.src.ops.numpy.Add``, which is not a Layer and holds no weights), layers with
sub-layers (MultiHeadAttention, whose weights are matched by path, :mod:`gradscope.model.weights`)
and nested subclassed models (copied whole: their inner wiring is Python code, so edits cannot
reach inside them). What cannot be rebuilt is refused with one line naming the layer and what to
do (:class:`UnsupportedModelError`), never half-copied.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras

from gradscope.errors import GradscopeInputError, first_line
from gradscope.model.deserialize import unsafe_deserialization
from gradscope.model.graph import is_functional, is_model, is_rebuildable_model
from gradscope.model.weights import WeightMismatchError, copy_weights

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
        # Name the layer at fault when one is (the usual cause: a custom layer without a
        # working get_config()); Keras's own message is often several lines about something else.
        culprit = unserializable_layer(model)
        if culprit is None:
            raise UnsupportedModelError(
                f"Cannot copy {what} ({type(err).__name__}: {first_line(err)}); {hint}"
            ) from err
        raise UnsupportedModelError(f"Cannot copy {what}: {culprit}") from err
    # A subclass whose get_config() leaves out `name` comes back as "net_1": the copy (and so
    # the fixed model and its runs) keeps the name the user gave.
    clone.name = model.name
    return clone


def unserializable_layer(model: keras.Model) -> str | None:
    """Says which layer or operation of a model cannot be serialized, and what to do, if any.

    Args:
        model: a Keras model (nested models are searched too).

    Returns:
        One sentence naming the first part whose ``get_config()`` fails, Keras's reason and the
        remedy; None if every part serializes.

    Example:
        >>> unserializable_layer(model)  # doctest: +SKIP
        "layer 'scale' (Scale) cannot be rebuilt: its get_config() fails (...). Give Scale ..."
    """
    for part in getattr(model, "operations", None) or getattr(model, "layers", []):
        if is_model(part):
            inner = unserializable_layer(part)
            if inner is not None:
                return inner
        try:
            part.get_config()
        except Exception as err:
            return _cannot(part, "its get_config() fails", err)
    return None


def _reason(err: Exception, limit: int = 200) -> str:
    # Keras's first paragraph, on one line: its messages wrap mid-sentence ("Object Scale was
    # created by passing\nnon-serializable argument values ...") and then print a code example.
    paragraph = str(err).strip().split("\n\n", 1)[0]
    text = " ".join(paragraph.split()) or first_line(err)
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}"


def _cannot(layer: Any, what: str, err: Exception) -> str:
    cls = type(layer).__name__
    return (
        f"layer '{layer.name}' ({cls}) cannot be rebuilt: {what} ({_reason(err)}). Give {cls} "
        "a get_config() that returns every __init__ argument (and a from_config() for arguments "
        "that are not plain values), or make the change by hand."
    )


def _refuse(layer: Any, what: str, err: Exception) -> UnsupportedModelError:
    text = _cannot(layer, what, err)
    return UnsupportedModelError(text[0].upper() + text[1:])


def _copy_part(layer: Any, edit: LayerEdit | None) -> Any:
    # One layer, operation or subclassed sub-model, made anew from its config (its weights are
    # copied once the new graph has built it).
    try:
        config = layer.get_config() if edit is None or edit.config is None else edit.config
    except Exception as err:
        raise _refuse(layer, "its get_config() fails", err) from err
    cls = type(layer) if edit is None or edit.layer_class is None else edit.layer_class
    try:
        return cls.from_config(copy.deepcopy(dict(config)))
    except Exception as err:
        what = "from_config() does not accept what get_config() returns"
        raise _refuse(layer, what, err) from err


def _rebuild_level(model: keras.Model, edits: Mapping[int, LayerEdit]) -> keras.Model:
    pairs: list[tuple[Any, Any, LayerEdit | None]] = []
    inserted: dict[int, tuple[LayerFactory, ...]] = {}

    def clone(layer: Any) -> Any:
        if is_rebuildable_model(layer):
            require_built(layer)
            return _rebuild_level(layer, edits)  # copies its own weights
        edit = edits.get(id(layer))
        new = _copy_part(layer, edit)
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
        try:
            new_model = keras.Sequential([inputs, *new_layers], name=model.name)
        except Exception as err:
            raise UnsupportedModelError(
                f"Cannot rebuild '{model.name}': its layers, made anew from their configs, do not "
                f"fit together ({type(err).__name__}: {first_line(err, 120)}); make the change "
                "by hand."
            ) from err
        new_model.trainable = model.trainable
    else:

        def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                out = layer(*args, **kwargs)
            except Exception as err:
                raise _refuse(layer, "its copy fails on the original's inputs", err) from err
            for factory in inserted.get(id(layer), ()):
                out = factory()(out)
            return out

        # clone_model caches clones per layer, so a shared layer stays shared in the copy.
        new_model = keras.models.clone_model(model, clone_function=clone, call_function=call)
        new_model.trainable = model.trainable
    for old, new, edit in pairs:
        try:
            copy_weights(old, new, None if edit is None else edit.reinit)
        except WeightMismatchError as err:
            raise UnsupportedModelError(str(err)) from err
    return new_model
