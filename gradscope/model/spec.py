"""A small typed description of a model, parsed from a Keras config dict (no Keras import).

Static rules work on :class:`ModelSpec`, never on live Keras objects, so they can audit files
whose layers cannot (or must not) be deserialized: Keras 2 / TF1-era HDF5 configs and models
refused by the safe loader. Both Keras 3 configs (``module``/``registered_name`` keys) and Keras 2
configs (Sequential config as a list, ``VarianceScaling`` initializers, ``batch_input_shape``)
are understood.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gradscope.model.shapes import normalized_size, stored_input_shape

# Layer families, activation families and initializers are named in the model taxonomy (shared
# with the collector's run metadata and the fix ranking); re-exported here, where the static rules
# and their tests have always found them.
from gradscope.model.taxonomy import (
    ACTIVATION_LAYERS,
    KERNEL_LAYERS,
    MERGE_LAYERS,
    MODEL_CLASSES,
    NORMALIZATION_LAYERS,
    RECURRENT_LAYERS,
    WRAPPER_LAYERS,
    InitSpec,
    parse_initializer,
)


@dataclass(frozen=True)
class LayerSpec:
    """One layer, as static rules see it.

    Attributes:
        name: layer name (nested models: ``"outer/inner"``).
        class_name: Keras class name.
        activation: the layer's own activation (``"linear"`` for Dense without one), or None.
        effective_activation: for kernel layers, the activation applied to their output, looking
            through BatchNormalization/Dropout to a following Activation/ReLU layer.
        normalized_after: True if a normalization layer follows this kernel layer before the
            next kernel layer.
        kernel_init: the kernel initializer, for kernel layers.
        fan_in: input width of a Dense layer when it can be inferred, else None.
        units: units or filters.
        recurrent: True for recurrent layers (also wrapped in Bidirectional).
        trainable: the layer's ``trainable`` flag.
        input_shape: the shape of the layer's (first) input without the batch axis, as stored
            (a built layer's ``build_config``, else its first call in a Functional config);
            None when the file does not say (Keras 2 configs, unbuilt layers).
        normalized_size: for a per-example normalization layer
            (:data:`~gradscope.model.taxonomy.PER_EXAMPLE_NORMALIZATION`), how many elements one
            mean/variance is taken over (the product of the normalized axes' sizes; for
            GroupNormalization one group's channels times the other axes); None when unknown.
    """

    name: str
    class_name: str
    activation: str | None = None
    effective_activation: str | None = None
    normalized_after: bool = False
    kernel_init: InitSpec | None = None
    fan_in: int | None = None
    units: int | None = None
    recurrent: bool = False
    trainable: bool = True
    input_shape: tuple[int | None, ...] | None = None
    normalized_size: int | None = None

    @property
    def is_kernel_layer(self) -> bool:
        """True for Dense/Conv-like layers (the ones initialization rules apply to)."""
        return self.class_name in KERNEL_LAYERS


@dataclass(frozen=True)
class OptimizerSpec:
    """The compiled optimizer's class and clipping options.

    Attributes:
        class_name: e.g. ``"Adam"``.
        learning_rate: the learning rate if it is a plain number.
        clipnorm: per-variable norm clipping, or None.
        clipvalue: value clipping, or None.
        global_clipnorm: global norm clipping, or None.
    """

    class_name: str
    learning_rate: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None

    @property
    def clips(self) -> bool:
        """True if any gradient clipping is configured."""
        return any(v is not None for v in (self.clipnorm, self.clipvalue, self.global_clipnorm))


@dataclass(frozen=True)
class ModelSpec:
    """A model, as static rules see it.

    Attributes:
        name: model name.
        class_name: ``"Sequential"``, ``"Functional"``, ...
        layers: layers in stored (forward) order, nested models flattened, input layers dropped.
        optimizer: the compiled optimizer, or None if unknown / not compiled.
        input_shape: input shape without the batch axis, if known.
    """

    name: str
    class_name: str
    layers: tuple[LayerSpec, ...]
    optimizer: OptimizerSpec | None = None
    input_shape: tuple[int | None, ...] | None = None

    @property
    def kernel_layers(self) -> list[LayerSpec]:
        """Dense/Conv-like layers in forward order."""
        return [x for x in self.layers if x.is_kernel_layer]


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def parse_activation(value: Any) -> str | None:
    """Normalizes a stored activation to a lowercase name.

    Args:
        value: ``"relu"``, None, or a serialized function dict (Keras 3:
            ``{"class_name": "function", "config": "relu"}``).

    Returns:
        The lowercase name (``"linear"`` for None), or ``"custom"`` for unnamed functions.

    Example:
        >>> parse_activation({"class_name": "function", "config": "ReLU"})
        'relu'
    """
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, Mapping):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner.lower()
        if isinstance(inner, Mapping) and isinstance(inner.get("name"), str):
            return str(inner["name"]).lower()
    return "custom"


def _layer_list(model_config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    config = model_config.get("config", {})
    # Keras <= 2.2 stored a Sequential's config as the bare list of layers.
    layers = config if isinstance(config, list) else config.get("layers", [])
    return [x for x in layers if isinstance(x, Mapping)]


def _iter_layers(model_config: Mapping[str, Any], prefix: str = "") -> Iterator[Mapping[str, Any]]:
    for layer in _layer_list(model_config):
        cls = str(layer.get("class_name", ""))
        cfg = layer.get("config") or {}
        name = str(cfg.get("name", layer.get("name", cls)) if isinstance(cfg, Mapping) else cls)
        if cls in MODEL_CLASSES and _layer_list(layer):
            yield from _iter_layers(layer, prefix=f"{prefix}{name}/")
        else:
            yield {
                "class_name": cls,
                "config": cfg if isinstance(cfg, Mapping) else {},
                "path": prefix + name,
                "input_shape": stored_input_shape(layer),
            }


def _input_shape(model_config: Mapping[str, Any]) -> tuple[int | None, ...] | None:
    config = model_config.get("config", {})
    candidates: list[Any] = []
    if isinstance(config, Mapping):
        candidates.append(config.get("build_input_shape"))
    for layer in _layer_list(model_config):
        cfg = layer.get("config") or {}
        if isinstance(cfg, Mapping):
            candidates += [cfg.get("batch_shape"), cfg.get("batch_input_shape")]
    for shape in candidates:
        if isinstance(shape, Sequence) and not isinstance(shape, str) and len(shape) >= 2:
            return tuple(None if d is None else int(d) for d in shape[1:])
    return None


def parse_optimizer(config: Mapping[str, Any] | None) -> OptimizerSpec | None:
    """Parses an optimizer config (``{"class_name", "config"}`` or a bare config dict).

    Args:
        config: the stored optimizer config, or None.

    Returns:
        The :class:`OptimizerSpec`, or None.

    Example:
        >>> parse_optimizer({"class_name": "SGD", "config": {"clipnorm": 1.0}}).clips
        True
    """
    if not config:
        return None
    inner = config.get("config", config)
    if not isinstance(inner, Mapping):
        return None
    lr = inner.get("learning_rate", inner.get("lr"))
    return OptimizerSpec(
        class_name=str(config.get("class_name", inner.get("name", "optimizer"))),
        learning_rate=_float(lr),
        clipnorm=_float(inner.get("clipnorm")),
        clipvalue=_float(inner.get("clipvalue")),
        global_clipnorm=_float(inner.get("global_clipnorm")),
    )


def spec_from_config(
    model_config: Mapping[str, Any], optimizer_config: Mapping[str, Any] | None = None
) -> ModelSpec:
    """Builds a :class:`ModelSpec` from a stored Keras model config.

    Args:
        model_config: ``{"class_name": ..., "config": {...}}`` as in ``model_config`` of an
            HDF5 file, ``config.json`` of a .keras file, or ``keras.saving.serialize_keras_object``.
        optimizer_config: the compiled optimizer's ``{"class_name", "config"}``, if known.

    Returns:
        The model description.

    Example:
        >>> spec = spec_from_config(json.loads(h5.attrs["model_config"]))  # doctest: +SKIP
        >>> [x.effective_activation for x in spec.kernel_layers]  # doctest: +SKIP
        ['relu', 'relu', 'softmax']
    """
    raw = list(_iter_layers(model_config))
    shape = _input_shape(model_config)
    width = shape[-1] if shape else None
    parsed: list[dict[str, Any]] = []
    for item in raw:
        cls, cfg = item["class_name"], item["config"]
        if cls == "InputLayer":
            continue
        if cls in WRAPPER_LAYERS and isinstance(cfg.get("layer"), Mapping):
            inner = cfg["layer"]
            inner_cls = str(inner.get("class_name", ""))
            inner_cfg = inner.get("config") or {}
        else:
            inner_cls, inner_cfg = cls, cfg
        activation = ACTIVATION_LAYERS.get(cls)
        if cls == "ReLU" and _float(cfg.get("max_value")) == 6.0:
            activation = "relu6"
        if activation is None and ("activation" in inner_cfg or inner_cls in KERNEL_LAYERS):
            activation = parse_activation(inner_cfg.get("activation"))
        units = inner_cfg.get("units", inner_cfg.get("filters"))
        fan_in = width if cls == "Dense" else None
        in_shape = item["input_shape"]
        parsed.append(
            {
                "name": item["path"],
                "class_name": cls,
                "activation": activation,
                "kernel_init": parse_initializer(inner_cfg.get("kernel_initializer"))
                if cls in KERNEL_LAYERS
                else None,
                "fan_in": fan_in,
                "units": int(units) if isinstance(units, int) else None,
                "recurrent": inner_cls in RECURRENT_LAYERS,
                "trainable": bool(cfg.get("trainable", True)),
                "input_shape": in_shape,
                "normalized_size": normalized_size(cls, cfg, in_shape),
            }
        )
        # Track the feature width for the next Dense layer's fan-in (Dense chains only).
        if cls in KERNEL_LAYERS or inner_cls in RECURRENT_LAYERS:
            width = int(units) if isinstance(units, int) else None
        elif (
            cls in ("Flatten", "Reshape", "GlobalAveragePooling2D", "Concatenate")
            or cls in MODEL_CLASSES
        ):
            width = None
    layers = tuple(_resolve(parsed))
    return ModelSpec(
        name=str((model_config.get("config") or {}).get("name", "model"))
        if isinstance(model_config.get("config"), Mapping)
        else "model",
        class_name=str(model_config.get("class_name", "")),
        layers=layers,
        optimizer=parse_optimizer(optimizer_config),
        input_shape=shape,
    )


def _resolve(parsed: list[dict[str, Any]]) -> Iterator[LayerSpec]:
    # For each kernel layer: the activation its output goes through, looking past normalization
    # and dropout layers up to the next kernel layer; and whether it is normalized there.
    for i, item in enumerate(parsed):
        effective, normalized = item["activation"], False
        if item["class_name"] in KERNEL_LAYERS:
            for nxt in parsed[i + 1 :]:
                cls = nxt["class_name"]
                if cls in KERNEL_LAYERS or nxt["recurrent"] or cls in MERGE_LAYERS:
                    break
                if cls in NORMALIZATION_LAYERS:
                    normalized = True
                elif nxt["activation"] not in (None, "linear") and effective in (None, "linear"):
                    effective = nxt["activation"]
        yield LayerSpec(
            name=item["name"],
            class_name=item["class_name"],
            activation=item["activation"],
            effective_activation=effective,
            normalized_after=normalized,
            kernel_init=item["kernel_init"],
            fan_in=item["fan_in"],
            units=item["units"],
            recurrent=item["recurrent"],
            trainable=item["trainable"],
            input_shape=item["input_shape"],
            normalized_size=item["normalized_size"],
        )
