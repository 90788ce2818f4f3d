"""The user's training setup for fix trials: optimizer, learning rate, loss, batch size.

A fix is only worth keeping if the model then trains better *the way the user trains it*: a
saturating net that reaches 0.83 with Adagrad at learning rate 1.0 can collapse after a ReLU
swap that looked good under another optimizer. :func:`training_setup` therefore takes the
optimizer, learning rate, loss and metrics from the model's compile settings (a ``.keras``
compile config, or a Keras 2 ``.h5`` training config, restored by
:func:`gradscope.trial.policy.compile_as_saved`), lets the command line override any of them,
and falls back to the trial policy's defaults (``SGD(0.01, momentum=0.9)``, the loss the output
implies, batch size 32) where neither says anything. It compiles a **copy**, so optimizer fixes
(clipping, a learning-rate change) land in that copy's compile config and are saved with the
fixed file. Model files do not store a batch size; it is always the default or ``--batch-size``.

Example:
    >>> model, setup = training_setup(loaded, learning_rate=0.1)  # doctest: +SKIP
    >>> setup.describe()  # doctest: +SKIP
    'optimizer Adagrad (model), learning rate 0.1 (command line), ...'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import keras

from gradscope.errors import GradscopeInputError
from gradscope.model.rebuild import clone_with_weights
from gradscope.trial.policy import OptimizerPolicy, infer_loss
from gradscope.trial.runner import DEFAULT_BATCH_SIZE

#: Where a setting came from.
Source = Literal["model", "command line", "argument", "default"]


@dataclass(frozen=True)
class TrainingSetup:
    """How the fix trials train, and where each setting came from.

    Attributes:
        optimizer: the optimizer's class name, e.g. ``"Adagrad"``.
        learning_rate: its learning rate; None for a schedule.
        clipnorm: its ``clipnorm`` (None: no clipping by norm).
        loss: the loss, as text.
        metrics: the compiled metrics, as text.
        batch_size: examples per step.
        sources: per setting (``optimizer``, ``learning_rate``, ``loss``, ``batch_size``):
            ``"model"`` (the model's compile settings, e.g. the file's), ``"command line"``,
            ``"argument"`` (a Python argument of :func:`gradscope.fix.auto_fix`) or
            ``"default"``.
    """

    optimizer: str
    learning_rate: float | None
    clipnorm: float | None
    loss: str
    metrics: tuple[str, ...]
    batch_size: int
    sources: Mapping[str, Source] = field(default_factory=dict)

    @property
    def defaults(self) -> list[str]:
        """Settings that came from the defaults (nothing in the model or on the command line)."""
        return [k for k, v in self.sources.items() if v == "default"]

    def describe(self) -> str:
        """One line: each setting and where it came from.

        Returns:
            e.g. ``"optimizer SGD (default), learning rate 0.01 (default), loss mse (model),
            batch size 32 (default)"``.
        """
        lr = "schedule" if self.learning_rate is None else f"{self.learning_rate:g}"
        src = self.sources
        parts = [
            f"optimizer {self.optimizer} ({src.get('optimizer', 'model')})",
            f"learning rate {lr} ({src.get('learning_rate', 'model')})",
            f"loss {self.loss} ({src.get('loss', 'model')})",
            f"batch size {self.batch_size} ({src.get('batch_size', 'default')})",
        ]
        if self.clipnorm is not None:
            parts.insert(2, f"clipnorm {self.clipnorm:g}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON-ready dict of the setup (with ``sources``)."""
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "loss": self.loss,
            "metrics": list(self.metrics),
            "batch_size": self.batch_size,
            "sources": dict(self.sources),
        }


def _optimizer_from_name(name: str) -> dict[str, Any]:
    try:
        optimizer = keras.optimizers.get(name)
    except (ValueError, TypeError) as err:
        known = ", ".join(
            n.lower()
            for n in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam")
        )
        raise GradscopeInputError(
            f"Unknown optimizer {name!r}; pass a Keras optimizer name, e.g. {known}."
        ) from err
    return keras.optimizers.serialize(optimizer)


def describe_compiled(model: keras.Model) -> tuple[str, float | None, float | None, str, tuple]:
    """Reads the optimizer class, learning rate, clipnorm, loss and metrics a model compiles with.

    Args:
        model: a compiled model.

    Returns:
        ``(optimizer, learning_rate, clipnorm, loss, metrics)``; the learning rate is None for a
        schedule.

    Example:
        >>> describe_compiled(model)[:2]  # doctest: +SKIP
        ('SGD', 0.01)
    """
    config = model.get_compile_config() or {}
    opt = config.get("optimizer")
    inner = opt.get("config", {}) if isinstance(opt, dict) else {}
    while isinstance(inner.get("inner_optimizer"), dict):  # LossScaleOptimizer
        inner = inner["inner_optimizer"].get("config", {})
    name = opt.get("class_name", "?") if isinstance(opt, dict) else type(model.optimizer).__name__
    rate = inner.get("learning_rate")
    # Optimizers hold float32 variables: 0.01 reads back as 0.009999999776; 7 digits are exact.
    lr = float(f"{rate:.7g}") if isinstance(rate, (int, float)) else None
    clip = inner.get("clipnorm")
    loss = config.get("loss", getattr(model, "loss", None))
    loss_text = loss if isinstance(loss, str) else _name_of(loss)
    metrics = tuple(_name_of(m) for m in (config.get("metrics") or []))
    clip_value = None if clip is None else float(f"{clip:.7g}")
    return str(name), lr, clip_value, loss_text, metrics


def _name_of(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        inner = obj.get("config")
        return (
            str(inner.get("name"))
            if isinstance(inner, dict) and "name" in inner
            else str(obj.get("class_name", obj))
        )
    return str(getattr(obj, "name", None) or getattr(obj, "__name__", None) or obj)


def training_setup(
    model: keras.Model,
    optimizer: str | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    policy: OptimizerPolicy | None = None,
) -> tuple[keras.Model, TrainingSetup]:
    """A compiled copy of ``model`` that trains as the user does, and what that setup is.

    Args:
        model: the model (never changed; compiled or not).
        optimizer: ``--optimizer``: a Keras optimizer name replacing the model's (its own
            default learning rate unless ``learning_rate`` is given).
        learning_rate: ``--learning-rate``: replaces the optimizer's rate (a schedule too).
        batch_size: ``--batch-size``; default :data:`~gradscope.trial.runner.DEFAULT_BATCH_SIZE`.
        policy: where the defaults come from for a model without compile settings.

    Returns:
        ``(copy, setup)``: the copy has the same weights and is compiled with the setup.

    Raises:
        GradscopeInputError: for an unknown optimizer name, a learning rate or batch size that
            is not positive, or a model that cannot be copied.

    Example:
        >>> copy_, setup = training_setup(model, optimizer="adam")  # doctest: +SKIP
        >>> setup.sources["optimizer"]  # doctest: +SKIP
        'command line'
    """
    if learning_rate is not None and not learning_rate > 0:
        raise GradscopeInputError(f"--learning-rate must be > 0. Received: {learning_rate}")
    if batch_size is not None and batch_size < 1:
        raise GradscopeInputError(f"--batch-size must be at least 1. Received: {batch_size}")
    policy = policy or OptimizerPolicy()
    sources: dict[str, Source] = {}
    if model.compiled:
        config = copy.deepcopy(dict(model.get_compile_config() or {}))
        sources |= {"optimizer": "model", "learning_rate": "model", "loss": "model"}
    else:
        loss = infer_loss(model)
        config = {
            "optimizer": keras.optimizers.serialize(policy.default_optimizer()),
            "loss": loss,
            "metrics": ["accuracy"] if "crossentropy" in str(loss) else None,
        }
        sources |= {"optimizer": "default", "learning_rate": "default", "loss": "default"}
    if optimizer is not None:
        config["optimizer"] = _optimizer_from_name(optimizer)
        sources["optimizer"] = sources["learning_rate"] = "command line"
    if learning_rate is not None:
        opt = config.get("optimizer")
        if not isinstance(opt, dict) or not isinstance(opt.get("config"), dict):
            raise GradscopeInputError(
                "--learning-rate: the model's optimizer is not serializable; pass --optimizer too."
            )
        opt["config"]["learning_rate"] = float(learning_rate)
        sources["learning_rate"] = "command line"
    sources["batch_size"] = "command line" if batch_size is not None else "default"
    copy_ = clone_with_weights(
        model, f"'{model.name}' for the fix trials", "subclassed models need get_config()."
    )
    try:
        copy_.compile_from_config(config)
    except Exception as err:
        if sources["optimizer"] == "model" and optimizer is None and learning_rate is None:
            # A compile config Keras cannot rebuild (a custom loss object): train the model's
            # own compiled objects, as the trial policy does.
            policy.compile(copy_, model)
        else:
            raise GradscopeInputError(f"Cannot compile the model with that setup ({err}).") from err
    name, lr, clip, loss_text, metrics = describe_compiled(copy_)
    setup = TrainingSetup(
        name, lr, clip, loss_text, metrics, batch_size or DEFAULT_BATCH_SIZE, sources
    )
    return copy_, setup


__all__ = ["Source", "TrainingSetup", "describe_compiled", "training_setup"]
