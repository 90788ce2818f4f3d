"""Refuse a file whose config declares more weights than the file can hold.

Keras allocates and initializes every variable before it reads a single stored weight, so a
few-KB file declaring a 100,000 x 200,000 Dense kernel would make it allocate 80 GB. The weights
are counted without allocating any, and compared with what the file's bytes could store.
"""

from __future__ import annotations

import copy
import math
import zipfile
from collections.abc import Mapping
from typing import Any

from gradscope.errors import GradscopeInputError
from gradscope.model.legacy import upgrade_legacy_config
from gradscope.model.stored import StoredModel

#: A stored weight takes at least this many bytes in a model file (int8-quantized; float32 takes
#: 4), so a file declaring more weights than it has bytes cannot be an honest model file.
MIN_BYTES_PER_WEIGHT = 1
#: Deflate never expands data by more than about 1032:1 (zlib's technical bound), so a compressed
#: .keras archive cannot hold more than this many bytes per byte on disk.
MAX_DEFLATE_RATIO = 1032


def declared_weights(
    stored: StoredModel, unsafe: bool = False, custom_objects: Mapping[str, Any] | None = None
) -> int | None:
    """Counts the weights a stored model declares, without allocating any of them.

    The model is rebuilt from its config inside ``keras.StatelessScope(initialize_variables=
    False)``: variables get their shapes but no memory.

    Args:
        stored: what the file declares (see :func:`gradscope.model.loader.inspect_model_file`).
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
    # model's own weights matter here. A private deep copy: Keras's deserialization pops keys
    # out of the config it is given (a Functional's layers and wiring), and the stored config
    # must stay whole for static rules (stored.spec) read after loading.
    config = {k: copy.deepcopy(v) for k, v in stored.model_config.items() if k != "compile_config"}
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

    An honest file stores every weight (at least :data:`MIN_BYTES_PER_WEIGHT` bytes each).

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
        raise GradscopeInputError(
            f"'{stored.path}' declares {declared:,} weights but is only "
            f"{stored.path.stat().st_size:,} bytes, so it is crafted or truncated; refusing to "
            "allocate them. If the model is yours, save the model again."
        )
