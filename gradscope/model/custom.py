"""``--custom-objects module:name``: the user's own classes and functions for loading a file.

A file that uses custom layers (or losses, activations, ...) can only be rebuilt with their code.
Taking that code from the file is what ``--unsafe`` allows; ``--custom-objects`` instead imports
it by name from a module the user points to (installed, or on ``PYTHONPATH``), and hands it to
Keras's deserialization as ``custom_objects``. Nothing in the file is executed, so the safe
loader's other checks (Lambda layers, unknown objects not named here) stay on.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from gradscope.errors import GradscopeInputError, first_line

#: What the option looks like, for messages.
FORM = "module:name (e.g. my_layers:Scale)"


def _bad(spec: str, what: str, todo: str) -> GradscopeInputError:
    return GradscopeInputError(f"--custom-objects '{spec}': {what}; {todo}")


def _import(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and module_name.split(".")[0] != err.name.split(".")[0]:
            # The module exists but one of its own imports is missing: say which.
            raise _bad(
                spec,
                f"importing '{module_name}' failed: it needs '{err.name}', which is not installed",
                f"install '{err.name}' in this Python environment",
            ) from err
        raise _bad(
            spec,
            f"no module named '{module_name}' in this Python environment",
            "install it, or put the folder that holds it on PYTHONPATH; without it the file's "
            "custom objects are refused (--unsafe runs the file's own code: trusted files only)",
        ) from err
    except Exception as err:  # the user's module raised while importing
        raise _bad(
            spec,
            f"importing '{module_name}' failed ({type(err).__name__}: {first_line(err)})",
            "fix the module so that `import " + module_name + "` works, then retry",
        ) from err


def import_custom_objects(specs: Iterable[str]) -> dict[str, Any]:
    """Imports ``module:name`` objects for Keras's ``custom_objects``.

    Each object is registered under its own name and, if it was registered with
    ``keras.saving.register_keras_serializable``, under its registered name too (Keras stores
    that one in the file, e.g. ``"my_package>Scale"``).

    Args:
        specs: ``"module:name"`` strings; ``name`` may be dotted (``"module:Outer.Inner"``).

    Returns:
        name -> object, ready for ``load_model_safely(..., custom_objects=...)``.

    Raises:
        GradscopeInputError: one line saying what was wrong and what to do, for a malformed
            spec, a module that cannot be imported or an object the module does not have.

    Example:
        >>> import_custom_objects(["keras.layers:Dense"])["Dense"].__name__
        'Dense'
    """
    import keras

    out: dict[str, Any] = {}
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        module_name, attr = module_name.strip(), attr.strip()
        if not (sep and module_name and attr):
            raise GradscopeInputError(f"--custom-objects takes {FORM}. Received: '{spec}'")
        obj: Any = _import(spec, module_name)
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise _bad(
                    spec,
                    f"module '{module_name}' has no '{attr}'",
                    f"check the spelling; it defines {_public(obj)}",
                )
            obj = getattr(obj, part)
        out[attr.rsplit(".", 1)[-1]] = obj
        registered = keras.saving.get_registered_name(obj)
        if registered:
            out.setdefault(registered, obj)
    return out


def _public(module: Any) -> str:
    names = sorted(n for n in dir(module) if not n.startswith("_"))
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return shown or "no public names"
