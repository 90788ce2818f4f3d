"""Rank recommended fixes for one model: does the fix fit its layers, and how often does it verify.

A fix can answer a finding kind and still do nothing for this model: He initialization answers
vanishing gradients, but in an all-sigmoid network there is no ReLU layer for it to initialize;
the activation swap is what works there. Each candidate gets a *fit* from the model's traits:

* ``targets``: it acts on what this model has (He init on ReLU layers that use another init,
  ReLU for sigmoid/tanh hidden layers, clipping for a recurrent net without it, ...);
* ``generic``: it applies to any model of this kind but not to a specific cause (BatchNorm where
  there is none, clipping for a feed-forward net, a lower learning rate, advice);
* ``no_fit``: there is nothing for it to change (He init without ReLU layers, BN where every
  hidden layer is normalized, clipping that is already on).

Candidates are ordered by fit, then by the catalog's prior (how often the fix verified in
``benchmarks/fix_priors.py``), then by the order the findings recommended them. Each ranked fix
carries a one-line reason. Pure data: no Keras; traits come from a :class:`ModelSpec` (saved or
live model) or from a run's layer list.

Example:
    >>> traits = ModelTraits.from_spec(spec_from_model(model))  # doctest: +SKIP
    >>> [r.fix_id for r in rank_fixes(["he_init", "relu_activation"], traits)]  # doctest: +SKIP
    ['relu_activation', 'he_init']
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gradscope.data.schema import LayerInfo
from gradscope.detect.window import single_element_normalization
from gradscope.findings import Finding
from gradscope.model.taxonomy import (
    ACTIVATION_LAYER_CLASSES,
    ACTIVATIONS_BY_KIND,
    KERNEL_LAYERS,
    NORMALIZATION_LAYERS,
    PER_EXAMPLE_NORMALIZATION,
    PLAIN_MLP_LAYERS,
    RECURRENT_LAYERS,
    RELU_FAMILY,
    SATURATING,
    parse_initializer,
)
from gradscope.remedies import get_fix

#: Hidden activations that can die (zero output and gradient below a threshold): the "relu" kind.
_PLAIN_RELU = ACTIVATIONS_BY_KIND["relu"]
#: What selu_activation can turn into a self-normalizing net.
_PLAIN_MLP = PLAIN_MLP_LAYERS
#: Standalone activation layers, as the collector reports them.
_ACTIVATION_CLASSES = ACTIVATION_LAYER_CLASSES
#: Initializer family each init fix sets, and the activations it is for.
_INIT_FIXES = {
    "he_init": ("he", RELU_FAMILY, "ReLU-family"),
    "lecun_init": ("lecun", frozenset({"selu"}), "SELU"),
    "glorot_init": ("glorot", SATURATING, "sigmoid/tanh"),
}


class Fit(enum.IntEnum):
    """How well a fix fits the model (lower ranks first)."""

    TARGETS = 0
    GENERIC = 1
    NO_FIT = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ModelTraits:
    """What the ranking needs to know about a model.

    Attributes:
        hidden: ``(activation, initializer family)`` of each hidden kernel layer (the output
            layer excluded), activations lowercase, families as :class:`InitSpec` names them
            (None when unknown).
        inits: the initializer as users write it, per hidden kernel layer (for reasons).
        normalized: per hidden kernel layer, True if a normalization layer follows it.
        recurrent: the model has recurrent layers.
        clipping: the optimizer clips gradients; None when unknown (uncompiled, or a run).
        plain_mlp: only Dense, Dropout and activation layers (SELU can self-normalize it).
        dropout: the model has Dropout layers.
        single_element_norm: a per-example normalization layer normalizes over a single
            element; None when that cannot be told (sizes unknown).
    """

    hidden: tuple[tuple[str, str | None], ...] = ()
    inits: tuple[str | None, ...] = ()
    normalized: tuple[bool, ...] = ()
    recurrent: bool = False
    clipping: bool | None = None
    plain_mlp: bool = False
    dropout: bool = False
    single_element_norm: bool | None = None

    @classmethod
    def from_spec(cls, spec: Any) -> ModelTraits:
        """Traits of a :class:`gradscope.model.spec.ModelSpec`.

        Args:
            spec: the model description (saved file or live model).

        Returns:
            The traits.

        Example:
            >>> ModelTraits.from_spec(spec_from_model(model)).recurrent  # doctest: +SKIP
            False
        """
        kernels = spec.kernel_layers[:-1]
        return cls(
            hidden=tuple(
                (x.effective_activation or "linear", x.kernel_init and x.kernel_init.family)
                for x in kernels
            ),
            inits=tuple(x.kernel_init and x.kernel_init.display for x in kernels),
            normalized=tuple(x.normalized_after for x in kernels),
            recurrent=any(x.recurrent for x in spec.layers),
            clipping=None if spec.optimizer is None else spec.optimizer.clips,
            plain_mlp=all(x.class_name in _PLAIN_MLP for x in spec.layers),
            dropout=any(x.class_name == "Dropout" for x in spec.layers),
            single_element_norm=_known_any(
                [
                    x.normalized_size == 1 if x.normalized_size else None
                    for x in spec.layers
                    if _per_example(x)
                ]
            ),
        )

    @classmethod
    def from_layers(cls, layers: Sequence[LayerInfo]) -> ModelTraits:
        """Traits of a recorded run's model, from its layer list (``run.layers``).

        A kernel layer's activation is its own, or that of the activation layer that follows
        it (``Dense(64), ReLU()``); a normalization layer in between marks it normalized.

        Args:
            layers: the run's layers in forward order.

        Returns:
            The traits (clipping unknown: runs do not record it).

        Example:
            >>> ModelTraits.from_layers(load_run("runs/x").layers).hidden  # doctest: +SKIP
        """
        entries: list[list[Any]] = []  # [activation, init alias, normalized]
        for info in layers:
            if info.class_name in KERNEL_LAYERS:
                entries.append([info.activation or "linear", info.kernel_initializer, False])
            elif entries and info.class_name in NORMALIZATION_LAYERS:
                entries[-1][2] = True
            elif (
                entries
                and info.class_name in _ACTIVATION_CLASSES
                and info.activation
                and entries[-1][0] in ("linear", None)
            ):
                entries[-1][0] = info.activation
        hidden = entries[:-1]
        return cls(
            hidden=tuple((str(a).lower(), _family(i)) for a, i, _ in hidden),
            inits=tuple(i for _, i, _ in hidden),
            normalized=tuple(n for _, _, n in hidden),
            recurrent=any(x.class_name in RECURRENT_LAYERS for x in layers),
            plain_mlp=all(x.class_name in _PLAIN_MLP for x in layers),
            dropout=any(x.class_name == "Dropout" for x in layers),
            # A run proves a single element only from a layer's parameters; without one such
            # layer it is known there is none only when there are no such layers at all.
            single_element_norm=_known_any(
                [True for x in layers if single_element_normalization(x)]
                + [None for x in layers if _per_example(x)]
            ),
        )

    def count(self, activations: Iterable[str]) -> Counter[str]:
        """Counts the hidden layers per activation, among ``activations``.

        Args:
            activations: the activation names to count, e.g. :data:`SATURATING`.

        Returns:
            activation -> number of hidden kernel layers with it.

        Example:
            >>> ModelTraits(hidden=(("tanh", "glorot"), ("relu", "he"))).count({"tanh"})
            Counter({'tanh': 1})
        """
        wanted = frozenset(activations)
        return Counter(a for a, _ in self.hidden if a in wanted)


def _family(alias: str | None) -> str | None:
    spec = parse_initializer(alias)
    return None if spec is None else spec.family


@dataclass(frozen=True)
class RankedFix:
    """One recommended fix, placed.

    Attributes:
        fix_id: the catalog id.
        fit: how well it fits the model.
        prior: share of benchmark trials in which it verified (the catalog's), or None.
        fit_reason: why it fits (or not) this model, e.g. ``"10 sigmoid hidden layer(s): ReLU
            does not saturate"``.
        prior_note: where the prior comes from (the catalog's).
    """

    fix_id: str
    fit: Fit
    prior: float | None
    fit_reason: str
    prior_note: str = ""

    @property
    def reason(self) -> str:
        """One line: why it is placed here (its fit to the model, then its record)."""
        return f"{self.fit_reason}; {self.prior_note}" if self.prior_note else self.fit_reason

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of this placement.

        Returns:
            ``{"fix_id", "fit", "prior", "why"}``.

        Example:
            >>> rank_fix("batch_norm", ModelTraits()).to_json()["fit"]
            'generic'
        """
        return {
            "fix_id": self.fix_id,
            "fit": str(self.fit),
            "prior": self.prior,
            "why": self.reason,
        }


def _per_example(layer: Any) -> bool:
    return layer.class_name in PER_EXAMPLE_NORMALIZATION


def _known_any(flags: list[bool | None]) -> bool | None:
    # True if any flag is True, None if any is unknown, else False (also for no flags).
    if any(f is True for f in flags):
        return True
    return None if any(f is None for f in flags) else False


def _layers(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {a}" for a, n in counts.most_common())


_OPTIMIZER_FIXES = ("clip_norm", "clip_value", "lower_learning_rate", "raise_learning_rate")


def _init_fit(fix_id: str, t: ModelTraits) -> tuple[Fit, str]:
    family, acts, label = _INIT_FIXES[fix_id]
    mine = [(a, f, i) for (a, f), i in zip(t.hidden, t.inits, strict=False) if a in acts]
    if not mine:
        present = _layers(Counter(a for a, _ in t.hidden)) or "none"
        return Fit.NO_FIT, f"no {label} hidden layers (hidden activations: {present})"
    other = [(a, i) for a, f, i in mine if f != family]
    if not other:
        return Fit.NO_FIT, f"its {label} layers already use {family} initialization"
    inits = ", ".join(sorted({str(i) if i else "an unknown initializer" for _, i in other}))
    return Fit.TARGETS, f"{len(other)} {label} layer(s) initialized with {inits}"


def _fit(fix_id: str, t: ModelTraits) -> tuple[Fit, str]:
    # The fit of one fix, with the reason that decided it. Unknown traits (an empty layer
    # list) make every fix generic rather than wrongly unfit.
    if fix_id == "widen_normalization":
        if t.single_element_norm:
            return Fit.TARGETS, "a normalization layer normalizes over a single element"
        if t.single_element_norm is False:
            return Fit.NO_FIT, "no normalization layer over a single element"
        return Fit.GENERIC, "normalized sizes unknown"
    if not t.hidden and fix_id not in _OPTIMIZER_FIXES:
        return Fit.GENERIC, "the model's hidden layers are unknown"
    if fix_id in _INIT_FIXES:
        return _init_fit(fix_id, t)
    saturating, relu = t.count(SATURATING), t.count(_PLAIN_RELU)
    if fix_id == "relu_activation":
        if saturating:
            return Fit.TARGETS, f"{_layers(saturating)} hidden layer(s): ReLU does not saturate"
        return Fit.NO_FIT, "no sigmoid/tanh hidden layers to replace"
    if fix_id in ("leaky_relu_activation", "elu_activation"):
        if relu:
            return Fit.TARGETS, f"{_layers(relu)} hidden layer(s) can die; it keeps a slope < 0"
        return Fit.NO_FIT, "no plain ReLU hidden layers to replace"
    if fix_id == "selu_activation":
        if t.plain_mlp:
            return Fit.GENERIC, "a plain Dense stack can self-normalize (needs standardized inputs)"
        return Fit.NO_FIT, "SELU self-normalizes only plain stacks of Dense layers"
    if fix_id == "alpha_dropout":
        selu = t.count({"selu"})
        if selu and t.dropout:
            return Fit.TARGETS, "SELU layers with plain Dropout"
        return Fit.NO_FIT, "no Dropout in a SELU network"
    if fix_id == "batch_norm":
        if t.normalized and all(t.normalized):
            return Fit.NO_FIT, "every hidden layer is already normalized"
        return Fit.GENERIC, "hidden layers without BatchNormalization"
    if fix_id in ("clip_norm", "clip_value"):
        if t.clipping:
            return Fit.NO_FIT, "the optimizer already clips gradients"
        if t.recurrent:
            return Fit.TARGETS, "recurrent layers and no clipping: the usual cure for RNNs"
        return Fit.GENERIC, "no gradient clipping on the optimizer"
    if fix_id == "lower_learning_rate":
        return Fit.GENERIC, "smaller steps suit any model"
    if fix_id == "raise_learning_rate":
        return Fit.GENERIC, "larger steps suit any model whose steps were measured tiny"
    return Fit.GENERIC, "advice to apply by hand"


def rank_fix(fix_id: str, traits: ModelTraits) -> RankedFix:
    """Places one fix for a model.

    Args:
        fix_id: a catalog id.
        traits: the model's traits.

    Returns:
        The :class:`RankedFix` (fit, the catalog prior, and a reason naming both).

    Example:
        >>> rank_fix("he_init", ModelTraits(hidden=(("sigmoid", "glorot"),))).fit.name
        'NO_FIT'
    """
    fit, why = _fit(fix_id, traits)
    fix = get_fix(fix_id)
    return RankedFix(fix_id, fit, fix.prior, why, fix.prior_note)


def rank_fixes(fix_ids: Iterable[str], traits: ModelTraits) -> list[RankedFix]:
    """Orders fixes for a model: fit first, then prior, then the given order.

    Args:
        fix_ids: candidate catalog ids, most recommended first (duplicates dropped).
        traits: the model's traits.

    Returns:
        The ranked fixes, best first (no-fit ones last, still listed with their reason).

    Example:
        >>> traits = ModelTraits(hidden=(("sigmoid", "glorot"),) * 3)
        >>> [r.fix_id for r in rank_fixes(["he_init", "relu_activation"], traits)]
        ['relu_activation', 'he_init']
    """
    ranked = [rank_fix(f, traits) for f in dict.fromkeys(fix_ids)]
    order = {r.fix_id: i for i, r in enumerate(ranked)}
    return sorted(ranked, key=lambda r: (r.fit, -(r.prior or 0.0), order[r.fix_id]))


def ranked_ids(fix_ids: Iterable[str], traits: ModelTraits) -> tuple[str, ...]:
    """The fix ids that fit the model, best first (a finding's recommended fixes).

    Fixes with nothing to change in this model are dropped; the plan still lists them as
    skipped with their reason.

    Args:
        fix_ids: candidate catalog ids.
        traits: the model's traits.

    Returns:
        The ids, ranked.

    Example:
        >>> ranked_ids(["he_init", "batch_norm"], ModelTraits(hidden=(("sigmoid", "glorot"),)))
        ('batch_norm',)
    """
    return tuple(r.fix_id for r in rank_fixes(fix_ids, traits) if r.fit is not Fit.NO_FIT)


def rank_finding_fixes(findings: Iterable[Finding], traits: ModelTraits) -> list[Finding]:
    """Reorders each finding's recommended fixes for the model (see :func:`ranked_ids`).

    A finding whose fixes all have nothing to change keeps them in their order, so it never
    ends up without a recommendation.

    Args:
        findings: findings of one model.
        traits: that model's traits.

    Returns:
        New findings, same order, with ``fixes`` ranked.

    Example:
        >>> rank_finding_fixes(detect(run), ModelTraits.from_layers(run.layers))  # doctest: +SKIP
    """
    return [replace(f, fixes=ranked_ids(f.fixes, traits) or f.fixes) for f in findings]
