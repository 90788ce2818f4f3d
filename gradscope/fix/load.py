"""Load a model file for fixing: safely (gradscope's audit loader), then compiled as saved.

The audit loader deserializes without compiling (legacy compile configs often fail in Keras 3);
a fix must keep the user's loss, metrics and optimizer, so they are restored here when the file
has them, and the fixed model is saved with them.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from typing import Any

import keras

from gradscope.model.loader import LoadedModel, load_model_safely


def _compile_config(loaded: LoadedModel) -> Mapping[str, Any] | None:
    config = loaded.stored.model_config.get("compile_config")
    return config if isinstance(config, Mapping) and config.get("loss") is not None else None


def load_for_fix(
    path: str | os.PathLike[str],
    unsafe: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
) -> keras.Model:
    """Loads a model file safely and compiles it the way it was saved, when possible.

    Args:
        path: a ``.keras`` or HDF5 model file (only read).
        unsafe: allow files that run code on load (Lambda layers, custom objects).
        custom_objects: custom classes/functions by name, for files that need them.

    Returns:
        The model; compiled with the stored loss/metrics/optimizer if the file has a Keras 3
        compile config that deserializes, else uncompiled (trials then use a default optimizer).

    Raises:
        GradscopeInputError: for every problem with the file (one-line message).

    Example:
        >>> model = load_for_fix("model.keras")  # doctest: +SKIP
    """
    loaded = load_model_safely(path, unsafe=unsafe, custom_objects=custom_objects)
    model = loaded.model
    config = _compile_config(loaded)
    if config is not None and isinstance(config.get("optimizer"), Mapping):
        try:
            model.compile_from_config(copy.deepcopy(dict(config)))
        except Exception:
            # A legacy or partial config: trials fall back to the default optimizer instead.
            return model
    elif isinstance(loaded.stored.loss, str):
        _compile_legacy(model, loaded)
    return model


def _compile_legacy(model: keras.Model, loaded: LoadedModel) -> None:
    # Keras 2 HDF5 files name their loss and optimizer in training_config; trials then train
    # with the user's loss (e.g. one-hot categorical targets), like `gradscope audit` does.
    from gradscope.audit.probe import legacy_optimizer
    from gradscope.fix.verify import DEFAULT_OPTIMIZER

    stored = loaded.stored
    optimizer = legacy_optimizer(stored.optimizer_config) if stored.optimizer_config else None
    if optimizer is None:
        optimizer = keras.optimizers.deserialize(dict(DEFAULT_OPTIMIZER))
    with contextlib.suppress(Exception):
        # An unknown legacy loss name leaves the model uncompiled: trials then infer the loss
        # from the output layer.
        model.compile(optimizer=optimizer, loss=stored.loss)
