"""Typed records of a run directory and their JSON form.

A run directory holds ``meta.json`` (a :class:`RunMeta`), ``stats.jsonl`` (one :class:`StepRecord`
per line), ``epochs.jsonl`` (one :class:`EpochRecord` per line) and ``hist.npz`` (histograms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

#: Version of the run directory's records (``meta.json``).
SCHEMA_VERSION = 1

#: Gradient statistics recorded per watched layer (kernel + bias + ... combined).
GRAD_STATS: tuple[str, ...] = (
    "grad_norm",
    "grad_mean",
    "grad_std",
    "grad_max_abs",
    "nonfinite",
)
#: Weight statistics recorded per watched layer.
WEIGHT_STATS: tuple[str, ...] = ("weight_norm", "update_norm", "update_ratio")
#: Activation statistics recorded per layer that has an activation.
ACT_STATS: tuple[str, ...] = ("act_mean", "act_std", "dead_frac", "sat_frac")
#: Every per-layer statistic name that may appear in a :class:`StepRecord`.
LAYER_STATS: tuple[str, ...] = GRAD_STATS + WEIGHT_STATS + ACT_STATS

#: Activation kinds, as classified by :mod:`gradscope.collect.layers`.
ACTIVATION_KINDS: tuple[str, ...] = (
    "relu",  # hard zero for z < 0: relu, relu6 -> can die
    "leaky",  # ReLU-like with non-zero negative side: leaky_relu, elu, selu, gelu, silu, ...
    "sigmoid",  # range (0, 1): sigmoid, hard_sigmoid, softmax -> can saturate
    "tanh",  # range (-1, 1): tanh, softsign -> can saturate
    "linear",
    "other",
)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class LayerInfo:
    """Static description of one layer of the recorded model.

    Attributes:
        name: unique layer path, e.g. ``"dense_3"`` or ``"encoder/dense"`` for nested models.
        class_name: Keras class name, e.g. ``"Dense"``.
        activation: activation name (``"relu"``) or None for layers without one.
        activation_kind: one of :data:`ACTIVATION_KINDS`, or None.
        kernel_initializer: initializer as users write it ("he_normal"), else its class name; None.
        units: units or filters, or None.
        params: number of weights (trainable and not).
        trainable: False for frozen layers; they are reported, never diagnosed as vanishing.
        watched: True if gradients of this layer are recorded.
        variables: short names of the layer's trainable variables, e.g. ``("kernel", "bias")``.
    """

    name: str
    class_name: str
    activation: str | None = None
    activation_kind: str | None = None
    kernel_initializer: str | None = None
    units: int | None = None
    params: int = 0
    trainable: bool = True
    watched: bool = True
    variables: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of this layer."""
        data = asdict(self)
        data["class"] = data.pop("class_name")
        data["variables"] = list(self.variables)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerInfo:
        """Builds a LayerInfo from :meth:`to_json` output."""
        return cls(
            name=str(data["name"]),
            class_name=str(data.get("class", "")),
            activation=data.get("activation"),
            activation_kind=data.get("activation_kind"),
            kernel_initializer=data.get("kernel_initializer"),
            units=data.get("units"),
            params=int(data.get("params", 0)),
            trainable=bool(data.get("trainable", True)),
            watched=bool(data.get("watched", True)),
            variables=tuple(data.get("variables", ())),
        )


@dataclass(frozen=True)
class RunMeta:
    """Contents of ``meta.json``.

    Attributes:
        layers: the model's layers in forward order.
        model_name: the Keras model's name.
        optimizer: optimizer class name and config (JSON-safe values only).
        config: the collection options used (freq, activation_freq, ...).
        created: ISO-8601 creation time.
        gradscope_version: version that wrote the run.
        schema_version: format version, :data:`SCHEMA_VERSION` when written by this version.
        status: ``"running"`` while training, then ``"completed"``, ``"interrupted"`` (fit left
            by an exception; written when the callback is dropped or the process exits) or
            ``"failed"`` (writing the run failed, e.g. disk full; training went on).
    """

    layers: tuple[LayerInfo, ...]
    model_name: str = "model"
    optimizer: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    gradscope_version: str = ""
    schema_version: int = SCHEMA_VERSION
    status: str = "running"

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict written to ``meta.json``."""
        return {
            "schema_version": self.schema_version,
            "gradscope_version": self.gradscope_version,
            "created": self.created,
            "status": self.status,
            "model": {"name": self.model_name, "layers": [x.to_json() for x in self.layers]},
            "optimizer": self.optimizer,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunMeta:
        """Builds a RunMeta from the dict read from ``meta.json``."""
        model = data.get("model", {})
        return cls(
            layers=tuple(LayerInfo.from_json(x) for x in model.get("layers", [])),
            model_name=str(model.get("name", "model")),
            optimizer=dict(data.get("optimizer", {})),
            config=dict(data.get("config", {})),
            created=str(data.get("created", "")),
            gradscope_version=str(data.get("gradscope_version", "")),
            schema_version=int(data["schema_version"]),
            status=str(data.get("status", "running")),
        )


@dataclass(frozen=True)
class StepRecord:
    """Statistics of one recorded training step (one line of ``stats.jsonl``).

    Attributes:
        step: optimizer step (0-based count of updates applied before this one).
        epoch: epoch index, or None when unknown (custom loops).
        loss: loss of this step's batch; NaN is kept as NaN.
        lr: learning rate used for this step.
        layers: layer name -> statistic name (one of :data:`LAYER_STATS`) -> value.
        variables: ``"layer/variable"`` -> {"grad_norm", "weight_norm"} per trainable variable.
    """

    step: int
    epoch: int | None
    loss: float | None
    lr: float | None
    layers: dict[str, dict[str, float]]
    variables: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of this record (NaN/Inf kept, as Python's json does)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "loss": _float_or_none(self.loss),
            "lr": _float_or_none(self.lr),
            "layers": self.layers,
            "variables": self.variables,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        """Builds a StepRecord from one parsed ``stats.jsonl`` line."""
        loss = data.get("loss")
        lr = data.get("lr")
        return cls(
            step=int(data["step"]),
            epoch=None if data.get("epoch") is None else int(data["epoch"]),
            loss=None if loss is None else float(loss),
            lr=None if lr is None else float(lr),
            layers={
                str(k): {str(s): float(v) for s, v in stats.items()}
                for k, stats in data.get("layers", {}).items()
            },
            variables={
                str(k): {str(s): float(v) for s, v in stats.items()}
                for k, stats in data.get("variables", {}).items()
            },
        )


@dataclass(frozen=True)
class EpochRecord:
    """Keras logs at the end of one epoch (one line of ``epochs.jsonl``).

    Attributes:
        epoch: epoch index.
        step: optimizer step count at the end of the epoch.
        logs: metric name -> value, e.g. ``{"loss": 0.3, "val_accuracy": 0.9}``.
    """

    epoch: int
    step: int
    logs: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of this record."""
        return {"epoch": self.epoch, "step": self.step, "logs": self.logs}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EpochRecord:
        """Builds an EpochRecord from one parsed ``epochs.jsonl`` line."""
        return cls(
            epoch=int(data["epoch"]),
            step=int(data.get("step", 0)),
            logs={str(k): float(v) for k, v in data.get("logs", {}).items()},
        )


def is_finite(value: float | None) -> bool:
    """Returns True if ``value`` is a finite number.

    Args:
        value: a float or None.

    Returns:
        False for None, NaN and ±Inf, True otherwise.

    Example:
        >>> is_finite(float("nan"))
        False
    """
    return value is not None and math.isfinite(value)


def check_schema_version(
    version: int, supported: int, what: str, error: type[ValueError] = ValueError
) -> int:
    """Refuses a document written by a newer gradscope than this one, the one way for every file.

    Older versions are accepted: readers fill what an older document lacks with defaults.

    Args:
        version: the document's ``schema_version``.
        supported: the newest version this gradscope reads.
        what: the document, for the message, e.g. ``"'runs/x'"`` or ``"findings.json"``.
        error: the exception type to raise (a ValueError subclass, e.g. ``RunFormatError``).

    Returns:
        ``version``, when this gradscope can read it.

    Raises:
        ValueError: (of type ``error``) if ``version`` is newer than ``supported``.

    Example:
        >>> check_schema_version(1, SCHEMA_VERSION, "meta.json")
        1
    """
    if version > supported:
        raise error(
            f"{what} was written with schema version {version}, newer than this gradscope "
            f"understands ({supported}). Upgrade gradscope to read it. "
            f"Received: schema_version={version}"
        )
    return version


#: Norms whose NaN/Inf marks a non-finite step even when no gradient entry counted as one
#: (a norm overflows in float32 while every entry is finite; weights corrupted by an update).
_NORMS = ("grad_norm", "weight_norm")


def has_nonfinite(record: StepRecord) -> bool:
    """True if a record shows NaN/Inf: in the loss, a gradient count, a gradient or weight norm.

    The one test of a "non-finite step": the detectors judge only the records before the first
    such step, and the callback reacts to it during training.

    Args:
        record: a step record.

    Returns:
        Whether the step went non-finite.

    Example:
        >>> has_nonfinite(StepRecord(step=0, epoch=0, loss=float("nan"), lr=0.1, layers={}))
        True
    """
    if record.loss is not None and not math.isfinite(record.loss):
        return True
    for stats in record.layers.values():
        if stats.get("nonfinite", 0.0) > 0:
            return True
        if any(not is_finite(stats[name]) for name in _NORMS if stats.get(name) is not None):
            return True
    return False
