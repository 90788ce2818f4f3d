"""Load a model file for fixing: safely (gradscope's loader), then compiled as saved.

The loader deserializes without compiling (legacy compile configs often fail in Keras 3); a fix
must keep the user's loss, metrics and optimizer, so they are restored here when the file has
them (:func:`gradscope.trial.policy.compile_as_saved`, which `gradscope audit` uses too), and the
fixed model is saved with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import keras

from gradscope.model.loader import load_model_safely
from gradscope.trial.policy import compile_as_saved


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
        compile config that deserializes, or with a stored loss name and the file's optimizer
        (the trials' default optimizer if Keras 3 lacks its class); else uncompiled (trials then
        use the default optimizer and a loss implied by the output layer).

    Raises:
        GradscopeInputError: for every problem with the file (one-line message).

    Example:
        >>> model = load_for_fix("model.keras")  # doctest: +SKIP
    """
    return compile_as_saved(load_model_safely(path, unsafe=unsafe, custom_objects=custom_objects))
