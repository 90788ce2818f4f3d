"""Which kind of model file a path is, and what it declares, read without deserializing anything.

The format is decided by the file's magic bytes, not its name: a ``.keras`` archive is a zip with
``config.json``; a legacy HDF5 file (Keras 2 and TF1-era) carries a ``model_config`` attribute.
Every problem with the input is a :class:`GradscopeInputError` with a one-line message that says
what to do.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError, first_line

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"

#: ``(model_config, optimizer_config, keras_version, loss)`` as a file stores them.
StoredConfig = tuple[Mapping[str, Any], Mapping[str, Any] | None, str | None, Any]


def sniff_format(path: Path) -> str:
    """Decides a model file's format from its first bytes.

    Args:
        path: the file to look at.

    Returns:
        ``"keras"`` for a zip archive, ``"h5"`` for an HDF5 file.

    Raises:
        GradscopeInputError: if the path is missing, a directory (a SavedModel is named as
            such), empty, or neither format.

    Example:
        >>> sniff_format(Path("model.h5"))  # doctest: +SKIP
        'h5'
    """
    if not path.exists():
        raise GradscopeInputError(
            f"No file at '{path}'. Check the path of the model file (.keras or .h5)."
        )
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            raise GradscopeInputError(
                f"'{path}' is a TensorFlow SavedModel directory, which gradscope cannot audit; "
                "load it where it was made and re-save with model.save('model.keras')."
            )
        raise GradscopeInputError(f"'{path}' is a directory; pass a model file (.keras or .h5).")
    if path.stat().st_size == 0:
        raise GradscopeInputError(
            f"'{path}' is empty (0 bytes); it is not a model. Save the model again."
        )
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    if head == _HDF5_MAGIC:
        return "h5"
    raise GradscopeInputError(
        f"'{path}' is neither a .keras archive nor an HDF5 (.h5) model file; gradscope audits "
        "models saved with model.save('model.keras') or model.save('model.h5')."
    )


def read_stored_config(path: Path, fmt: str) -> StoredConfig:
    """Reads the configs a model file stores, without deserializing (running) anything.

    Args:
        path: the model file.
        fmt: its format, from :func:`sniff_format`.

    Returns:
        ``(model_config, optimizer_config, keras_version, loss)``; the optimizer, version and
        loss are None when the file does not record them.

    Raises:
        GradscopeInputError: if the file is truncated, corrupt, or not a saved Keras model.

    Example:
        >>> config, optimizer, version, loss = read_stored_config(path, "h5")  # doctest: +SKIP
    """
    return _read_keras_zip(path) if fmt == "keras" else _read_hdf5(path)


def _read_hdf5(path: Path) -> StoredConfig:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            if "model_config" not in attrs:
                hint = (
                    "it holds weights only (save_weights); rebuild the model in code and "
                    "load_weights, then save with model.save('model.keras')"
                    if "layer_names" in attrs or "model_weights" in h5
                    else "it has no model_config attribute; pass a file written by "
                    "model.save('model.keras') or model.save('model.h5')"
                )
                raise GradscopeInputError(
                    f"'{path}' is an HDF5 file but not a saved Keras model: {hint}."
                )
            config = _json_attr(attrs["model_config"], path, "model_config")
            training = attrs.get("training_config")
            training_cfg = (
                _json_attr(training, path, "training_config") if training is not None else None
            )
            version = attrs.get("keras_version")
    except OSError as err:
        raise GradscopeInputError(
            f"'{path}' is a truncated or corrupt HDF5 file ({first_line(err)}); "
            "save the model again."
        ) from err
    training_cfg = training_cfg if isinstance(training_cfg, Mapping) else {}
    optimizer = training_cfg.get("optimizer_config")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return config, optimizer, None if version is None else str(version), training_cfg.get("loss")


def _read_keras_zip(path: Path) -> StoredConfig:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise GradscopeInputError(
                    f"'{path}' is a zip archive but not a .keras model (no config.json); pass a "
                    "file written by model.save('model.keras')."
                )
            config = json.loads(archive.read("config.json"))
            meta = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except GradscopeInputError:
        raise  # already says what is wrong (it is a ValueError too: keep it from the branch below)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise GradscopeInputError(
            f"'{path}' is a truncated or corrupt .keras archive ({first_line(err)}); "
            "save the model again."
        ) from err
    except ValueError as err:
        raise GradscopeInputError(
            f"'{path}' has an unreadable config.json ({first_line(err)}); save the model again."
        ) from err
    if not isinstance(config, Mapping):
        raise GradscopeInputError(
            f"'{path}' has a config.json that is not a model config; save the model again."
        )
    compile_cfg = config.get("compile_config")
    compile_cfg = compile_cfg if isinstance(compile_cfg, Mapping) else {}
    # Recent Keras 3 versions do not store the optimizer in compile_config; then it is unknown.
    optimizer = compile_cfg.get("optimizer")
    optimizer = optimizer if isinstance(optimizer, Mapping) else None
    version = meta.get("keras_version") if isinstance(meta, Mapping) else None
    return config, optimizer, version, compile_cfg.get("loss")


def _json_attr(value: Any, path: Path, name: str) -> Mapping[str, Any]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as err:
        raise GradscopeInputError(
            f"'{path}' has an unreadable {name} attribute ({first_line(err)})."
        ) from err
    if not isinstance(data, Mapping):
        raise GradscopeInputError(f"'{path}' has a {name} attribute that is not a JSON object.")
    return data
