"""The registry of finding kinds: kind -> stable code, human title, the fixes that answer it.

Kinds are stable strings used in JSON and tests. Everything that names a kind's code or title, or
asks which fixes answer it, reads :data:`KINDS`: the run detectors and static rules (code and
default fixes), the fix catalog (:attr:`gradscope.remedies.Fix.answers`), the fix planner and
every view (titles, verdict).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gradscope.findings.finding import Finding, Severity


@dataclass(frozen=True)
class KindInfo:
    """What gradscope knows about one finding kind: its code, title and the fixes that answer it.

    Attributes:
        code: stable code; GS1xx are judged from a run, GS2xx by static rules on the model.
        title: human title, as the report, dashboard, terminal and verdict write it.
        fixes: the fixes a finding of this kind recommends by default, most recommended first.
            Static rules pick from them per case (He init for ReLU layers, ...).
        also: fixes that answer the kind too but are not the usual remedy (LeakyReLU for
            vanishing gradients, which helps only a ReLU net): findings do not list them, the
            fix planner tries them after the recommended ones.
        causes: fixes a finding of this kind may recommend only when it names a cause that the
            usual remedies do not treat (a normalization over a single element stopping the
            gradient): they are not in :attr:`answers`, so neither the planner nor the catalog
            offers them for every finding of the kind, only for the findings that list them.

    Example:
        >>> KINDS["dying_relu"].code
        'GS103'
    """

    code: str
    title: str
    fixes: tuple[str, ...]
    also: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()

    @property
    def answers(self) -> tuple[str, ...]:
        """Every fix that answers the kind, in default order (:attr:`fixes`, then :attr:`also`)."""
        return self.fixes + self.also


#: The one registry of finding kinds: kind -> code, title, fixes. Detectors, static rules, the
#: fix catalog (:mod:`gradscope.remedies`), the fix planner and every view read it; a new kind is
#: one entry here. Fix orders follow AutoTrainer (ICSE 2021) and Géron, ch. 11.
KINDS: Mapping[str, KindInfo] = MappingProxyType(
    {
        "vanishing_gradients": KindInfo(
            "GS101",
            "Vanishing gradients",
            ("he_init", "relu_activation", "batch_norm", "selu_activation", "glorot_init"),
            ("lecun_init", "leaky_relu_activation", "elu_activation"),
            # When a normalization over a single element stops the gradient, the detector names
            # it as the cause and recommends this alone (gradscope.detect.cause).
            causes=("widen_normalization",),
        ),
        "exploding_gradients": KindInfo(
            "GS102",
            "Exploding gradients",
            ("clip_norm", "lower_learning_rate", "batch_norm", "he_init", "clip_value"),
            ("lecun_init", "glorot_init", "selu_activation", "standardize_inputs"),
        ),
        "dying_relu": KindInfo(
            "GS103",
            "Dying ReLU units",
            (
                "leaky_relu_activation",
                "elu_activation",
                "lower_learning_rate",
                "he_init",
                "zero_bias_init",
                "batch_norm",
            ),
            ("selu_activation",),
        ),
        "saturation": KindInfo(
            "GS104",
            "Saturated activations",
            (
                "glorot_init",
                "relu_activation",
                "batch_norm",
                "selu_activation",
                "standardize_inputs",
            ),
            ("elu_activation",),
        ),
        "nonfinite": KindInfo(
            "GS105",
            "NaN/Inf values",
            ("lower_learning_rate", "clip_norm", "check_inputs", "standardize_inputs"),
            ("clip_value",),
            # When an initializer's scale is its measured cause (gradscope.detect.evidence).
            causes=("he_init", "lecun_init", "glorot_init"),
        ),
        # AutoTrainer's two learning-rate problems, judged from the update ratios ‖ΔW‖/‖W‖
        # (CS231n: ≈ 1e-3 is healthy). Clipping bounds the steps of a too-high rate too, but the
        # measured cause is the rate, so it is tried after the rate itself.
        "unstable_loss": KindInfo(
            "GS106",
            "Unstable loss (learning rate too high)",
            ("lower_learning_rate", "lr_schedule"),
            ("clip_norm", "clip_value"),
        ),
        "slow_convergence": KindInfo(
            "GS107",
            "Slow convergence (learning rate too low)",
            ("raise_learning_rate", "lr_schedule"),
        ),
        "init_activation_mismatch": KindInfo(
            "GS201",
            "Initializer does not match activation",
            ("he_init", "lecun_init", "glorot_init"),
        ),
        "selu_misconfigured": KindInfo(
            "GS202",
            "SELU network misconfigured",
            ("lecun_init", "standardize_inputs", "alpha_dropout", "remove_batch_norm"),
        ),
        "deep_saturating_stack": KindInfo(
            "GS203",
            "Deep stack of saturating activations",
            ("relu_activation", "batch_norm", "glorot_init", "selu_activation"),
        ),
        "missing_clipping": KindInfo("GS204", "No gradient clipping", ("clip_norm", "clip_value")),
        "degenerate_normalization": KindInfo(
            "GS205", "Normalization over a single element", ("widen_normalization",)
        ),
    }
)

#: Stable finding codes by kind (read from :data:`KINDS`).
CODES: Mapping[str, str] = MappingProxyType({k: info.code for k, info in KINDS.items()})


def kind_info(kind: str) -> KindInfo:
    """Returns the registry entry of a finding kind.

    Args:
        kind: a registered kind, e.g. ``"saturation"``.

    Returns:
        Its :class:`KindInfo`.

    Raises:
        KeyError: naming the registered kinds, if ``kind`` is not one of them.

    Example:
        >>> kind_info("nonfinite").title
        'NaN/Inf values'
    """
    try:
        return KINDS[kind]
    except KeyError:
        raise KeyError(f"Unknown finding kind {kind!r}. Registered: {sorted(KINDS)}") from None


def kind_title(kind: str) -> str:
    """Returns the human title of a finding kind; kinds not registered are titled from the id.

    Args:
        kind: a finding kind (a document may carry kinds of another gradscope version).

    Returns:
        e.g. ``"Dying ReLU units"``.

    Example:
        >>> kind_title("some_new_kind")
        'Some new kind'
    """
    info = KINDS.get(kind)
    return info.title if info else kind.replace("_", " ").capitalize()


def make_finding(
    kind: str,
    severity: Severity,
    layers: Iterable[str],
    message: str,
    evidence: Mapping[str, Any],
    fixes: Iterable[str] | None = None,
) -> Finding:
    """Builds a finding of a registered kind: its code and default fixes come from the registry.

    Args:
        kind: a registered kind.
        severity: how bad it is.
        layers: the layers concerned, in forward order.
        message: one or two plain-language sentences.
        evidence: JSON-safe numbers behind it.
        fixes: the fixes this case calls for, all among the kind's :attr:`KindInfo.answers`
            or :attr:`KindInfo.causes`; default the kind's recommended :attr:`KindInfo.fixes`.

    Returns:
        The :class:`Finding`.

    Raises:
        KeyError: if ``kind`` is not registered.
        ValueError: if a fix in ``fixes`` does not answer ``kind`` in the registry.

    Example:
        >>> make_finding("missing_clipping", Severity.INFO, ("lstm",), "No clipping.", {}).fixes
        ('clip_norm', 'clip_value')
    """
    info = kind_info(kind)
    chosen = info.fixes if fixes is None else tuple(fixes)
    stray = [f for f in chosen if f not in info.answers + info.causes]
    if stray:
        raise ValueError(
            f"Fixes {stray} do not answer {kind!r} in the registry (gradscope.findings.kinds); "
            f"register them there. Received: fixes={list(chosen)}"
        )
    return Finding(info.code, kind, severity, tuple(layers), message, evidence, chosen)
