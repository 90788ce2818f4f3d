"""Safe model loading: inspect the stored config first, deserialize only what is safe.

Supported: ``.keras`` (zip with ``config.json``) and legacy HDF5 (``.h5``/``.hdf5``, Keras 2 and
TF1-era files with a ``model_config`` attribute). The format is decided by the file's magic bytes,
not its name. Before anything is deserialized the stored config is scanned for code that would
run on load (``Lambda`` layers carry Python bytecode; unknown classes need user code); such files
are refused unless ``unsafe=True``. Every problem with the input is a :class:`GradscopeInputError`
with a one-line message.

This module holds the two entry points; each step lives in its own module and is re-exported
here, where callers have always imported it from:

- :mod:`gradscope.model.sniff`: the file's format and stored configs, read without running code;
- :mod:`gradscope.model.scan`: Lambda layers and unknown classes in a config;
- :mod:`gradscope.model.legacy`: Keras 2.2 / TF 1.x HDF5 configs upgraded for Keras 3;
- :mod:`gradscope.model.capacity`: declared weights against the file's size;
- :mod:`gradscope.model.deserialize`: the Keras load, and the ``--unsafe`` scope;
- :mod:`gradscope.model.stored`: the records (:class:`StoredModel`, :class:`LoadedModel`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError
from gradscope.model.capacity import (
    MAX_DEFLATE_RATIO,
    MIN_BYTES_PER_WEIGHT,
    check_declared_size,
    declared_weights,
)
from gradscope.model.deserialize import deserialize, unsafe_deserialization
from gradscope.model.legacy import upgrade_legacy_config
from gradscope.model.scan import scan_config
from gradscope.model.sniff import read_stored_config, sniff_format
from gradscope.model.stored import LoadedModel, ModelRebuildError, StoredModel

__all__ = [
    "MAX_DEFLATE_RATIO",
    "MIN_BYTES_PER_WEIGHT",
    "LoadedModel",
    "ModelRebuildError",
    "StoredModel",
    "check_declared_size",
    "declared_weights",
    "inspect_model_file",
    "load_model_safely",
    "scan_config",
    "unsafe_deserialization",
    "upgrade_legacy_config",
]


def inspect_model_file(path: str | os.PathLike[str]) -> StoredModel:
    """Reads what a model file declares without deserializing (running) anything.

    Args:
        path: a ``.keras`` or HDF5 model file.

    Returns:
        The :class:`StoredModel`.

    Raises:
        GradscopeInputError: if the path is missing, a directory, a SavedModel, empty, not a
            model file, truncated or corrupt.

    Example:
        >>> inspect_model_file("model.h5").lambda_layers  # doctest: +SKIP
        ('lambda',)
    """
    file = Path(path)
    fmt = sniff_format(file)
    config, optimizer, version, loss = read_stored_config(file, fmt)
    if "class_name" not in config:
        raise GradscopeInputError(
            f"'{file}' does not contain a Keras model config (no class_name)."
        )
    lambdas, unknown = scan_config(config)
    return StoredModel(file, fmt, config, optimizer, version, lambdas, unknown, loss)


def load_model_safely(
    path: str | os.PathLike[str],
    unsafe: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> LoadedModel:
    """Loads a model file for auditing, refusing files that would run code unless ``unsafe``.

    Args:
        path: a ``.keras`` or HDF5 model file.
        unsafe: allow Lambda layers and unknown custom objects (runs code from the file: only
            for files you trust). Also disables Keras's ``safe_mode``.
        custom_objects: classes/functions for custom objects, by name; names given here are not
            "unknown".
        seed: Keras's random seed right before the model is rebuilt (see
            :func:`gradscope.model.deserialize.deserialize`); None leaves it alone.

    Returns:
        The :class:`LoadedModel` (the file is only read, never written).

    Raises:
        GradscopeInputError: for every problem with the input, with a one-line message.

    Example:
        >>> loaded = load_model_safely("model.h5")  # doctest: +SKIP
        >>> loaded.model.summary()  # doctest: +SKIP
    """
    stored = inspect_model_file(path)
    custom = dict(custom_objects or {})
    unknown = [
        n for n in stored.unknown_objects if n.split(">")[-1] not in custom and n not in custom
    ]
    if (stored.lambda_layers or unknown) and not unsafe:
        parts = []
        if stored.lambda_layers:
            parts.append(f"Lambda layers {list(stored.lambda_layers)} (Python bytecode)")
        if unknown:
            parts.append(f"unknown custom objects {unknown}")
        raise GradscopeInputError(
            f"Refusing to load '{stored.path}': it contains {' and '.join(parts)} that would run "
            "code on load; re-run with --unsafe only if you trust this file."
        )
    model = deserialize(stored, unsafe, custom, seed)
    if not model.trainable_weights:
        raise GradscopeInputError(
            f"'{stored.path}' has no trainable weights (all layers frozen or weight-free), so "
            "there are no gradients to audit; set layer.trainable = True on the layers you train "
            "and save the model again."
        )
    return LoadedModel(stored, model)
