"""Fixes: the catalog of remedies, clone-based transforms, plans, and verification by trial.

Example::

    from gradscope.fix import apply_fix, auto_fix, plan_fixes, verify
    fixed = apply_fix(model, "relu_activation")
    result = verify(model, fixed, x, y)
"""

from gradscope.fix.auto import FixResult, StepOutcome, auto_fix, fix_model
from gradscope.fix.catalog import CATALOG, Fix, fixes_for, get_fix
from gradscope.fix.plan import FixPlan, PlanStep, plan_fixes
from gradscope.fix.transform import (
    TRANSFORMS,
    FixNotApplicable,
    Stage,
    Transform,
    UnsupportedModelError,
    apply_fix,
    apply_fixes,
    not_applicable_reason,
)
from gradscope.fix.verify import TrialStats, Verification, run_trial, trial_data, verify

__all__ = [
    "CATALOG",
    "TRANSFORMS",
    "Fix",
    "FixNotApplicable",
    "FixPlan",
    "FixResult",
    "PlanStep",
    "Stage",
    "StepOutcome",
    "Transform",
    "TrialStats",
    "UnsupportedModelError",
    "Verification",
    "apply_fix",
    "apply_fixes",
    "auto_fix",
    "fix_model",
    "fixes_for",
    "get_fix",
    "not_applicable_reason",
    "plan_fixes",
    "run_trial",
    "trial_data",
    "verify",
]
