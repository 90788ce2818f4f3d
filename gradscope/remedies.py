"""Fix identifiers, what each one does, and how often it verified.

Identifiers are stable strings used in findings and JSON. Each one is implemented as a clone-based
model transform (:mod:`gradscope.fix`) or given as advice; here they are names and plain-language
descriptions only. Which fixes answer which finding kind, and in what order, is the kind
registry's (:data:`gradscope.findings.kinds.KINDS`); the repairs and their order follow
AutoTrainer (ICSE 2021) and Géron, *Hands-On Machine Learning*, ch. 11.

Each automatic fix also has a *prior*: the share of trials in which it verified when applied
alone to the sick networks of ``benchmarks/fix_priors.py`` (the chapter's scenario suite, the
demo's network and two badly initialized ReLU nets, the default fix trial on digits), measured by
the same verification ``gradscope fix --auto`` uses (by learning); the counts are in
:data:`MEASURED` and the run in ``reports/fix_priors.md``. :mod:`gradscope.detect.rank` orders
fixes by whether they fit the model first and by this prior second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from gradscope.findings.kinds import KINDS


@dataclass(frozen=True)
class Fix:
    """One remedy.

    Attributes:
        id: stable identifier, e.g. ``"he_init"``.
        title: short imperative title.
        description: what the fix changes and why it helps.
        prior: share of measured trials in which it verified (:data:`MEASURED`), or None.
        prior_note: where the prior comes from, one phrase for reasons and reports.
    """

    id: str
    title: str
    description: str
    prior: float | None = None
    prior_note: str = "no measured prior (advice, or not tried by the benchmark)"

    @property
    def answers(self) -> frozenset[str]:
        """The finding kinds this fix answers, read from the kind registry (:data:`KINDS`).

        Example:
            >>> sorted(get_fix("alpha_dropout").answers)
            ['selu_misconfigured']
        """
        return frozenset(kind for kind, info in KINDS.items() if self.id in info.answers)


_FIXES: tuple[Fix, ...] = (
    Fix(
        "he_init",
        "Use He initialization",
        "Initialize ReLU-family layers with he_normal/he_uniform (variance 2/fan_in), which keeps "
        "the signal's variance constant through ReLU layers (He et al. 2015).",
    ),
    Fix(
        "lecun_init",
        "Use LeCun initialization",
        "Initialize SELU layers with lecun_normal (variance 1/fan_in), required for "
        "self-normalization (Klambauer et al. 2017).",
    ),
    Fix(
        "glorot_init",
        "Use Glorot initialization",
        "Initialize sigmoid/tanh/softmax layers with glorot_uniform/glorot_normal (variance "
        "2/(fan_in+fan_out)), which keeps activations out of the flat tails "
        "(Glorot & Bengio 2010).",
    ),
    Fix(
        "relu_activation",
        "Use ReLU instead of a saturating activation",
        "Replace sigmoid/tanh hidden activations with ReLU (with He init): its gradient is 1 for "
        "positive inputs, so it does not shrink the gradient layer after layer.",
    ),
    Fix(
        "leaky_relu_activation",
        "Use LeakyReLU",
        "Replace ReLU with LeakyReLU: negative inputs keep a small slope, so units cannot die.",
    ),
    Fix(
        "elu_activation",
        "Use ELU",
        "Replace ReLU with ELU: smooth, non-zero gradient for negative inputs, mean output "
        "closer to zero (Clevert et al. 2016).",
    ),
    Fix(
        "selu_activation",
        "Use SELU with LeCun init",
        "Replace hidden activations with SELU + lecun_normal in a plain Sequential MLP on "
        "standardized inputs: the network self-normalizes (Klambauer et al. 2017; AutoTrainer's "
        "first repair).",
    ),
    Fix(
        "batch_norm",
        "Add BatchNormalization",
        "Insert BatchNormalization after each hidden Dense/Conv layer so every layer's inputs "
        "are re-centred and re-scaled during training (Ioffe & Szegedy 2015).",
    ),
    Fix(
        "clip_norm",
        "Clip gradients by norm",
        "Compile the optimizer with clipnorm (or global_clipnorm), e.g. 1.0: large gradients are "
        "rescaled, their direction kept (Pascanu et al. 2013).",
    ),
    Fix(
        "clip_value",
        "Clip gradients by value",
        "Compile the optimizer with clipvalue, e.g. 1.0: each gradient entry is clipped "
        "(AutoTrainer's exploding-gradient repair).",
    ),
    Fix(
        "lower_learning_rate",
        "Lower the learning rate",
        "Divide the learning rate by 10: too large steps make the loss oscillate or diverge "
        "and can kill ReLU units.",
    ),
    Fix(
        "raise_learning_rate",
        "Raise the learning rate",
        "Multiply the learning rate by 10: when every layer's update ratio ‖ΔW‖/‖W‖ is orders "
        "of magnitude below CS231n's healthy 1e-3, each step barely moves the weights and the "
        "loss stays flat. Raise it a decade at a time while the loss falls faster, and stay "
        "below the rate at which it starts to oscillate (Géron ch. 11).",
    ),
    Fix(
        "lr_schedule",
        "Use a learning-rate schedule",
        "Let the rate change during training (Géron ch. 11): "
        "keras.callbacks.ReduceLROnPlateau(monitor='loss', factor=0.5, patience=5) halves it "
        "whenever the loss stops improving (performance scheduling), which settles a loss that "
        "oscillates; 1cycle ramps it up to about half the rate where the loss diverges, then "
        "down, e.g. keras.optimizers.schedules.CosineDecay(initial_learning_rate=lr / 10, "
        "warmup_target=lr, warmup_steps=steps // 10, decay_steps=steps), which also finds a rate "
        "high enough for a loss that falls too slowly. Advice: a schedule depends on the length "
        "of your training, which a copy of the model does not know.",
    ),
    Fix(
        "standardize_inputs",
        "Standardize the inputs",
        "Scale each input feature to mean 0 and standard deviation 1 (e.g. a Normalization "
        "layer adapted on the training data); SELU's self-normalization assumes it.",
    ),
    Fix(
        "alpha_dropout",
        "Use AlphaDropout with SELU",
        "Replace Dropout with AlphaDropout in SELU networks: it keeps the mean and variance "
        "that self-normalization relies on (Klambauer et al. 2017).",
    ),
    Fix(
        "remove_batch_norm",
        "Remove BatchNormalization from SELU networks",
        "SELU networks normalize themselves; BatchNormalization between SELU layers is "
        "unnecessary and breaks the fixed point the activations converge to.",
    ),
    Fix(
        "zero_bias_init",
        "Initialize biases at zero",
        "Use zeros (or a small positive constant) as bias initializer for ReLU layers: strongly "
        "negative biases switch units off before training starts.",
    ),
    Fix(
        "widen_normalization",
        "Normalize over more than one element",
        "A per-example normalization whose normalized axes hold one element sees nothing to "
        "normalize: LayerNormalization outputs its offset beta whatever the input (x minus its "
        "own mean is 0), RMS/unit normalization only its sign, so no gradient reaches the "
        "layers before it. Normalize over an axis with more than one element: project the "
        "input to d_model features first (a Dense or Conv1D of width > 1 before the block, as "
        "transformers embed their inputs), or leave the normalization out where there is a "
        "single feature.",
    ),
    Fix(
        "check_inputs",
        "Check the data for NaN/Inf and extreme values",
        "Look for NaN/Inf or huge values in inputs and targets, and for log(0) or division by "
        "zero in custom losses.",
    ),
)

#: Fix id -> (verified, tried) over the sick networks of ``benchmarks/fix_priors.py``
#: (reports/fix_priors.md); "tried" leaves out networks where the fix had nothing to change.
#: Measured 2026-11-26 under verification by learning (the default fix trial: 8 passes over 256
#: digits, seed 0, held-out digits scored): 7 networks, so each count is small; the prior breaks
#: ties between fixes that fit a model equally, it never overrides the fit.
MEASURED: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "elu_activation": (3, 4),
        "he_init": (3, 3),
        "selu_activation": (3, 5),
        "clip_value": (2, 2),
        "leaky_relu_activation": (2, 4),
        "relu_activation": (2, 2),
        "batch_norm": (1, 5),
        "clip_norm": (1, 2),
        "lower_learning_rate": (1, 4),
        "zero_bias_init": (1, 1),
        "glorot_init": (0, 1),
    }
)


def _with_prior(fix: Fix) -> Fix:
    verified, tried = MEASURED.get(fix.id, (0, 0))
    if not tried:
        return fix
    note = f"verified in {verified} of {tried} benchmark trials"
    return replace(fix, prior=verified / tried, prior_note=note)


#: Fix id -> Fix, read-only.
CATALOG: Mapping[str, Fix] = MappingProxyType({f.id: _with_prior(f) for f in _FIXES})


def get_fix(fix_id: str) -> Fix:
    """Returns the fix with a given id.

    Args:
        fix_id: a fix identifier, e.g. ``"he_init"``.

    Returns:
        The :class:`Fix`.

    Raises:
        KeyError: naming the known ids, if ``fix_id`` is unknown.

    Example:
        >>> get_fix("clip_norm").title
        'Clip gradients by norm'
    """
    try:
        return CATALOG[fix_id]
    except KeyError:
        raise KeyError(f"Unknown fix id {fix_id!r}. Known: {sorted(CATALOG)}") from None


def fixes_for(kind: str) -> tuple[Fix, ...]:
    """Returns the fixes that answer a finding kind, in the registry's default order.

    Args:
        kind: a finding kind, e.g. ``"dying_relu"``.

    Returns:
        The kind's :attr:`~gradscope.findings.kinds.KindInfo.answers` as catalog entries
        (empty for kinds not registered, e.g. from another gradscope version's document).

    Example:
        >>> "alpha_dropout" in [f.id for f in fixes_for("selu_misconfigured")]
        True
    """
    info = KINDS.get(kind)
    return () if info is None else tuple(CATALOG[fix_id] for fix_id in info.answers)
