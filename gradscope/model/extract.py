"""Model description from a live Keras model.

Besides the loader and the probe, this is the only audit module that imports Keras.
"""

from __future__ import annotations

from typing import Any

import keras

from gradscope.model.spec import ModelSpec, spec_from_config


def optimizer_config(model: keras.Model) -> dict[str, Any] | None:
    """Returns ``{"class_name", "config"}`` of a compiled model's optimizer, or None.

    Args:
        model: a Keras model.

    Returns:
        The optimizer's class name and config, None if the model is not compiled.

    Example:
        >>> optimizer_config(model)["config"]["clipnorm"]  # doctest: +SKIP
        1.0
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    # LossScaleOptimizer and similar wrappers keep the real optimizer in `inner_optimizer`.
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return {"class_name": type(inner).__name__, "config": inner.get_config()}


def spec_from_model(model: keras.Model) -> ModelSpec:
    """Builds the static description of a live Keras model.

    Args:
        model: a Sequential or Functional Keras model (compiled or not).

    Returns:
        The :class:`ModelSpec` static rules work on.

    Example:
        >>> [x.effective_activation for x in spec_from_model(model).kernel_layers]
        ... # doctest: +SKIP
        ['relu', 'softmax']
    """
    config = keras.saving.serialize_keras_object(model)
    return spec_from_config(config, optimizer_config(model))
