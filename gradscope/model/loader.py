"""Safe model loading: inspect the stored config first, deserialize only what is safe.

Supported: ``.keras`` (zip with ``config.json``) and legacy HDF5 (``.h5``/``.hdf5``, Keras 2 and
TF1-era files with a ``model_config`` attribute). The format is decided by the file's magic bytes,
not its name. Before anything is deserialized the stored config is scanned for code that would
run on load (``Lambda`` layers carry Python bytecode; unknown classes need user code); such files
are refused unless ``unsafe=True``. Every problem with the input is a :class:`GradscopeInputError`
with a one-line message.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError, first_line
from gradscope.model.spec import ModelSpec, spec_from_config

#: A stored weight takes at least this many bytes in a model file (int8-quantized; float32 takes
#: 4), so a file declaring more weights than it has bytes cannot be an honest model file.
MIN_BYTES_PER_WEIGHT = 1
#: Deflate never expands data by more than about 1032:1 (zlib's technical bound), so a compressed
#: .keras archive cannot hold more than this many bytes per byte on disk.
MAX_DEFLATE_RATIO = 1032

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
# Serialization markers in Keras configs that are data, not classes to look up.
_MARKERS = frozenset(
    {
        "__keras_tensor__",
        "__tuple__",
        "__numpy__",
        "__tensor__",
        "__bytes__",
        "__typespec__",
        "__ellipsis__",
        "__slice__",
        "__dict__",
        "DTypePolicy",
        "FloatDTypePolicy",
        "QuantizedDTypePolicy",
        "Policy",
        "Functional",
        "Sequential",
        "Model",
    }
)


@dataclass(frozen=True)
class StoredModel:
    """What a model file declares, read without deserializing anything.

    Attributes:
        path: the file.
        format: ``"keras"`` or ``"h5"``.
        model_config: the stored model config.
        optimizer_config: the stored optimizer config, if the model was saved compiled.
        keras_version: the Keras version that wrote the file, if recorded.
        lambda_layers: names of Lambda layers (Python bytecode that runs on load).
        unknown_objects: class names Keras does not know (custom code needed).
        loss: the stored loss config (a name such as ``"mse"`` or a serialized loss), if any.
    """

    path: Path
    format: str
    model_config: Mapping[str, Any]
    optimizer_config: Mapping[str, Any] | None
    keras_version: str | None
    lambda_layers: tuple[str, ...] = ()
    unknown_objects: tuple[str, ...] = ()
    loss: Any = None

    @property
    def spec(self) -> ModelSpec:
        """The static description of the stored model."""
        return spec_from_config(self.model_config, self.optimizer_config)

    @property
    def needs_unsafe(self) -> bool:
        """True if loading would run code from the file or from unknown custom objects."""
        return bool(self.lambda_layers or self.unknown_objects)


@dataclass
class LoadedModel:
    """A safely loaded model.

    Attributes:
        stored: what the file declares.
        model: the deserialized Keras model.
        spec: its static description.
    """

    stored: StoredModel
    model: Any
    spec: ModelSpec = field(init=False)

    def __post_init__(self) -> None:
        self.spec = self.stored.spec


class ModelRebuildError(GradscopeInputError):
    """The file is a safe Keras model file, but this Keras cannot rebuild the model.

    The stored config is still available (``stored``), so static rules can run on it.
    """

    def __init__(self, message: str, stored: StoredModel) -> None:
        super().__init__(message)
        self.stored = stored


def _fail(message: str) -> GradscopeInputError:
    return GradscopeInputError(message)


def _check_path(path: Path) -> str:
    """Returns the detected format of ``path`` or raises a clear GradscopeInputError."""
    if not path.exists():
        raise _fail(f"No file at '{path}'. Check the path of the model file (.keras or .h5).")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            raise _fail(
                f"'{path}' is a TensorFlow SavedModel directory, which gradscope cannot audit; "
                "load it where it was made and re-save with model.save('model.keras')."
            )
        raise _fail(f"'{path}' is a directory; pass a model file (.keras or .h5).")
    size = path.stat().st_size
    if size == 0:
        raise _fail(f"'{path}' is empty (0 bytes); it is not a model. Save the model again.")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    if head == _HDF5_MAGIC:
        return "h5"
    raise _fail(
        f"'{path}' is neither a .keras archive nor an HDF5 (.h5) model file; gradscope audits "
        "models saved with model.save('model.keras') or model.save('model.h5')."
    )


_Read = tuple[Mapping[str, Any], Mapping[str, Any] | None, str | None, Any]


def _read_hdf5(path: Path) -> _Read:
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
                raise _fail(f"'{path}' is an HDF5 file but not a saved Keras model: {hint}.")
            config = _json_attr(attrs["model_config"], path, "model_config")
            training = attrs.get("training_config")
            training_cfg = (
                _json_attr(training, path, "training_config") if training is not None else None
            )
            version = attrs.get("keras_version")
    except OSError as err:
        raise _fail(
            f"'{path}' is a truncated or corrupt HDF5 file ({_first_line(err)}); "
            "save the model again."
        ) from err
    training_cfg = training_cfg if isinstance(training_cfg, Mapping) else {}
    optimizer = training_cfg.get("optimizer_config")
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return config, optimizer, None if version is None else str(version), training_cfg.get("loss")


def _read_keras_zip(path: Path) -> _Read:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise _fail(
                    f"'{path}' is a zip archive but not a .keras model (no config.json); pass a "
                    "file written by model.save('model.keras')."
                )
            config = json.loads(archive.read("config.json"))
            meta = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
    except GradscopeInputError:
        raise  # already says what is wrong (it is a ValueError too: keep it from the branch below)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise _fail(
            f"'{path}' is a truncated or corrupt .keras archive ({_first_line(err)}); "
            "save the model again."
        ) from err
    except ValueError as err:
        raise _fail(
            f"'{path}' has an unreadable config.json ({_first_line(err)}); save the model again."
        ) from err
    if not isinstance(config, Mapping):
        raise _fail(f"'{path}' has a config.json that is not a model config; save the model again.")
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
        raise _fail(f"'{path}' has an unreadable {name} attribute ({_first_line(err)}).") from err
    if not isinstance(data, Mapping):
        raise _fail(f"'{path}' has a {name} attribute that is not a JSON object.")
    return data


def _first_line(err: BaseException) -> str:
    return first_line(err)


_Owner = tuple[str, str] | None


def _walk(node: Any, owner: _Owner = None) -> Iterator[tuple[Mapping[str, Any], _Owner]]:
    """Yields every mapping in a config with the (name, class) of the layer that holds it."""
    if isinstance(node, Mapping):
        yield node, owner
        cls, inner = node.get("class_name"), node.get("config")
        name = inner.get("name") if isinstance(inner, Mapping) else None
        if isinstance(cls, str) and isinstance(name, str):
            owner = (name, cls)
        for value in node.values():
            yield from _walk(value, owner)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, owner)


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    import keras

    names: set[str] = set()
    for module in (
        keras.layers,
        keras.initializers,
        keras.regularizers,
        keras.constraints,
        keras.optimizers,
        keras.losses,
        keras.metrics,
        keras.activations,
        keras.optimizers.schedules,
    ):
        names.update(n for n in dir(module) if not n.startswith("_"))
    return frozenset(names)


def scan_config(config: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Finds what would execute code on load in a stored config.

    Args:
        config: a stored model config (any nesting).

    Returns:
        ``(lambda_layers, unknown_objects)``: names of Lambda layers (and serialized lambdas
        elsewhere), and class names Keras does not know.

    Example:
        >>> scan_config({"class_name": "Lambda", "config": {"name": "double"}})
        (('double',), ())
    """
    lambdas: list[str] = []
    unknown: list[str] = []
    known = _known_names()
    for node, owner in _walk(config):
        cls = node.get("class_name")
        if not isinstance(cls, str):
            continue
        inner = node.get("config")
        name = inner.get("name", cls) if isinstance(inner, Mapping) else cls
        registered = node.get("registered_name")
        module = node.get("module")
        if cls == "Lambda":
            lambdas.append(str(name))
        elif cls == "__lambda__":
            # Keras 3 stores a Lambda layer's function as a nested __lambda__: name the layer
            # once. Elsewhere (e.g. a lambda activation) name the layer that holds it.
            if owner is None:
                lambdas.append("<serialized lambda>")
            elif owner[1] != "Lambda":
                lambdas.append(f"{owner[0]} (serialized lambda)")
        elif cls == "function":
            # A function reference: fine if Keras's own (e.g. an activation), else user code.
            if not (isinstance(module, str) and module.startswith("keras")) and inner not in known:
                unknown.append(str(inner))
        elif cls in _MARKERS or (
            cls in known and (module is None or str(module).startswith("keras"))
        ):
            if isinstance(registered, str) and ">" in registered:
                unknown.append(registered)
        else:
            unknown.append(registered if isinstance(registered, str) and registered else cls)
    return tuple(dict.fromkeys(lambdas)), tuple(dict.fromkeys(unknown))


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
    fmt = _check_path(file)
    reader = _read_keras_zip if fmt == "keras" else _read_hdf5
    config, optimizer, version, loss = reader(file)
    if "class_name" not in config:
        raise _fail(f"'{file}' does not contain a Keras model config (no class_name).")
    lambdas, unknown = scan_config(config)
    return StoredModel(file, fmt, config, optimizer, version, lambdas, unknown, loss)


def load_model_safely(
    path: str | os.PathLike[str],
    unsafe: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Loads a model file for auditing, refusing files that would run code unless ``unsafe``.

    Args:
        path: a ``.keras`` or HDF5 model file.
        unsafe: allow Lambda layers and unknown custom objects (runs code from the file: only
            for files you trust). Also disables Keras's ``safe_mode``.
        custom_objects: classes/functions for custom objects, by name; names given here are not
            "unknown".

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
        raise _fail(
            f"Refusing to load '{stored.path}': it contains {' and '.join(parts)} that would run "
            "code on load; re-run with --unsafe only if you trust this file."
        )
    model = _deserialize(stored, unsafe, custom)
    if not model.trainable_weights:
        raise _fail(
            f"'{stored.path}' has no trainable weights (all layers frozen or weight-free), so "
            "there are no gradients to audit; set layer.trainable = True on the layers you train "
            "and save the model again."
        )
    return LoadedModel(stored, model)


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


@contextmanager
def unsafe_deserialization(enabled: bool) -> Iterator[None]:
    """Lets Keras rebuild Lambda layers while the block runs, if the user passed ``--unsafe``.

    Loading is not the only deserialization: the probe and the fix trials copy the model
    (``clone_model``), which rebuilds every layer from its config, and Keras's safe mode refuses
    a Lambda's bytecode there too. The scope ends with the block, so nothing else in the process
    becomes unsafe.

    Args:
        enabled: True to allow unsafe deserialization inside the block; False changes nothing.

    Yields:
        Nothing.

    Example:
        >>> with unsafe_deserialization(True):  # doctest: +SKIP
        ...     clone = keras.models.clone_model(model_with_lambda)
    """
    if not enabled:
        yield
        return
    from keras.src.saving.serialization_lib import SafeModeScope

    with SafeModeScope(safe_mode=False):
        yield


def declared_weights(
    stored: StoredModel, unsafe: bool = False, custom_objects: Mapping[str, Any] | None = None
) -> int | None:
    """Counts the weights a stored model declares, without allocating any of them.

    The model is rebuilt from its config inside ``keras.StatelessScope(initialize_variables=
    False)``: variables get their shapes but no memory.

    Args:
        stored: what the file declares (see :func:`inspect_model_file`).
        unsafe: allow Lambda layers and unknown custom objects (their code runs).
        custom_objects: custom classes/functions by name.

    Returns:
        The number of weight values (trainable or not), or None if the config cannot be rebuilt
        this way (the real load then reports what is wrong).

    Example:
        >>> declared_weights(inspect_model_file("model.h5"))  # doctest: +SKIP
        51
    """
    import keras

    # Compiling would create optimizer variables, which a stateless scope refuses; only the
    # model's own weights matter here.
    config = {k: v for k, v in stored.model_config.items() if k != "compile_config"}
    if stored.format == "h5":
        config = upgrade_legacy_config(config) or config
    from keras.src.backend.common import global_state

    custom = dict(custom_objects or {}) or None
    # Keras queues variables made in a stateless scope for initialization at the exit of the next
    # scope that initializes; ours must never be, so the queue is restored afterwards.
    queued = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            if stored.format == "h5":
                # The loader Keras itself uses for HDF5 configs (Keras 2 class names and layout).
                from keras.src.legacy.saving import saving_utils

                model = saving_utils.model_from_config(config, custom_objects=custom)
            else:
                model = keras.saving.deserialize_keras_object(
                    config, custom_objects=custom, safe_mode=not unsafe
                )
            return sum(math.prod(int(d) for d in v.shape) for v in model.weights)
    except Exception:
        return None
    finally:
        global_state.set_global_attribute("uninitialized_variables", queued)


def _capacity(stored: StoredModel) -> int:
    # The most weight bytes the file could possibly hold.
    size = stored.path.stat().st_size
    if stored.format == "keras":
        with zipfile.ZipFile(stored.path) as archive:
            if any(i.compress_type != zipfile.ZIP_STORED for i in archive.infolist()):
                return size * MAX_DEFLATE_RATIO
    return size


def check_declared_size(
    stored: StoredModel, unsafe: bool = False, custom_objects: Mapping[str, Any] | None = None
) -> None:
    """Refuses a file whose config declares more weights than the file can hold.

    Keras allocates and initializes every variable before it reads a single stored weight, so a
    few-KB file declaring a 100,000 x 200,000 Dense kernel would make it allocate 80 GB. An honest
    file stores every weight (at least :data:`MIN_BYTES_PER_WEIGHT` bytes each).

    Args:
        stored: what the file declares.
        unsafe: allow Lambda layers and unknown custom objects.
        custom_objects: custom classes/functions by name.

    Raises:
        GradscopeInputError: if the declared weights cannot fit in the file.

    Example:
        >>> check_declared_size(inspect_model_file("model.h5"))  # doctest: +SKIP
    """
    declared = declared_weights(stored, unsafe, custom_objects)
    if declared is None:
        return
    capacity = _capacity(stored)
    if declared * MIN_BYTES_PER_WEIGHT > capacity:
        raise _fail(
            f"'{stored.path}' declares {declared:,} weights but is only "
            f"{stored.path.stat().st_size:,} bytes, so it is crafted or truncated; refusing to "
            "allocate them. If the model is yours, save the model again."
        )


def _deserialize(stored: StoredModel, unsafe: bool, custom: dict[str, Any]) -> Any:
    import keras

    check_declared_size(stored, unsafe, custom)

    def load(path: Path) -> Any:
        # compile=False: the audit compiles its own clone; legacy HDF5 compile configs (e.g.
        # loss "mse" as keras.metrics.mse) often fail to deserialize in Keras 3.
        return keras.saving.load_model(
            path, custom_objects=custom or None, compile=False, safe_mode=not unsafe
        )

    upgraded = upgrade_legacy_config(stored.model_config) if stored.format == "h5" else None
    try:
        if upgraded is None:
            return load(stored.path)
        return _load_upgraded_copy(stored.path, upgraded, load)
    except GradscopeInputError:
        raise
    except Exception as err:
        # Any failure to rebuild is a property of the file (legacy layers, version skew).
        raise ModelRebuildError(
            f"Keras {keras.__version__} could not rebuild the model in '{stored.path}' "
            f"({type(err).__name__}: {_first_line(err)}); only static rules ran.",
            stored,
        ) from err


def _load_upgraded_copy(path: Path, config: Mapping[str, Any], load: Any) -> Any:
    # The user's file is never written: the upgraded config goes into a temporary copy.
    import h5py

    with tempfile.TemporaryDirectory(prefix="gradscope-legacy-") as tmp:
        copy = Path(tmp) / "model.h5"
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as h5:
            h5.attrs["model_config"] = json.dumps(config).encode("utf-8")
        return load(copy)
