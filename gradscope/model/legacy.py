"""Legacy HDF5 files: Keras 2.2 / TF 1.x configs rewritten into the form Keras 3 reads.

The user's file is never written: an upgraded config goes into a temporary copy.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def upgrade_legacy_config(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Rewrites a Keras <= 2.2 Sequential config into the form Keras 3's HDF5 loader reads.

    Keras 2.2 stored a Sequential's config as a bare list of layers, with the input shape as
    ``batch_input_shape`` of the first layer. The upgrade wraps the list in
    ``{"name", "layers"}`` and turns the input shape into an explicit InputLayer.

    Args:
        config: the stored model config.

    Returns:
        The upgraded config, or None when nothing needed upgrading.

    Example:
        >>> upgrade_legacy_config({"class_name": "Sequential", "config": [
        ...     {"class_name": "Dense", "config": {"units": 1, "batch_input_shape": [None, 4]}}]
        ... })["config"]["layers"][0]["config"]["batch_shape"]
        [None, 4]
    """
    if config.get("class_name") != "Sequential":
        return None
    inner = config.get("config")
    if isinstance(inner, list):
        inner = {"name": "sequential", "layers": inner}
    elif not isinstance(inner, Mapping):
        return None
    layers = [dict(x) for x in inner.get("layers", []) if isinstance(x, Mapping)]
    changed = not isinstance(config.get("config"), Mapping)
    if layers and layers[0].get("class_name") != "InputLayer":
        first = dict(layers[0].get("config") or {})
        shape = first.pop("batch_input_shape", None)
        if shape is not None:
            first.pop("input_dim", None)
            layers[0] = {**layers[0], "config": first}
            dtype = first.get("dtype", "float32")
            input_layer = {
                "class_name": "InputLayer",
                "config": {"batch_shape": list(shape), "dtype": dtype, "name": "input_1"},
            }
            layers.insert(0, input_layer)
            changed = True
    if not changed:
        return None
    return {**config, "config": {**dict(inner), "layers": layers}}


def load_upgraded_copy(path: Path, config: Mapping[str, Any], load: Callable[[Path], Any]) -> Any:
    """Loads an HDF5 model file through a temporary copy that holds an upgraded config.

    Args:
        path: the user's HDF5 file (only read).
        config: the config to store in the copy (see :func:`upgrade_legacy_config`).
        load: loads a model from a path (the caller's Keras loading policy).

    Returns:
        Whatever ``load`` returns for the copy.

    Example:
        >>> load_upgraded_copy(path, upgraded, keras.saving.load_model)  # doctest: +SKIP
    """
    import h5py

    with tempfile.TemporaryDirectory(prefix="gradscope-legacy-") as tmp:
        copy = Path(tmp) / "model.h5"
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as h5:
            h5.attrs["model_config"] = json.dumps(config).encode("utf-8")
        return load(copy)
