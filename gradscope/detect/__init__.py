"""Run detectors: pure functions from a recorded run to findings.

Importing this package registers every detector module below; :func:`detect` runs them all.
"""

# Imported for their registration side effect (each module registers one detector).
from gradscope.detect import (  # noqa: F401
    dying_relu,
    exploding,
    nonfinite,
    saturation,
    slow_convergence,
    unstable_loss,
    vanishing,
)
from gradscope.detect.base import RunDetector, detect, register, registered

__all__ = ["RunDetector", "detect", "register", "registered"]
