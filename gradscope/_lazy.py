"""Lazy package exports (PEP 562): names resolve, and their modules import, on first use.

Packages whose public names live in modules that import TensorFlow use this, so that importing
a light module next to them (the CLI, the findings, the fix catalog, the renderers) does not
pay TensorFlow's import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Builds a package's ``__getattr__`` and ``__dir__`` for lazily imported names.

    Args:
        package: the package's ``__name__`` (for error messages).
        exports: public name -> module that defines it.
        namespace: the package's ``globals()``; a resolved name is cached there.

    Returns:
        ``(__getattr__, __dir__)`` to assign at module level.

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"GradScope": "gradscope.collect"},
        ...                                     globals())  # doctest: +SKIP
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(import_module(exports[name]), name)
            namespace[name] = value  # later lookups skip __getattr__
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
