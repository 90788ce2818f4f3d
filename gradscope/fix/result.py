"""The result of ``gradscope fix``: what each candidate did, how the search went, the verdict.

Plain data (the model aside) shared by :mod:`gradscope.fix.auto`, the terminal summary, the HTML
report and ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from gradscope.detect.summary import GRAD_RATIO_KEY
from gradscope.findings import json_safe
from gradscope.fix.plan import FixPlan
from gradscope.fix.trials import Verification
from gradscope.trial.setup import TrainingSetup


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one candidate.

    Attributes:
        fix_id: the candidate's label (a fix id, or fix ids joined by `` + ``).
        kept: True if it was verified and kept.
        reason: one line: why kept or dropped.
        verification: its trial comparison against the model before this step, if one ran.
        fixes: the fix ids it applied (default: ``(fix_id,)``).
        round: ``"plan"``, ``"single"``, ``"combination"`` or ``"apply"`` (``--apply``).
    """

    fix_id: str
    kept: bool
    reason: str
    verification: Verification | None = None
    fixes: tuple[str, ...] = ()
    round: str = "plan"

    @property
    def fix_ids(self) -> tuple[str, ...]:
        """The fix ids this step applies."""
        return self.fixes or (self.fix_id,)

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict (the verification summarized, with learning curves).

        Returns:
            ``{"fix_id", "fixes", "round", "kept", "reason", "verified", "learns_better",
            "learning", "resolved", "remaining", "first_last_grad_ratio": {"before", "after"}
            or None, "curves": {"before", "after"} or None}``.
        """
        v = self.verification
        curves = None
        if v is not None and v.before.curve is not None and v.after.curve is not None:
            curves = {"before": v.before.curve.to_json(), "after": v.after.curve.to_json()}
        return {
            "fix_id": self.fix_id,
            "fixes": list(self.fix_ids),
            "round": self.round,
            "kept": self.kept,
            "reason": self.reason,
            "verified": None if v is None else v.verified,
            "learns_better": None if v is None else v.learns_better,
            "learning": None if v is None else v.learning,
            "resolved": [] if v is None else list(v.resolved),
            "remaining": [] if v is None else list(v.remaining),
            GRAD_RATIO_KEY: None
            if v is None
            else {
                "before": json_safe(v.before.first_last_grad_ratio),
                "after": json_safe(v.after.first_last_grad_ratio),
            },
            "curves": curves,
        }


@dataclass(frozen=True)
class SearchInfo:
    """How the search went.

    Attributes:
        budget_seconds: the time budget.
        elapsed_seconds: wall-clock time of the whole fix, trials included.
        tried: candidates trialled.
        stopped_by_budget: True if candidates were left untried for lack of time.
        not_tried: labels of the candidates left untried.
        open_kinds: targeted finding kinds still present on the returned model.
        seeds: the seeds the original was trialled on (:mod:`gradscope.fix.seeds`).
        seed: the seed of the search's trials.
        targets: the kinds the search went after, pseudo-kinds (``no_learning``,
            ``unsteady_learning``) included.
    """

    budget_seconds: float
    elapsed_seconds: float
    tried: int
    stopped_by_budget: bool = False
    not_tried: tuple[str, ...] = ()
    open_kinds: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    seed: int = 0
    targets: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: candidates, time, seeds, and what was left untried.

        Returns:
            e.g. ``"Search: 1 candidate(s) trialled in 14 s of a 120 s budget; the original's
            trials on seeds 0, 1, 2 ended far apart: the search trained on the worst, seed 2."``

        Example:
            >>> SearchInfo(120.0, 14.2, 1).describe()
            'Search: 1 candidate(s) trialled in 14 s of a 120 s budget.'
        """
        text = (
            f"Search: {self.tried} candidate(s) trialled in {self.elapsed_seconds:.0f} s of a "
            f"{self.budget_seconds:g} s budget"
        )
        if len(self.seeds) > 1:
            seeds = ", ".join(str(s) for s in self.seeds)
            if "unsteady_learning" in self.targets:
                text += f"; the original's trials on seeds {seeds} ended far apart: the search "
                text += f"trained on the worst, seed {self.seed}"
            elif self.targets:
                earlier = ", ".join(str(s) for s in self.seeds[:-1])
                text += f"; the original's trials on seeds {earlier} showed nothing to fix, on "
                text += f"seed {self.seed} they did: the search trained on it"
            else:
                text += f"; the original's trials on seeds {seeds} showed nothing to fix"
        if self.not_tried:
            text += f"; not tried for lack of time: {', '.join(self.not_tried)}"
        return text + "."

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of the search."""
        return {
            "budget_seconds": self.budget_seconds,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "tried": self.tried,
            "stopped_by_budget": self.stopped_by_budget,
            "not_tried": list(self.not_tried),
            "open_kinds": list(self.open_kinds),
            "seeds": list(self.seeds),
            "seed": self.seed,
            "targets": list(self.targets),
        }


@dataclass(frozen=True)
class FixResult:
    """The outcome of fixing a model.

    Attributes:
        model: the fixed model (the original object if nothing was kept).
        overall: the original versus the final model, on the same trial.
        outcomes: per candidate, kept or not and why.
        plan: the plan followed (``auto_fix`` only).
        setup: how the trials trained (optimizer, learning rate, loss, batch size, sources).
        search: how the search went (``auto_fix`` only).
    """

    model: keras.Model
    overall: Verification
    outcomes: tuple[StepOutcome, ...]
    plan: FixPlan | None = None
    setup: TrainingSetup | None = None
    search: SearchInfo | None = field(default=None)

    @property
    def applied(self) -> list[str]:
        """Fix ids in the final model, in order."""
        return [f for o in self.outcomes if o.kept for f in o.fix_ids]

    @property
    def verified(self) -> bool:
        """True if at least one fix was kept and the final model passes verification."""
        return bool(self.applied) and self.overall.verified

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of the result.

        Returns:
            ``{"applied", "verified", "outcomes", "plan", "overall", "setup", "search",
            "curves"}``; ``curves`` holds the original's and the final model's learning curves.
        """
        b, a = self.overall.before.curve, self.overall.after.curve
        return {
            "applied": self.applied,
            "verified": self.verified,
            "outcomes": [o.to_json() for o in self.outcomes],
            "plan": None if self.plan is None else self.plan.to_json(),
            "overall": self.overall.to_json(),
            "setup": None if self.setup is None else self.setup.to_json(),
            "search": None if self.search is None else self.search.to_json(),
            "curves": {
                "before": None if b is None else b.to_json(),
                "after": None if a is None else a.to_json(),
            },
        }


__all__ = ["FixResult", "SearchInfo", "StepOutcome"]
