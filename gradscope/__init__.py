"""gradscope: tells you why your TensorFlow/Keras network is not learning, and fixes it.

Public API::

    from gradscope import GradScope, Scope, list_runs, load_run

The names are resolved lazily (PEP 562) so that ``gradscope --version`` and the CLI's argument
parsing do not pay for importing TensorFlow, and the CLI can quiet TensorFlow's C++ logging
before it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradscope._lazy import lazy_exports
from gradscope._version import __version__

if TYPE_CHECKING:
    from gradscope.collect import GradScope, Scope
    from gradscope.data import Run, list_runs, load_run
    from gradscope.findings import Finding, Severity

_LAZY = {
    "GradScope": "gradscope.collect",
    "Scope": "gradscope.collect",
    "Run": "gradscope.data",
    "load_run": "gradscope.data",
    "list_runs": "gradscope.data",
    "Finding": "gradscope.findings",
    "Severity": "gradscope.findings",
}

__all__ = [
    "Finding",
    "GradScope",
    "Run",
    "Scope",
    "Severity",
    "__version__",
    "list_runs",
    "load_run",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
