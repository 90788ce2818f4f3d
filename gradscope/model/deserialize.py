"""Deserialize a checked model file, and the one scope in which Keras may run a file's code.

Keras's ``safe_mode`` refuses a Lambda's bytecode; gradscope lifts it only when the user passed
``--unsafe``, and only for the block that needs it (:func:`unsafe_deserialization`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError, first_line
from gradscope.model.capacity import check_declared_size
from gradscope.model.legacy import load_upgraded_copy, upgrade_legacy_config
from gradscope.model.stored import ModelRebuildError, StoredModel


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


def deserialize(
    stored: StoredModel, unsafe: bool, custom: Mapping[str, Any], seed: int | None = None
) -> Any:
    """Rebuilds the Keras model of a file the loader has already checked.

    The declared size is checked first (:func:`gradscope.model.capacity.check_declared_size`);
    a legacy HDF5 config is upgraded in a temporary copy; the model is loaded uncompiled.

    Args:
        stored: what the file declares (the loader's refusals already passed).
        unsafe: disable Keras's ``safe_mode`` (Lambda layers, unknown objects).
        custom: custom classes/functions by name (may be empty).
        seed: if given, ``keras.utils.set_random_seed(seed)`` right before Keras rebuilds the
            model (after the size check, whose rebuild draws seeds too): its random layers then
            draw the same seeds as a copy made right after the same call, so the audit's probe
            can train the model it loaded instead of copying it.

    Returns:
        The Keras model.

    Raises:
        GradscopeInputError: if the file declares more weights than it can hold.
        ModelRebuildError: if this Keras cannot rebuild the model (the stored config stays
            available for static rules).

    Example:
        >>> model = deserialize(inspect_model_file("model.h5"), False, {})  # doctest: +SKIP
    """
    import keras

    check_declared_size(stored, unsafe, custom)
    if seed is not None:
        keras.utils.set_random_seed(seed)

    def load(path: Path) -> Any:
        # compile=False: the audit compiles its own clone; legacy HDF5 compile configs (e.g.
        # loss "mse" as keras.metrics.mse) often fail to deserialize in Keras 3.
        return keras.saving.load_model(
            path, custom_objects=dict(custom) or None, compile=False, safe_mode=not unsafe
        )

    upgraded = upgrade_legacy_config(stored.model_config) if stored.format == "h5" else None
    try:
        if upgraded is None:
            return load(stored.path)
        return load_upgraded_copy(stored.path, upgraded, load)
    except GradscopeInputError:
        raise
    except Exception as err:
        # Any failure to rebuild is a property of the file (legacy layers, version skew).
        raise ModelRebuildError(
            f"Keras {keras.__version__} could not rebuild the model in '{stored.path}' "
            f"({type(err).__name__}: {first_line(err)}); only static rules ran.",
            stored,
        ) from err
