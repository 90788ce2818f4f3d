"""Write a fixed model atomically: a temporary file in the target folder, then ``os.replace``."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from gradscope.errors import GradscopeInputError


def save_model_atomically(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Saves a model as ``.keras`` so that ``path`` is either the old file or the complete new one.

    Args:
        model: the model to save.
        path: the target, ending in ``.keras``.

    Returns:
        The path written.

    Raises:
        GradscopeInputError: if the name does not end in ``.keras`` or the folder is missing.

    Example:
        >>> save_model_atomically(fixed, "fixed.keras")  # doctest: +SKIP
    """
    target = Path(path)
    if target.suffix != ".keras":
        raise GradscopeInputError(
            f"The fixed model is saved as .keras; name it '*.keras'. Received: '{target}'"
        )
    if not target.parent.is_dir():
        raise GradscopeInputError(f"No folder '{target.parent}' to write '{target.name}' into.")
    if target.is_dir():
        raise GradscopeInputError(f"'{target}' is a directory; pass a file name ending in .keras.")
    # Same folder, so os.replace is an atomic rename on the same file system.
    tmp = target.parent / f".{target.stem}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise GradscopeInputError(
            f"Cannot write '{target}' ({err.strerror or err}); pass -o with a writable path."
        ) from err
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
