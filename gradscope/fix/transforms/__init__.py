"""Fix transforms: each fix id -> a function returning a NEW model with the fix applied.

The input model is never mutated (layers are rebuilt from their configs, weights copied), and
weights of untouched layers are preserved. What each transform changes follows Géron, *Hands-On
Machine Learning*, ch. 11: He init for the ReLU family, LeCun for SELU, Glorot for
none/tanh/sigmoid/softmax (:mod:`.init`); activation swaps (:mod:`.activation`);
BatchNormalization after each hidden layer, optionally before the activation with
``use_bias=False`` on the layer before it (:mod:`.batch_norm`); clipping and a lower learning rate
on the optimizer (:mod:`.optimizer`). The output head (the last kernel layers and their
activation) is never changed: its activation belongs to the task. :mod:`.registry` maps fix ids
to transforms and applies them in stage order.

Example:
    >>> fixed = apply_fix(model, "relu_activation")  # doctest: +SKIP
    >>> fixed = apply_fixes(model, ["he_init", "batch_norm"])  # doctest: +SKIP
"""

from __future__ import annotations

from gradscope.fix.transforms.registry import (
    TRANSFORMS,
    Stage,
    Transform,
    apply_fix,
    apply_fixes,
    not_applicable_reason,
)
from gradscope.model.rebuild import FixNotApplicable, UnsupportedModelError

__all__ = [
    "TRANSFORMS",
    "FixNotApplicable",
    "Stage",
    "Transform",
    "UnsupportedModelError",
    "apply_fix",
    "apply_fixes",
    "not_applicable_reason",
]
