"""gradscope: tells you why your TensorFlow/Keras network is not learning, and fixes it.

Public API::

    from gradscope import GradScope, Scope, load_run

The names are resolved lazily (PEP 562) so that ``gradscope --version`` and the CLI's argument
parsing do not pay for importing TensorFlow, and the CLI can quiet TensorFlow's C++ logging
before it loads.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gradscope._version import __version__

if TYPE_CHECKING:
    from gradscope.collect import GradScope, Scope
    from gradscope.data import Run, load_run
    from gradscope.findings import Finding, Severity

_LAZY = {
    "GradScope": "gradscope.collect",
    "Scope": "gradscope.collect",
    "Run": "gradscope.data",
    "load_run": "gradscope.data",
    "Finding": "gradscope.findings",
    "Severity": "gradscope.findings",
}

__all__ = ["Finding", "GradScope", "Run", "Scope", "Severity", "__version__", "load_run"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'gradscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
