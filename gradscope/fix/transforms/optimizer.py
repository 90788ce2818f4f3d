"""Optimizer fixes: gradient clipping and a lower or higher learning rate, on a recompiled copy.

The copy has the same weights, loss and metrics; its optimizer is rebuilt from the original's
config plus the change (so its state, e.g. Adam's moments, starts fresh).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import keras

from gradscope.model.rebuild import (
    FixNotApplicable,
    UnsupportedModelError,
    clone_with_weights,
    rebuild,
)


def _optimizer_copy(model: keras.Model, fix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    # Returns (compile_config, config of the optimizer that applies gradients) — deep copies.
    if not model.compiled:
        raise UnsupportedModelError(
            f"{fix}: '{model.name}' is not compiled, so it has no optimizer to change. Compile it "
            "first, or pass the option to your optimizer yourself, e.g. "
            "keras.optimizers.Adam(clipnorm=1.0)."
        )
    compile_config = copy.deepcopy(model.get_compile_config())
    optimizer = compile_config.get("optimizer")
    if not isinstance(optimizer, dict) or "config" not in optimizer:
        raise UnsupportedModelError(
            f"{fix}: the optimizer of '{model.name}' is not serializable "
            f"(received {type(optimizer).__name__}); set the option on it by hand."
        )
    inner = optimizer["config"]
    # LossScaleOptimizer wraps the optimizer that does the update; clipping belongs there.
    while isinstance(inner.get("inner_optimizer"), dict):
        inner = inner["inner_optimizer"]["config"]
    return compile_config, inner


def _copy_model(model: keras.Model, compile_config: Mapping[str, Any]) -> keras.Model:
    try:
        return rebuild(model, {}, compile_config)
    except UnsupportedModelError:
        if not model.built:
            raise
    # Subclassed models: Keras's own serialization round trip, then copy the weights.
    clone = clone_with_weights(
        model,
        f"subclassed model '{model.name}'",
        "implement get_config()/from_config() or change the optimizer by hand.",
    )
    clone.compile_from_config(copy.deepcopy(dict(compile_config)))
    return clone


def clip_norm(model: keras.Model, value: float = 1.0, global_norm: bool = False) -> keras.Model:
    """Returns a copy compiled with gradient clipping by norm.

    Args:
        model: a compiled model (not modified).
        value: the norm threshold (1.0 is the usual start, Pascanu et al. 2013).
        global_norm: clip the norm of all gradients together (``global_clipnorm``) instead of
            each variable's (``clipnorm``).

    Returns:
        A new model with the same weights, loss and metrics; the optimizer is built from the
        same config plus clipping (its state, e.g. Adam moments, starts fresh).

    Raises:
        FixNotApplicable: if the optimizer already clips.
        UnsupportedModelError: if the model is not compiled.

    Example:
        >>> fixed = clip_norm(model, 1.0)  # doctest: +SKIP
    """
    return _clip(model, "clip_norm", "global_clipnorm" if global_norm else "clipnorm", value)


def clip_value(model: keras.Model, value: float = 1.0) -> keras.Model:
    """Returns a copy compiled with gradient clipping by value (``clipvalue``).

    Args:
        model: a compiled model (not modified).
        value: each gradient entry is clipped to [-value, value].

    Returns:
        A new model with the same weights, loss, metrics and an optimizer with clipping.

    Raises:
        FixNotApplicable: if the optimizer already clips.
        UnsupportedModelError: if the model is not compiled.

    Example:
        >>> fixed = clip_value(model, 0.5)  # doctest: +SKIP
    """
    return _clip(model, "clip_value", "clipvalue", value)


def _clip(model: keras.Model, fix: str, key: str, value: float) -> keras.Model:
    if not value > 0:
        raise ValueError(f"{fix}: the clipping threshold must be > 0. Received: value={value}")
    compile_config, optimizer = _optimizer_copy(model, fix)
    already = {k: optimizer.get(k) for k in ("clipnorm", "clipvalue", "global_clipnorm")}
    if any(v is not None for v in already.values()):
        set_ = {k: v for k, v in already.items() if v is not None}
        raise FixNotApplicable(f"{fix}: the optimizer already clips gradients ({set_}).")
    optimizer[key] = float(value)
    return _copy_model(model, compile_config)


#: Learning-rate schedule config keys that scale with the learning rate.
_SCHEDULE_RATE_KEYS = (
    "initial_learning_rate",
    "maximal_learning_rate",
    "end_learning_rate",
    "warmup_target",
)

LR_ADVICE = (
    "Prefer a schedule to a fixed lower rate: keras.callbacks.ReduceLROnPlateau(factor=0.5, "
    "patience=5) halves it when the validation loss stalls; 1cycle (Smith 2018) ramps the rate up "
    "to about half the rate where the loss diverges, then down (Géron ch. 11)."
)


RAISE_LR_ADVICE = (
    "Raise the rate a decade at a time while the loss falls faster, and stay below the rate at "
    "which it starts to oscillate; 1cycle (keras.optimizers.schedules.CosineDecay with "
    "warmup_target) ramps it up and back down (Géron ch. 11)."
)


def lower_learning_rate(model: keras.Model, factor: float = 10.0) -> keras.Model:
    """Returns a copy whose optimizer learning rate is divided by ``factor``.

    Schedules (e.g. ExponentialDecay, PiecewiseConstantDecay) are scaled as a whole.

    Args:
        model: a compiled model (not modified).
        factor: divisor, > 1 (default 10, one order of magnitude).

    Returns:
        A new model with the same weights; see :data:`LR_ADVICE` for schedules.

    Raises:
        UnsupportedModelError: if the model is not compiled or the rate cannot be found.
        ValueError: if factor <= 1.

    Example:
        >>> fixed = lower_learning_rate(model, factor=3)  # doctest: +SKIP
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1 to lower the rate. Received: factor={factor}")
    return _scale_learning_rate(model, "lower_learning_rate", 1.0 / factor)


def raise_learning_rate(model: keras.Model, factor: float = 10.0) -> keras.Model:
    """Returns a copy whose optimizer learning rate is multiplied by ``factor``.

    The answer to ``slow_convergence``: update ratios far below CS231n's ≈ 1e-3. Schedules are
    scaled as a whole, as by :func:`lower_learning_rate`.

    Args:
        model: a compiled model (not modified).
        factor: multiplier, > 1 (default 10, one order of magnitude).

    Returns:
        A new model with the same weights, loss and metrics; see :data:`RAISE_LR_ADVICE`.

    Raises:
        UnsupportedModelError: if the model is not compiled or the rate cannot be found.
        ValueError: if factor <= 1.

    Example:
        >>> fixed = raise_learning_rate(model)  # doctest: +SKIP
    """
    if not factor > 1:
        raise ValueError(f"factor must be > 1 to raise the rate. Received: factor={factor}")
    return _scale_learning_rate(model, "raise_learning_rate", float(factor))


def _scale_learning_rate(model: keras.Model, fix: str, scale: float) -> keras.Model:
    # One place that finds the rate (a float or a schedule's rate keys) and multiplies it.
    how = f"multiply it by {scale:g}" if scale > 1 else f"divide it by {1 / scale:g}"
    compile_config, optimizer = _optimizer_copy(model, fix)
    rate = optimizer.get("learning_rate")
    if isinstance(rate, (int, float)):
        optimizer["learning_rate"] = float(rate) * scale
    elif isinstance(rate, dict) and isinstance(rate.get("config"), dict):
        schedule = rate["config"]
        keys = [k for k in _SCHEDULE_RATE_KEYS if isinstance(schedule.get(k), (int, float))]
        if isinstance(schedule.get("values"), list):
            schedule["values"] = [float(v) * scale for v in schedule["values"]]
        elif not keys:
            raise UnsupportedModelError(
                f"{fix}: cannot find the rate in schedule {rate.get('class_name')!r}; "
                f"{how} by hand."
            )
        for k in keys:
            schedule[k] = float(schedule[k]) * scale
    else:
        raise UnsupportedModelError(f"{fix}: unrecognized learning rate {rate!r}; set it by hand.")
    return _copy_model(model, compile_config)
