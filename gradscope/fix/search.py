"""What ``fix --auto`` tries, in which order: single fixes, then combinations, within a budget.

Three rounds, each only for finding kinds still open on the model fixed so far:

1. **The plan** (:func:`gradscope.fix.plan.plan_fixes`): one fix per step, in the order that
   fits the model, one activation swap at most.
2. **The chapter's other single fixes** for each open kind, in the kind registry's order
   (:data:`gradscope.findings.KINDS`: e.g. LeakyReLU, then ELU for dying ReLUs), which the plan
   left out as alternatives.
3. **Combinations** (:data:`COMBINATIONS`) for kinds no single fix verified: Géron ch. 11 and
   AutoTrainer repair a diverging network with clipping *and* a smaller learning rate, a dying
   ReLU net with a leaky activation, He init and fresh biases together, a saturating net with
   BatchNormalization and a non-saturating activation.
4. **The learning rate** (:func:`learning_rate_candidates`) when the original's trial does not
   learn at all (:data:`NO_LEARNING`) and nothing above made it: a decade lower, a decade higher,
   then two decades each way (Géron ch. 11: the rate is the first hyperparameter to tune, by
   factors of 10). The short trial may show no detector finding, but a curve that does not move
   is evidence enough; the candidate must then make it learn.

5. **Steadier steps** (:func:`steadying_candidates`) when the original's trials on several seeds
   end far apart (:data:`UNSTEADY`, :mod:`gradscope.fix.seeds`) though none shows a finding: a
   rate a decade lower, clipping with it, two decades lower (Géron ch. 11: a rate too high makes
   training erratic; AutoTrainer lowers it for an oscillating loss). The candidate must learn
   better on the worst seed and end steady over all of them.

Every candidate is one :class:`Candidate`: fix ids with options, applied together to a copy
(:func:`apply_candidate`: fixes with nothing left to change are dropped, a candidate whose
changes were already tried is not tried again).

Example:
    >>> [c.label for c in COMBINATIONS["nonfinite"]]
    ['clip_norm + lower_learning_rate(÷10)', 'clip_norm + lower_learning_rate(÷100)', \
'clip_norm + lower_learning_rate(÷1000)']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import keras

from gradscope.findings import KINDS
from gradscope.fix.plan import FixPlan
from gradscope.fix.transforms import TRANSFORMS, FixNotApplicable, UnsupportedModelError, apply_fix


@dataclass(frozen=True)
class Candidate:
    """One change to try: one or more fixes applied together.

    Attributes:
        fixes: fix ids, applied in stage order.
        options: per fix id, options of its transform (e.g. ``{"factor": 100.0}``).
        answers: finding kinds it is meant to remove.
        round: ``"plan"``, ``"single"`` or ``"combination"``.
    """

    fixes: tuple[str, ...]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    answers: tuple[str, ...] = ()
    round: str = "plan"

    @property
    def label(self) -> str:
        """The fixes as one name, with options, e.g. ``clip_norm + lower_learning_rate(÷100)``.

        Example:
            >>> Candidate(("he_init",)).label
            'he_init'
        """
        return " + ".join(_label(f, self.options.get(f, {})) for f in self.fixes)

    def to_json(self) -> dict[str, Any]:
        """Returns ``{"fixes", "options", "answers", "round", "label"}``."""
        return {
            "fixes": list(self.fixes),
            "options": {k: dict(v) for k, v in self.options.items()},
            "answers": list(self.answers),
            "round": self.round,
            "label": self.label,
        }


def _label(fix_id: str, options: Mapping[str, Any]) -> str:
    if fix_id == "lower_learning_rate" and "factor" in options:
        return f"{fix_id}(÷{float(options['factor']):g})"
    if fix_id == "raise_learning_rate" and "factor" in options:
        return f"{fix_id}(×{float(options['factor']):g})"
    if not options:
        return fix_id
    return f"{fix_id}({', '.join(f'{k}={v}' for k, v in options.items())})"


def _lr(factor: float) -> tuple[str, dict[str, float]]:
    return ("lower_learning_rate", {"factor": factor})


def _combo(kind: str, *steps: str | tuple[str, Mapping[str, Any]]) -> Candidate:
    fixes, options = [], {}
    for step in steps:
        fix_id, opts = (step, {}) if isinstance(step, str) else step
        fixes.append(fix_id)
        if opts:
            options[fix_id] = dict(opts)
    return Candidate(tuple(fixes), MappingProxyType(options), (kind,), "combination")


def _diverging(kind: str) -> tuple[Candidate, ...]:
    # Clipping bounds each step; the smaller rate keeps the bounded steps from oscillating.
    # ÷10, ÷100, ÷1000: one order of magnitude at a time (Géron ch. 11's learning-rate search).
    return tuple(_combo(kind, "clip_norm", _lr(f)) for f in (10.0, 100.0, 1000.0))


def _saturating(kind: str) -> tuple[Candidate, ...]:
    return tuple(
        _combo(kind, "batch_norm", act)
        for act in ("relu_activation", "elu_activation", "leaky_relu_activation")
    )


#: Per finding kind, the combinations tried when no single fix verified, in order.
COMBINATIONS: Mapping[str, tuple[Candidate, ...]] = MappingProxyType(
    {
        "nonfinite": _diverging("nonfinite"),
        "exploding_gradients": (
            *_diverging("exploding_gradients"),
            _combo("exploding_gradients", "he_init", "clip_norm", _lr(10.0)),
        ),
        "dying_relu": (
            _combo("dying_relu", "leaky_relu_activation", "he_init", "zero_bias_init"),
            _combo("dying_relu", "elu_activation", "he_init", "zero_bias_init"),
            _combo("dying_relu", "leaky_relu_activation", "zero_bias_init", _lr(10.0)),
            _combo("dying_relu", "batch_norm", "leaky_relu_activation", "zero_bias_init"),
        ),
        "saturation": _saturating("saturation"),
        "deep_saturating_stack": _saturating("deep_saturating_stack"),
        "vanishing_gradients": (
            *_saturating("vanishing_gradients"),
            _combo("vanishing_gradients", "he_init", "batch_norm"),
        ),
    }
)


#: The pseudo-kind of a trial whose learning curve does not move (:func:`~.trials.learns`).
NO_LEARNING = "no_learning"


def learning_rate_candidates() -> Iterator[Candidate]:
    """Round 4: learning rates a decade, then two decades, lower and higher.

    Yields:
        Single-fix candidates answering :data:`NO_LEARNING` (``raise_learning_rate`` only when
        this gradscope has that transform).

    Example:
        >>> [c.label for c in learning_rate_candidates()][:2]
        ['lower_learning_rate(÷10)', 'raise_learning_rate(×10)']
    """
    for factor in (10.0, 100.0):
        yield Candidate(
            ("lower_learning_rate",),
            MappingProxyType({"lower_learning_rate": {"factor": factor}}),
            (NO_LEARNING,),
            "learning rate",
        )
        if "raise_learning_rate" in TRANSFORMS:
            yield Candidate(
                ("raise_learning_rate",),
                MappingProxyType({"raise_learning_rate": {"factor": factor}}),
                (NO_LEARNING,),
                "learning rate",
            )


#: The pseudo-kind of trials on several seeds that end too far apart (:func:`~.seeds.unsteady`).
UNSTEADY = "unsteady_learning"


def steadying_candidates() -> Iterator[Candidate]:
    """Round 5: a lower learning rate, with clipping, then lower still.

    Yields:
        Candidates answering :data:`UNSTEADY`.

    Example:
        >>> [c.label for c in steadying_candidates()]
        ['lower_learning_rate(÷10)', 'clip_norm + lower_learning_rate(÷10)', \
'lower_learning_rate(÷100)']
    """
    for steps in ((_lr(10.0),), ("clip_norm", _lr(10.0)), (_lr(100.0),)):
        yield dataclasses.replace(_combo(UNSTEADY, *steps), round="steadier steps")


def plan_candidates(plan: FixPlan) -> list[Candidate]:
    """Round 1: the plan's steps, one fix each.

    Args:
        plan: the plan.

    Returns:
        One :class:`Candidate` per step.

    Example:
        >>> [c.label for c in plan_candidates(plan)]  # doctest: +SKIP
        ['relu_activation', 'batch_norm']
    """
    return [Candidate((s.fix_id,), {}, s.answers, "plan") for s in plan.steps]


def single_candidates(kinds: Iterable[str]) -> Iterator[Candidate]:
    """Round 2: each open kind's automatic fixes, in the kind registry's (the chapter's) order.

    Args:
        kinds: the finding kinds still open.

    Yields:
        One single-fix :class:`Candidate` per fix with a transform.

    Example:
        >>> [c.label for c in single_candidates(["dying_relu"])][:2]
        ['leaky_relu_activation', 'elu_activation']
    """
    for kind in kinds:
        info = KINDS.get(kind)
        for fix_id in info.answers if info is not None else ():
            if fix_id in TRANSFORMS:
                yield Candidate((fix_id,), {}, (kind,), "single")


def combination_candidates(kinds: Iterable[str]) -> Iterator[Candidate]:
    """Round 3: the combinations of :data:`COMBINATIONS` for each open kind.

    Args:
        kinds: the finding kinds still open.

    Yields:
        The kinds' combinations, in order.

    Example:
        >>> next(combination_candidates(["saturation"])).label
        'batch_norm + relu_activation'
    """
    for kind in kinds:
        yield from COMBINATIONS.get(kind, ())


def apply_candidate(
    model: keras.Model, candidate: Candidate
) -> tuple[keras.Model, tuple[str, ...]]:
    """Applies a candidate's fixes in stage order, leaving out those with nothing to change.

    A combination's parts can overlap (a LeakyReLU swap already sets He init): a part that
    has nothing left to change is dropped rather than failing the whole candidate.

    Args:
        model: the model (never modified).
        candidate: the fixes and their options.

    Returns:
        ``(new model, fix ids applied)``.

    Raises:
        FixNotApplicable: if no part applies, or a single fix does not (its own reason).
        UnsupportedModelError: if the model cannot be rewritten.

    Example:
        >>> fixed, applied = apply_candidate(model, COMBINATIONS["nonfinite"][1])  # doctest: +SKIP
        >>> applied  # doctest: +SKIP
        ('clip_norm', 'lower_learning_rate')
    """
    order = sorted(candidate.fixes, key=lambda f: TRANSFORMS[f].stage)
    current, applied, reasons = model, [], []
    for fix_id in order:
        try:
            current = apply_fix(current, fix_id, **dict(candidate.options.get(fix_id, {})))
        except FixNotApplicable as err:
            if len(order) == 1:
                raise
            reasons.append(str(err))
            continue
        except UnsupportedModelError:
            raise
        applied.append(fix_id)
    if not applied:
        raise FixNotApplicable(f"{candidate.label}: nothing to change ({'; '.join(reasons)})")
    return current, tuple(applied)


__all__ = [
    "COMBINATIONS",
    "NO_LEARNING",
    "UNSTEADY",
    "Candidate",
    "apply_candidate",
    "combination_candidates",
    "learning_rate_candidates",
    "plan_candidates",
    "single_candidates",
    "steadying_candidates",
]
