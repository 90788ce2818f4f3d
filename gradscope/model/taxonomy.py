"""Names of model parts, one table each, Keras-free: layer and activation families, initializers.

Keras writes the same initializer several ways: ``"he_normal"`` in user code, ``HeNormal`` as a
class, ``VarianceScaling(scale=2.0, mode="fan_in", distribution="truncated_normal")`` in configs
(Keras 2 files, and every initializer gradscope's fixes set). :func:`initializer_alias` names all
of them the way users write them; :func:`parse_initializer` classifies them for the static rules.
The collector (run metadata), the static rules and the HTML model table all use these, so a
fixed model's He init reads ``he_normal`` everywhere, never ``VarianceScaling``.

This is the one module that names layer families, activation families and kinds, and
initializer families: the loader's spec, the graph editor, the collector and the fix transforms
all read these tables (``tests/model/test_taxonomy.py`` fails on a copy elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

#: Layers whose kernel starts a new "weight layer".
KERNEL_LAYERS = frozenset(
    {
        "Dense",
        "EinsumDense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "SeparableConv1D",
        "SeparableConv2D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "Convolution1D",
        "Convolution2D",
        "Convolution3D",
        "LocallyConnected1D",
        "LocallyConnected2D",
    }
)
#: Layers that re-centre and re-scale their inputs.
NORMALIZATION_LAYERS = frozenset(
    {
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "SyncBatchNormalization",
    }
)
#: Normalization layers that normalize each example on its own -> the elements one statistic
#: is taken over: ``"axis"``, the axes of their ``axis`` option; ``"group"``, one group of
#: ``channels / groups`` channels times every other non-batch axis. With a single element there
#: the output no longer depends on the input (the static rule ``degenerate_normalization``).
PER_EXAMPLE_NORMALIZATION: Mapping[str, str] = MappingProxyType(
    {
        "LayerNormalization": "axis",
        "RMSNormalization": "axis",
        "UnitNormalization": "axis",
        "GroupNormalization": "group",
    }
)
#: Those that subtract the mean: over one element they output their offset (beta), a constant;
#: the others only divide (by the RMS or the L2 norm) and output the sign of the input.
CENTERING_NORMALIZATION = frozenset({"LayerNormalization", "GroupNormalization"})
#: Recurrent layers (also inside Bidirectional/TimeDistributed wrappers).
RECURRENT_LAYERS = frozenset(
    {
        "SimpleRNN",
        "LSTM",
        "GRU",
        "RNN",
        "CuDNNLSTM",
        "CuDNNGRU",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
    }
)
#: Lookup-table layers: a step's gradient reaches only the rows of the batch's tokens, so the
#: table's gradient and update are sparse, not small (the run detectors leave them out of the
#: gradient-flow comparisons, :func:`gradscope.detect.window.gradient_flow_layers`).
EMBEDDING_LAYERS = frozenset({"Embedding"})
#: Layers that drop or perturb values in training only (dropout and noise).
DROPOUT_LAYERS = frozenset(
    {
        "Dropout",
        "AlphaDropout",
        "GaussianDropout",
        "GaussianNoise",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
    }
)
#: What a "plain" MLP is made of: Dense layers, ``Activation`` layers, layers that carry no
#: weights and change no activation (what a SELU rewrite can make self-normalizing).
PLAIN_MLP_LAYERS = DROPOUT_LAYERS | {"Dense", "Activation", "InputLayer", "Flatten"}
#: Layers between a kernel layer and its activation that leave the activation's meaning intact
#: (Géron's "Dense -> BatchNormalization -> Activation"): the activation is looked for through them.
PASS_THROUGH_LAYERS = NORMALIZATION_LAYERS | DROPOUT_LAYERS
#: Layers that combine several inputs (a skip connection ends in one).
MERGE_LAYERS = frozenset(
    {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
)
#: Model classes: a layer of one of these is a nested model.
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
#: Layers wrapping another layer, stored under their ``layer`` key.
WRAPPER_LAYERS = frozenset({"Bidirectional", "TimeDistributed"})
#: Standalone activation layers -> the activation they apply. Keras 2's ThresholdedReLU passes
#: inputs above a threshold and zeroes the rest: a ReLU for every rule that reads this.
ACTIVATION_LAYERS: Mapping[str, str] = MappingProxyType(
    {
        "ReLU": "relu",
        "LeakyReLU": "leaky_relu",
        "PReLU": "prelu",
        "ELU": "elu",
        "Softmax": "softmax",
        "ThresholdedReLU": "relu",
    }
)
#: Every standalone activation layer class: those above and ``Activation`` (any activation).
ACTIVATION_LAYER_CLASSES = frozenset(ACTIVATION_LAYERS) | {"Activation"}

#: Activation names that mean "no activation" (as strings from configs and live layers).
LINEAR = frozenset({"linear", "None", ""})
#: Activations He initialization is made for (Géron, ch. 11, table 11-1). hard_silu
#: (``x * relu6(x + 3) / 6``, Keras's ``hard_swish``) is here, decided once: it is ReLU-like
#: (unbounded above, exactly 0 with a zero gradient below -3, so its units can die) and is
#: trained with He initialization in the models that use it (MobileNetV3, Howard et al. 2019).
RELU_FAMILY = frozenset(
    {
        "relu",
        "relu6",
        "leaky_relu",
        "prelu",
        "elu",
        "gelu",
        "silu",
        "swish",
        "mish",
        "celu",
        "hard_silu",
        "hard_swish",
    }
)
#: Activations that flatten out in both tails and shrink gradients when stacked.
SATURATING = frozenset({"sigmoid", "hard_sigmoid", "tanh", "softsign", "hard_tanh"})
#: Activations LeCun initialization is made for (Klambauer et al. 2017).
SELF_NORMALIZING = frozenset({"selu"})
#: Activations Glorot initialization is made for: none, tanh, logistic, softmax (Géron, table
#: 11-1).
GLOROT_ACTIVATIONS = frozenset({"linear", "tanh", "sigmoid", "softmax"})

#: Activation kind -> its activations. The kind says what the collector measures on a layer
#: (``LayerInfo.activation_kind``, one of :data:`gradscope.data.schema.ACTIVATION_KINDS`):
#: "relu" units have a hard zero for z < 0 and can die; "leaky" ones are ReLU-like without it;
#: "sigmoid" (range 0..1) and "tanh" (range -1..1) ones saturate in their flat tails. Any other
#: activation is "other". hard_silu is "relu": its output is exactly 0 below -3, as ReLU's below 0.
ACTIVATIONS_BY_KIND: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "relu": frozenset({"relu", "relu6", "hard_silu", "hard_swish"}),
        "leaky": frozenset(
            {
                "leaky_relu",
                "prelu",
                "elu",
                "selu",
                "gelu",
                "silu",
                "swish",
                "mish",
                "celu",
                "softplus",
            }
        ),
        "sigmoid": frozenset({"sigmoid", "hard_sigmoid", "softmax"}),
        "tanh": frozenset({"tanh", "softsign", "hard_tanh"}),
        "linear": frozenset({"linear"}),
    }
)
_KIND_OF = {name: kind for kind, names in ACTIVATIONS_BY_KIND.items() for name in names}


def activation_kind(name: str | None) -> str | None:
    """Classifies an activation name by what can go wrong with it.

    Args:
        name: an activation name such as ``"elu"`` (any case), or None.

    Returns:
        One of ``"relu"``, ``"leaky"``, ``"sigmoid"``, ``"tanh"``, ``"linear"``, ``"other"``
        (see :data:`ACTIVATIONS_BY_KIND`), or None when ``name`` is None.

    Example:
        >>> activation_kind("elu"), activation_kind("hard_silu"), activation_kind("erf")
        ('leaky', 'relu', 'other')
    """
    if name is None:
        return None
    return _KIND_OF.get(name.lower(), "other")


@dataclass(frozen=True)
class InitRule:
    """A variance-scaling initialization family and the activations it is made for.

    Attributes:
        scale: the variance scale (2 for He, 1 for LeCun and Glorot).
        mode: the fan it scales by: ``"fan_in"`` or ``"fan_avg"``.
        activations: the activations it is made for.
    """

    scale: float
    mode: str
    activations: frozenset[str]


#: Initialization family -> its rule (Géron, ch. 11, table 11-1).
INIT_RULES: Mapping[str, InitRule] = MappingProxyType(
    {
        "he": InitRule(2.0, "fan_in", RELU_FAMILY),
        "lecun": InitRule(1.0, "fan_in", SELF_NORMALIZING),
        "glorot": InitRule(1.0, "fan_avg", GLOROT_ACTIVATIONS),
    }
)
#: :attr:`InitSpec.family` values that are variance scaling (with a scale and a mode).
VARIANCE_SCALING_FAMILIES = frozenset({*INIT_RULES, "variance_scaling"})
#: The distributions Keras's ``VarianceScaling`` draws from.
VARIANCE_SCALING_DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "normal", "uniform")

#: Keras's named variance-scaling initializers: alias -> (scale, mode, distribution).
ALIASES: Mapping[str, tuple[float, str, str]] = {
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
}
# Class names and strings (lowercase, no underscores) that are one of the aliases; Keras 2 also
# called Glorot "Xavier".
_NAMED: Mapping[str, str] = {
    **{alias.replace("_", ""): alias for alias in ALIASES},
    "xavieruniform": "glorot_uniform",
    "xaviernormal": "glorot_normal",
}
# Keras 2.2 wrote truncated normal as "normal"; Keras 3 reads it the same way.
_DISTRIBUTIONS = {"normal": "truncated_normal"}
_FAMILY_OF_ALIAS = {alias: alias.split("_")[0] for alias in ALIASES}
_FAMILY_OF_SCALE_MODE = {(rule.scale, rule.mode): family for family, rule in INIT_RULES.items()}


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _split(value: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping):
        config = value.get("config")
        return str(value.get("class_name", "")), config if isinstance(config, Mapping) else {}
    return str(value), {}


def _variance_scaling_alias(config: Mapping[str, Any]) -> str | None:
    scale = _float(config.get("scale", 1.0))
    mode = str(config.get("mode", "fan_in"))
    dist = str(config.get("distribution", "truncated_normal"))
    dist = _DISTRIBUTIONS.get(dist, dist)
    for alias, (a_scale, a_mode, a_dist) in ALIASES.items():
        if scale is not None and math.isclose(scale, a_scale) and (mode, dist) == (a_mode, a_dist):
            return alias
    return None


def initializer_alias(value: Any) -> str | None:
    """Names an initializer the way users write it in Keras.

    Args:
        value: a serialized initializer (``{"class_name", "config"}``, Keras 2 or 3), a string
            such as ``"he_normal"`` or ``"HeNormal"``, or None.

    Returns:
        ``"he_normal"``, ``"he_uniform"``, ``"glorot_normal"``, ``"glorot_uniform"``,
        ``"lecun_normal"`` or ``"lecun_uniform"`` when it is one of them (a ``VarianceScaling``
        config with their scale, mode and distribution included); otherwise the class name as
        stored (e.g. ``"VarianceScaling"`` with another scale, ``"RandomNormal"``); None for None.

    Example:
        >>> initializer_alias({"class_name": "VarianceScaling",
        ...     "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}})
        'he_normal'
        >>> initializer_alias("GlorotUniform"), initializer_alias("Orthogonal")
        ('glorot_uniform', 'Orthogonal')
    """
    if value is None:
        return None
    name, config = _split(value)
    key = name.replace("_", "").lower()
    if key in _NAMED:
        return _NAMED[key]
    if key == "variancescaling":
        return _variance_scaling_alias(config) or name
    return name


@dataclass(frozen=True)
class InitSpec:
    """A kernel initializer, classified.

    Attributes:
        family: ``"he"``, ``"lecun"``, ``"glorot"``, ``"variance_scaling"`` (other scale/mode),
            ``"fixed"`` (RandomNormal/TruncatedNormal/RandomUniform with a fixed spread),
            ``"constant"``, ``"orthogonal"``, ``"identity"`` or ``"unknown"``.
        name: the class name as stored.
        scale: variance scale for variance-scaling families (2 for He, 1 for Glorot/LeCun).
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` for variance-scaling families.
        stddev: the weights' standard deviation for the ``"fixed"`` family.
        value: the constant for the ``"constant"`` family.
        alias: the name users write (:func:`initializer_alias`), e.g. ``"he_normal"``.
    """

    family: str
    name: str
    scale: float | None = None
    mode: str | None = None
    stddev: float | None = None
    value: float | None = None
    alias: str | None = None

    @property
    def display(self) -> str:
        """The alias if there is one, else the stored class name."""
        return self.alias or self.name


def parse_initializer(value: Any) -> InitSpec | None:
    """Classifies a stored initializer.

    Args:
        value: a Keras 2/3 initializer dict, or a string such as ``"he_normal"``.

    Returns:
        The :class:`InitSpec`, or None when ``value`` is None.

    Example:
        >>> parse_initializer({"class_name": "VarianceScaling",
        ...     "config": {"scale": 2.0, "mode": "fan_in", "distribution": "normal"}}).family
        'he'
    """
    if value is None:
        return None
    if not isinstance(value, (str, Mapping)):
        return InitSpec("unknown", str(value), alias=str(value))
    name, config = _split(value)
    alias = initializer_alias(value)
    key = name.replace("_", "").lower()
    if key in _NAMED:
        scale, mode, _ = ALIASES[_NAMED[key]]
        return InitSpec(_FAMILY_OF_ALIAS[_NAMED[key]], name, scale=scale, mode=mode, alias=alias)
    if key == "variancescaling":
        scale = _float(config.get("scale", 1.0)) or 1.0
        mode = str(config.get("mode", "fan_in"))
        family = _FAMILY_OF_SCALE_MODE.get((scale, mode), "variance_scaling")
        return InitSpec(family, name, scale=scale, mode=mode, alias=alias)
    if key in ("randomnormal", "truncatednormal", "normal"):
        return InitSpec("fixed", name, stddev=_float(config.get("stddev", 0.05)), alias=alias)
    if key in ("randomuniform", "uniform"):
        lo = _float(config.get("minval", -0.05)) or 0.0
        hi = _float(config.get("maxval", 0.05)) or 0.0
        return InitSpec("fixed", name, stddev=abs(hi - lo) / math.sqrt(12.0), alias=alias)
    if key in ("zeros", "zero"):
        return InitSpec("constant", name, value=0.0, alias=alias)
    if key in ("ones", "one"):
        return InitSpec("constant", name, value=1.0, alias=alias)
    if key == "constant":
        return InitSpec("constant", name, value=_float(config.get("value", 0.0)), alias=alias)
    if key == "orthogonal":
        return InitSpec("orthogonal", name, scale=_float(config.get("gain", 1.0)), alias=alias)
    if key == "identity":
        return InitSpec("identity", name, alias=alias)
    return InitSpec("unknown", name, alias=alias)
