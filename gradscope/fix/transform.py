"""Fix transforms: each fix id -> a function returning a NEW model with the fix applied.

The input model is never mutated (layers are rebuilt from their configs, weights copied), and
weights of untouched layers are preserved. What each transform changes follows Géron, *Hands-On
Machine Learning*, ch. 11: He init for the ReLU family, LeCun for SELU, Glorot for
none/tanh/sigmoid/softmax; BatchNormalization after each hidden layer (optionally before the
activation, with ``use_bias=False`` on the layer before it); clipping and a lower learning rate on
the optimizer. The output head (the last kernel layers and their activation) is never changed:
its activation belongs to the task.

Example:
    >>> fixed = apply_fix(model, "relu_activation")  # doctest: +SKIP
    >>> fixed = apply_fixes(model, ["he_init", "batch_norm"])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import keras

from gradscope.fix.optimizer import (
    LR_ADVICE,
    clip_norm,
    clip_value,
    lower_learning_rate,
)
from gradscope.model.graph import (
    LINEAR,
    RELU_FAMILY,
    ModelGraph,
    is_activation_layer,
    is_kernel_layer,
    iter_levels,
    layer_activation,
)
from gradscope.model.rebuild import (
    FixNotApplicable,
    LayerEdit,
    UnsupportedModelError,
    rebuild,
    require_built,
)
from gradscope.model.taxonomy import parse_initializer

__all__ = [
    "TRANSFORMS",
    "FixNotApplicable",
    "Stage",
    "Transform",
    "UnsupportedModelError",
    "apply_fix",
    "apply_fixes",
    "not_applicable_reason",
]


class Stage(enum.IntEnum):
    """Order in which fixes are applied: weights' start, then normalization, then the optimizer."""

    INIT_ACTIVATION = 0
    NORMALIZATION = 1
    OPTIMIZER = 2


# --------------------------------------------------------------------------- initializers


@dataclass(frozen=True)
class _InitRule:
    scale: float
    mode: str
    activations: frozenset[str]


_INIT_RULES: Mapping[str, _InitRule] = {
    "he": _InitRule(2.0, "fan_in", RELU_FAMILY),
    "lecun": _InitRule(1.0, "fan_in", frozenset({"selu"})),
    "glorot": _InitRule(1.0, "fan_avg", frozenset({"linear", "tanh", "sigmoid", "softmax"})),
}
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
_VARIANCE_FAMILIES = frozenset({"he", "lecun", "glorot", "variance_scaling"})


def _init_scale_mode(config: Any) -> tuple[float, str] | None:
    # The (scale, mode) of a serialized initializer, or None if it is not variance scaling; the
    # model taxonomy is the one table of initializer names (he_normal, HeNormal, configs).
    spec = parse_initializer(config)
    if spec is None or spec.family not in _VARIANCE_FAMILIES or spec.scale is None:
        return None
    return spec.scale, str(spec.mode)


def _initializer(
    family: str, mode: str | None, distribution: str, seed: int | None
) -> dict[str, Any]:
    rule = _INIT_RULES[family]
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {_DISTRIBUTIONS}. Received: distribution={distribution!r}"
        )
    init = keras.initializers.VarianceScaling(
        scale=rule.scale, mode=mode or rule.mode, distribution=distribution, seed=seed
    )
    return keras.initializers.serialize(init)


def _kernel_edit(layer: keras.layers.Layer, init: Mapping[str, Any], **changes: Any) -> LayerEdit:
    config = copy.deepcopy(layer.get_config())
    config.update(changes)
    config["kernel_initializer"] = copy.deepcopy(dict(init))
    return LayerEdit(config=config, reinit=frozenset({"kernel"}))


# --------------------------------------------------------------------------- layer selection


def _levels(model: keras.Model) -> list[tuple[ModelGraph, frozenset[int]]]:
    require_built(model)
    return list(iter_levels(model))


def _named(model: keras.Model, names: Sequence[str] | None) -> set[str] | None:
    # Validates user-given layer names against the model (nested layers by their own name).
    if names is None:
        return None
    known = {layer.name for graph, _ in _levels(model) for layer in graph.layers}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"No layers named {unknown} in '{model.name}'. Received: layers={list(names)}; "
            f"known layers: {sorted(known)}"
        )
    return set(names)


def _hidden_kernel_layers(
    model: keras.Model, names: set[str] | None
) -> list[tuple[ModelGraph, keras.layers.Layer]]:
    out = []
    for graph, head in _levels(model):
        for layer in graph.layers:
            if not is_kernel_layer(layer):
                continue
            if names is not None:
                if layer.name in names:
                    out.append((graph, layer))
            elif id(layer) not in head:
                out.append((graph, layer))
    return out


# --------------------------------------------------------------------------- init transforms


def _reinit(
    model: keras.Model,
    family: str,
    layers: Sequence[str] | None,
    mode: str | None,
    distribution: str,
    seed: int | None,
) -> keras.Model:
    rule = _INIT_RULES[family]
    names = _named(model, layers)
    target = (rule.scale, mode or rule.mode)
    init = _initializer(family, mode, distribution, seed)
    edits: dict[int, LayerEdit] = {}
    for graph, head in _levels(model):
        for layer in graph.layers:
            if not is_kernel_layer(layer):
                continue
            if names is not None:
                chosen = layer.name in names
            else:
                # Default: layers whose activation this init is made for and that use another.
                act = graph.effective_activation(layer) or "linear"
                act = "linear" if act in LINEAR else act
                current = _init_scale_mode(layer.get_config().get("kernel_initializer"))
                chosen = act in rule.activations and current != target
                chosen = chosen and (family == "glorot" or id(layer) not in head)
            if chosen:
                edits[id(layer)] = _kernel_edit(layer, init)
    if not edits:
        acts = "/".join(sorted(rule.activations))
        raise FixNotApplicable(
            f"{family}_init: no layer of '{model.name}' needs it (it is for {acts} layers not "
            f"already using {family} initialization). Pass layers=[...] to force it."
        )
    return rebuild(model, edits)


def he_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "truncated_normal",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes ReLU-family layers with He initialization (VarianceScaling scale 2).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to re-initialize; default: kernel layers whose activation is
            in the ReLU family and whose init is not already He.
        mode: ``"fan_in"`` (default, He et al.) or ``"fan_avg"`` (Géron's ``he_avg_init``).
        distribution: ``"truncated_normal"`` (as he_normal), ``"normal"`` or ``"uniform"``.
        seed: initializer seed.

    Returns:
        A new model; re-initialized kernels are fresh, every other weight is copied.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = he_init(model, mode="fan_avg", distribution="uniform")  # doctest: +SKIP
    """
    return _reinit(model, "he", layers, mode, distribution, seed)


def lecun_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "truncated_normal",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes SELU layers with LeCun initialization (VarianceScaling scale 1, fan_in).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers; default: SELU layers not already LeCun-initialized.
        mode: ``"fan_in"`` (default) or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (as lecun_normal), ``"normal"`` or ``"uniform"``.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = lecun_init(selu_model)  # doctest: +SKIP
    """
    return _reinit(model, "lecun", layers, mode, distribution, seed)


def glorot_init(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    mode: str | None = None,
    distribution: str = "uniform",
    seed: int | None = None,
) -> keras.Model:
    """Re-initializes linear/tanh/sigmoid/softmax layers with Glorot (scale 1, fan_avg).

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers; default: such layers (output layer included) whose init is
            not already Glorot.
        mode: ``"fan_avg"`` (default, Glorot & Bengio) or ``"fan_in"``.
        distribution: ``"uniform"`` (as glorot_uniform), ``"normal"`` or ``"truncated_normal"``.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if no layer needs it.

    Example:
        >>> fixed = glorot_init(model, layers=["dense_1"])  # doctest: +SKIP
    """
    return _reinit(model, "glorot", layers, mode, distribution, seed)


# --------------------------------------------------------------------------- activation swaps


def _activation_layer_factory(name: str, target: str, alpha: float) -> Callable[[], Any]:
    if target == "leaky_relu":
        return lambda: keras.layers.LeakyReLU(negative_slope=alpha, name=name)
    return lambda: keras.layers.Activation(target, name=name)


def _swap_activation(
    model: keras.Model,
    target: str,
    family: str,
    layers: Sequence[str] | None,
    alpha: float,
    seed: int | None,
) -> keras.Model:
    names = _named(model, layers)
    init = _initializer(family, None, "truncated_normal", seed)
    taken = {layer.name for graph, _ in _levels(model) for layer in graph.layers}
    edits: dict[int, LayerEdit] = {}
    swapped = 0

    def wanted(layer: keras.layers.Layer, head: frozenset[int]) -> bool:
        act = layer_activation(layer) or "linear"
        if act in LINEAR or act == target:
            return False
        return layer.name in names if names is not None else id(layer) not in head

    for graph, head in _levels(model):
        for layer in graph.layers:
            if is_kernel_layer(layer) and wanted(layer, head):
                swapped += 1
                if target == "leaky_relu":
                    # A Dense activation string cannot carry alpha: a LeakyReLU layer follows
                    # (Géron's pattern "Dense(..., kernel_initializer='he_normal'), LeakyReLU").
                    name = _unique(f"{layer.name}_leaky_relu", taken)
                    edit = _kernel_edit(layer, init, activation="linear")
                    edits[id(layer)] = LayerEdit(
                        edit.config, None, (_activation_layer_factory(name, target, alpha),)
                    )
                else:
                    edits[id(layer)] = _kernel_edit(layer, init, activation=target)
            elif is_activation_layer(layer) and wanted(layer, head):
                swapped += 1
                replacement = (
                    keras.layers.LeakyReLU(negative_slope=alpha, name=layer.name)
                    if target == "leaky_relu"
                    else keras.layers.Activation(target, name=layer.name)
                )
                edits[id(layer)] = LayerEdit(
                    replacement.get_config(), type(replacement), reinit=frozenset()
                )
                kernel = graph.feeding_kernel(layer)
                if kernel is not None and id(kernel) not in edits:
                    edits[id(kernel)] = _kernel_edit(kernel, init)
    if target == "selu":
        edits.update(_alpha_dropout_edits(model))
    if not swapped:
        raise FixNotApplicable(
            f"{target}_activation: '{model.name}' has no hidden activation to replace (all hidden "
            f"activations are already {target} or linear; the output head is never changed)."
        )
    return rebuild(model, edits)


def _unique(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def relu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with ReLU and re-initializes their kernels with He.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden layer with a non-linear
            activation other than ReLU (Dense/Conv ``activation=`` and standalone activation
            layers; for the latter the kernel layer feeding them is re-initialized).
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = relu_activation(deep_sigmoid_mlp)  # doctest: +SKIP
    """
    return _swap_activation(model, "relu", "he", layers, 0.0, seed)


def leaky_relu_activation(
    model: keras.Model,
    layers: Sequence[str] | None = None,
    alpha: float = 0.2,
    seed: int | None = None,
) -> keras.Model:
    """Replaces hidden activations with LeakyReLU(alpha) and He-initialized kernels.

    Dense/Conv layers get ``activation="linear"`` followed by a new ``LeakyReLU`` layer.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        alpha: slope for negative inputs (Géron uses 0.2).
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.
        ValueError: if alpha is not in (0, 1).

    Example:
        >>> fixed = leaky_relu_activation(model, alpha=0.1)  # doctest: +SKIP
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1). Received: alpha={alpha}")
    return _swap_activation(model, "leaky_relu", "he", layers, alpha, seed)


def elu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with ELU and He-initialized kernels.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = elu_activation(model)  # doctest: +SKIP
    """
    return _swap_activation(model, "elu", "he", layers, 0.0, seed)


def selu_activation(
    model: keras.Model, layers: Sequence[str] | None = None, seed: int | None = None
) -> keras.Model:
    """Replaces hidden activations with SELU, LeCun-normal kernels and Dropout by AlphaDropout.

    Self-normalization also needs standardized inputs and a plain stack of Dense layers
    (Klambauer et al. 2017); gradscope cannot check the inputs from the model alone.

    Args:
        model: a built Sequential or Functional model (not modified).
        layers: names of the layers to change; default: every hidden non-linear activation.
        seed: initializer seed.

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if there is nothing to replace.

    Example:
        >>> fixed = selu_activation(model)  # doctest: +SKIP
    """
    return _swap_activation(model, "selu", "lecun", layers, 0.0, seed)


def _alpha_dropout_edits(model: keras.Model) -> dict[int, LayerEdit]:
    edits: dict[int, LayerEdit] = {}
    for graph, _ in _levels(model):
        for layer in graph.layers:
            if type(layer).__name__ == "Dropout":
                config = layer.get_config()
                keys = ("name", "rate", "seed", "noise_shape")
                keep = {k: config[k] for k in keys if k in config}
                new = keras.layers.AlphaDropout(**keep)
                edits[id(layer)] = LayerEdit(new.get_config(), type(new))
    return edits


def alpha_dropout(model: keras.Model) -> keras.Model:
    """Replaces every Dropout layer with AlphaDropout of the same rate (for SELU networks).

    Args:
        model: a built Sequential or Functional model (not modified).

    Returns:
        A new model.

    Raises:
        FixNotApplicable: if the model has no Dropout layer.

    Example:
        >>> fixed = alpha_dropout(selu_model)  # doctest: +SKIP
    """
    edits = _alpha_dropout_edits(model)
    if not edits:
        raise FixNotApplicable(f"alpha_dropout: '{model.name}' has no Dropout layer to replace.")
    return rebuild(model, edits)


# --------------------------------------------------------------------------- batch norm


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
    names = _named(model, layers)
    taken = {layer.name for graph, _ in _levels(model) for layer in graph.layers}
    edits: dict[int, LayerEdit] = {}
    for graph, layer in _hidden_kernel_layers(model, names):
        if graph.normalized_after(layer):
            continue
        config = copy.deepcopy(layer.get_config())
        axis = 1 if config.get("data_format") == "channels_first" else -1
        bn_name = _unique(f"{layer.name}_bn", taken)

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
            act_name = _unique(f"{layer.name}_{act}", taken)
            after = (bn, _activation_layer_factory(act_name, act, 0.2))
        edits[id(layer)] = LayerEdit(config=config, after=after)
    if not edits:
        raise FixNotApplicable(
            f"batch_norm: every hidden Dense/Conv layer of '{model.name}' is already followed by "
            "a normalization layer (or there is no hidden layer)."
        )
    return rebuild(model, edits)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Transform:
    """A fix id's model rewrite.

    Attributes:
        fix_id: the catalog id.
        stage: when it is applied relative to other fixes.
        apply: ``fn(model, **options) -> new model``.
        advice: extra advice shown with the fix, if any.
    """

    fix_id: str
    stage: Stage
    apply: Callable[..., keras.Model]
    advice: str | None = None


_TRANSFORMS = (
    Transform("he_init", Stage.INIT_ACTIVATION, he_init),
    Transform("lecun_init", Stage.INIT_ACTIVATION, lecun_init),
    Transform("glorot_init", Stage.INIT_ACTIVATION, glorot_init),
    Transform("relu_activation", Stage.INIT_ACTIVATION, relu_activation),
    Transform("leaky_relu_activation", Stage.INIT_ACTIVATION, leaky_relu_activation),
    Transform("elu_activation", Stage.INIT_ACTIVATION, elu_activation),
    Transform(
        "selu_activation",
        Stage.INIT_ACTIVATION,
        selu_activation,
        "SELU self-normalizes only on standardized inputs and plain Dense stacks.",
    ),
    Transform("alpha_dropout", Stage.INIT_ACTIVATION, alpha_dropout),
    Transform("batch_norm", Stage.NORMALIZATION, batch_norm),
    Transform("clip_norm", Stage.OPTIMIZER, clip_norm),
    Transform("clip_value", Stage.OPTIMIZER, clip_value),
    Transform("lower_learning_rate", Stage.OPTIMIZER, lower_learning_rate, LR_ADVICE),
)

#: Fix id -> Transform, read-only. Catalog ids missing here are advice only (data changes).
TRANSFORMS: Mapping[str, Transform] = MappingProxyType({t.fix_id: t for t in _TRANSFORMS})


def apply_fix(model: keras.Model, fix_id: str, **options: Any) -> keras.Model:
    """Applies one fix to a copy of a model.

    Args:
        model: a built Sequential or Functional model (optimizer fixes: any compiled model);
            never modified.
        fix_id: a key of :data:`TRANSFORMS`, e.g. ``"he_init"``.
        **options: options of that transform (e.g. ``alpha=0.1``, ``position="before"``).

    Returns:
        The new model.

    Raises:
        KeyError: for an id with no transform (naming the ones that exist).
        FixNotApplicable: if the fix has nothing to change in this model.
        UnsupportedModelError: if the model cannot be rewritten; the message says what to do.

    Example:
        >>> fixed = apply_fix(model, "leaky_relu_activation", alpha=0.2)  # doctest: +SKIP
    """
    try:
        transform = TRANSFORMS[fix_id]
    except KeyError:
        raise KeyError(
            f"No automatic transform for fix {fix_id!r}; apply it by hand. "
            f"Automatic fixes: {sorted(TRANSFORMS)}"
        ) from None
    return transform.apply(model, **options)


def apply_fixes(
    model: keras.Model,
    fix_ids: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> keras.Model:
    """Applies several fixes in stage order (init/activation, normalization, optimizer).

    Args:
        model: the model (never modified).
        fix_ids: fix ids; order within a stage is kept.
        options: per fix id, options for its transform.

    Returns:
        The new model with every fix applied. Nothing is returned half-applied: any failure
        raises before a model is returned.

    Raises:
        KeyError, FixNotApplicable, UnsupportedModelError: as :func:`apply_fix`.

    Example:
        >>> fixed = apply_fixes(model, ["batch_norm", "he_init"])  # doctest: +SKIP
    """
    unknown = [f for f in fix_ids if f not in TRANSFORMS]
    if unknown:
        raise KeyError(
            f"No automatic transform for {unknown}. Automatic fixes: {sorted(TRANSFORMS)}"
        )
    ordered = sorted(dict.fromkeys(fix_ids), key=lambda f: TRANSFORMS[f].stage)
    current = model
    for fix_id in ordered:
        current = apply_fix(current, fix_id, **dict((options or {}).get(fix_id, {})))
    return current


def not_applicable_reason(model: keras.Model, fix_id: str) -> str | None:
    """Says why a fix cannot be applied to a model, or None if it can.

    The fix is tried on a copy (cheap: a rebuild without training), so the answer is exactly
    what :func:`apply_fix` would do.

    Args:
        model: the model (never modified).
        fix_id: the fix id.

    Returns:
        The reason as one sentence, or None when the fix applies.

    Example:
        >>> not_applicable_reason(already_clipped_model, "clip_norm")  # doctest: +SKIP
        'clip_norm: the optimizer already clips gradients ({...}).'
    """
    if fix_id not in TRANSFORMS:
        return f"{fix_id}: no automatic transform; apply it by hand."
    try:
        apply_fix(model, fix_id)
    except (FixNotApplicable, UnsupportedModelError) as err:
        return str(err)
    return None
