"""Find what in a stored model config would run code on load, before anything is deserialized.

``Lambda`` layers carry Python bytecode; classes Keras does not know need user code. The loader
refuses files holding either unless the user passes ``unsafe=True``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

# Serialization markers in Keras configs that are data, not classes to look up.
_MARKERS = frozenset(
    {
        "__keras_tensor__",
        "__tuple__",
        "__numpy__",
        "__tensor__",
        "__bytes__",
        "__typespec__",
        "__ellipsis__",
        "__slice__",
        "__dict__",
        "DTypePolicy",
        "FloatDTypePolicy",
        "QuantizedDTypePolicy",
        "Policy",
        "Functional",
        "Sequential",
        "Model",
    }
)

_Owner = tuple[str, str] | None


def _walk(node: Any, owner: _Owner = None) -> Iterator[tuple[Mapping[str, Any], _Owner]]:
    """Yields every mapping in a config with the (name, class) of the layer that holds it."""
    if isinstance(node, Mapping):
        yield node, owner
        cls, inner = node.get("class_name"), node.get("config")
        name = inner.get("name") if isinstance(inner, Mapping) else None
        if isinstance(cls, str) and isinstance(name, str):
            owner = (name, cls)
        for value in node.values():
            yield from _walk(value, owner)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, owner)


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    # Everything Keras itself can deserialize by name; computed once (importing the modules is
    # the slow part).
    import keras

    names: set[str] = set()
    for module in (
        keras.layers,
        keras.initializers,
        keras.regularizers,
        keras.constraints,
        keras.optimizers,
        keras.losses,
        keras.metrics,
        keras.activations,
        keras.optimizers.schedules,
    ):
        names.update(n for n in dir(module) if not n.startswith("_"))
    return frozenset(names)


def scan_config(config: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Finds what would execute code on load in a stored config.

    Args:
        config: a stored model config (any nesting).

    Returns:
        ``(lambda_layers, unknown_objects)``: names of Lambda layers (and serialized lambdas
        elsewhere), and class names Keras does not know.

    Example:
        >>> scan_config({"class_name": "Lambda", "config": {"name": "double"}})
        (('double',), ())
    """
    lambdas: list[str] = []
    unknown: list[str] = []
    known = _known_names()
    for node, owner in _walk(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        inner = node.get("config")
        name = inner.get("name", cls) if isinstance(inner, Mapping) else cls
        registered = node.get("registered_name")
        module = node.get("module")
        if cls == "Lambda":
            lambdas.append(str(name))
        elif cls == "__lambda__":
            # Keras 3 stores a Lambda layer's function as a nested __lambda__: name the layer
            # once. Elsewhere (e.g. a lambda activation) name the layer that holds it.
            if owner is None:
                lambdas.append("<serialized lambda>")
            elif owner[1] != "Lambda":
                lambdas.append(f"{owner[0]} (serialized lambda)")
        elif cls == "function":
            # A function reference: fine if Keras's own (e.g. an activation), else user code.
            if not (isinstance(module, str) and module.startswith("keras")) and inner not in known:
                unknown.append(str(inner))
        elif cls in _MARKERS or (
            cls in known and (module is None or str(module).startswith("keras"))
        ):
            if isinstance(registered, str) and ">" in registered:
                unknown.append(registered)
        else:
            unknown.append(registered if isinstance(registered, str) and registered else cls)
    return tuple(dict.fromkeys(lambdas)), tuple(dict.fromkeys(unknown))
