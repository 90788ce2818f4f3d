"""Carry a layer's weights over to its rebuilt copy, matched by path, never silently dropped.

:mod:`gradscope.model.rebuild` makes every layer anew from its config; this module fills the new
layer's variables from the old one's. Variables are matched by their path below the layer
(``query/kernel`` of a MultiHeadAttention, not just ``kernel``, which four of its sub-layers
share), so a layer with sub-layers keeps each weight where it was. Operations of a Functional
graph (``x + y`` becomes a ``keras.src.ops.numpy.Add``) have no weights and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gradscope.errors import GradscopeInputError


class WeightMismatchError(GradscopeInputError):
    """A rebuilt layer's variables do not correspond to the original's."""


def layer_variables(layer: Any) -> list[Any]:
    """A layer's weights (trainable and not), or ``[]`` for operations that hold none.

    Args:
        layer: a Keras layer, or an operation of a Functional graph (no ``weights`` attribute).

    Returns:
        The variables, in the layer's own order.

    Example:
        >>> layer_variables(keras.layers.Dense(2))  # doctest: +SKIP
        []
    """
    return list(getattr(layer, "weights", None) or ())


def relative_path(var: Any, layer: Any) -> str:
    """A variable's path below the layer that owns it, e.g. ``"query/kernel"`` in ``"mha"``.

    The full path also names the scopes the layer was built in (a nested model's name: the
    original ``inner/dense/kernel`` versus a rebuilt ``dense/kernel``), which are not the
    layer's own business; everything up to the layer's own name is dropped.

    Args:
        var: a Keras variable of ``layer``.
        layer: its layer.

    Returns:
        The path after the layer's name, or the whole path if the name is not in it.

    Example:
        >>> relative_path(mha.weights[0], mha)  # doctest: +SKIP
        'query/kernel'
    """
    parts = str(getattr(var, "path", var.name)).split("/")
    name = getattr(layer, "name", None)
    if name in parts[:-1]:
        return "/".join(parts[parts.index(name) + 1 :])
    return "/".join(parts)


def _by_path(variables: Sequence[Any], layer: Any) -> dict[str, Any] | None:
    # None when two variables share a path (then paths cannot tell them apart).
    out = {relative_path(v, layer): v for v in variables}
    return out if len(out) == len(variables) else None


def _shape(var: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in var.shape)


def _describe(variables: Iterable[Any], layer: Any) -> str:
    return ", ".join(f"{relative_path(v, layer)}{list(_shape(v))}" for v in variables) or "none"


def copy_weights(old: Any, new: Any, reinit: frozenset[str] | None = None) -> None:
    """Copies the weights of ``old`` into its rebuilt copy ``new``.

    With ``reinit=None`` the copy is exact: every variable of ``new`` gets the value of the
    variable of ``old`` at the same path (or, when paths differ, e.g. auto-named sub-layers, at
    the same position), and anything that does not correspond is an error, never a variable
    left freshly initialized. With ``reinit`` (an edited layer) variables named there keep their
    new values, the others take the old value at the same path and shape, and variables the
    edit added or reshaped stay as initialized.

    Args:
        old: the original layer or operation (only read).
        new: its rebuilt copy, built.
        reinit: for edited layers, names of variables left freshly initialized (e.g.
            ``{"kernel"}``); None for an unedited layer.

    Raises:
        WeightMismatchError: for an unedited layer whose copy's variables do not correspond
            (one line: which layer, both variable lists, what to do).

    Example:
        >>> copy_weights(model.get_layer("mha"), rebuilt.get_layer("mha"))  # doctest: +SKIP
    """
    olds, news = layer_variables(old), layer_variables(new)
    if reinit is not None:
        by_path = {relative_path(v, old): v for v in olds}
        for var in news:
            if var.name in reinit:
                continue
            match = by_path.get(relative_path(var, new))
            if match is not None and _shape(match) == _shape(var):
                var.assign(np.asarray(match.numpy()))
        return
    if not olds and not news:
        return
    pairs = _exact_pairs(olds, old, news, new)
    if pairs is None:
        raise WeightMismatchError(
            f"Cannot carry the weights of layer '{getattr(old, 'name', '?')}' "
            f"({type(old).__name__}) over to its copy rebuilt from get_config(): the original has "
            f"{_describe(olds, old)}, the copy {_describe(news, new)}. Its get_config() likely "
            "leaves out an argument that decides its weights; add it (and to from_config), or "
            "apply the fix by hand."
        )
    for src, dst in pairs:
        dst.assign(np.asarray(src.numpy()))


def _exact_pairs(
    olds: Sequence[Any], old: Any, news: Sequence[Any], new: Any
) -> list[tuple[Any, Any]] | None:
    # By path first; by position when the paths differ but the layout is the same (Keras's own
    # set_weights rule); None when neither gives one source of the same shape per variable.
    if len(olds) != len(news):
        return None
    src, dst = _by_path(olds, old), _by_path(news, new)
    if src is not None and dst is not None and src.keys() == dst.keys():
        pairs = [(src[k], dst[k]) for k in dst]
    else:
        pairs = list(zip(olds, news, strict=True))
    if any(_shape(a) != _shape(b) for a, b in pairs):
        return None
    return pairs
