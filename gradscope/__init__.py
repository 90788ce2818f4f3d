"""gradscope: tells you why your TensorFlow/Keras network is not learning, and fixes it.

Public API::

    from gradscope import GradScope, Scope, load_run
"""

from gradscope._version import __version__
from gradscope.collect import GradScope, Scope
from gradscope.data import Run, load_run
from gradscope.findings import Finding, Severity

__all__ = ["Finding", "GradScope", "Run", "Scope", "Severity", "__version__", "load_run"]
