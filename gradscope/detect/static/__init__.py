"""Static rules: findings from the architecture and configuration alone, no data needed.

Each rule is a pure function ``(spec, thresholds) -> list[Finding]`` registered with
:func:`static_rule` (:mod:`~gradscope.detect.static.registry`); :func:`static_findings` runs them
all. One module per family of rules; importing this package registers every rule. Rules never
import Keras.
"""

# Imported for their registration side effect (each module registers its rules); their order
# does not matter, static_findings sorts what they find.
from gradscope.detect.static import architecture, initialization, normalization, selu  # noqa: F401
from gradscope.detect.static.architecture import deep_saturating_stack, missing_clipping
from gradscope.detect.static.initialization import init_activation_mismatch
from gradscope.detect.static.normalization import degenerate_normalization
from gradscope.detect.static.registry import _RULES, StaticRule, static_findings, static_rule
from gradscope.detect.static.selu import selu_input_findings, selu_misconfigured

__all__ = [
    "_RULES",
    "StaticRule",
    "deep_saturating_stack",
    "degenerate_normalization",
    "init_activation_mismatch",
    "missing_clipping",
    "selu_input_findings",
    "selu_misconfigured",
    "static_findings",
    "static_rule",
]
