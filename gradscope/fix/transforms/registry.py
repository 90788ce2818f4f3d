"""The registry of transforms: fix id -> model rewrite, its stage, and how fixes are applied.

Fixes apply in stage order (weights' start, then normalization, then the optimizer), so a plan's
order never makes one fix undo another.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import keras

from gradscope.fix.transforms.activation import (
    alpha_dropout,
    elu_activation,
    leaky_relu_activation,
    relu_activation,
    selu_activation,
)
from gradscope.fix.transforms.batch_norm import batch_norm
from gradscope.fix.transforms.init import glorot_init, he_init, lecun_init, zero_bias_init
from gradscope.fix.transforms.optimizer import (
    LR_ADVICE,
    RAISE_LR_ADVICE,
    clip_norm,
    clip_value,
    lower_learning_rate,
    raise_learning_rate,
)
from gradscope.model.rebuild import FixNotApplicable, UnsupportedModelError


class Stage(enum.IntEnum):
    """Order in which fixes are applied: weights' start, then normalization, then the optimizer."""

    INIT_ACTIVATION = 0
    NORMALIZATION = 1
    OPTIMIZER = 2


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
    Transform("zero_bias_init", Stage.INIT_ACTIVATION, zero_bias_init),
    Transform("batch_norm", Stage.NORMALIZATION, batch_norm),
    Transform("clip_norm", Stage.OPTIMIZER, clip_norm),
    Transform("clip_value", Stage.OPTIMIZER, clip_value),
    Transform("lower_learning_rate", Stage.OPTIMIZER, lower_learning_rate, LR_ADVICE),
    Transform("raise_learning_rate", Stage.OPTIMIZER, raise_learning_rate, RAISE_LR_ADVICE),
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
