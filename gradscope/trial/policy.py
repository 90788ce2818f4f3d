"""How a trial compiles its copy of the model: the one optimizer policy.

Every trial (the audit's probe, each fix trial, the demo's verification trials) compiles the copy
it trains by one rule:

1. **A compiled model trains with its own settings.** The copy is compiled from the model's
   compile config, Keras's own round trip: the same optimizer class and hyperparameters with
   fresh state (step 0, no moments, a schedule from its start), the same loss and metrics.
2. **A model without compile settings** trains with :data:`DEFAULT_OPTIMIZER`,
   ``SGD(learning_rate=0.01, momentum=0.9)``, the loss its output layer implies
   (:func:`infer_loss`) and, for a cross-entropy loss, the ``accuracy`` metric.

A model file reaches rule 1 by being compiled as it was saved when it is loaded
(:func:`compile_as_saved`: a Keras 3 compile config, or the loss and built-in optimizer a Keras 2
file names), so ``gradscope audit`` and ``gradscope fix`` train a file's model the same way.

Why momentum SGD as the default rather than Adam: gradscope diagnoses the *scale* of gradients.
SGD applies a gradient as it is, so a trial's loss and update ratios show a vanishing or exploding
gradient the way an SGD training would; Adam divides every update by a running RMS of its own
gradient, which makes a layer with a tiny gradient take full-size steps and can make a sick
network look as if it learns. It is also what the fix trials always used, so the measured fix
priors (``reports/fix_priors.md``) stay valid. (The audit's probe used ``Adam(1e-3)`` before the
trials were merged; only models that were never compiled see the difference.)

Example:
    >>> choice = OptimizerPolicy().compile(copy_, model)  # doctest: +SKIP
    >>> choice  # doctest: +SKIP
    'model'
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import keras

from gradscope.errors import GradscopeInputError, first_line
from gradscope.model.loader import LoadedModel

#: The optimizer of models without compile settings (see the module docstring for why), in
#: ``keras.optimizers.deserialize`` form; never mutated (every use deep-copies it).
DEFAULT_OPTIMIZER: dict[str, Any] = {
    "class_name": "SGD",
    "config": {"learning_rate": 0.01, "momentum": 0.9},
}

#: Where a trial's optimizer came from: the model's own compile settings or the default.
OptimizerSource = Literal["model", "default"]


@dataclass(frozen=True)
class OptimizerPolicy:
    """The one rule by which a trial compiles its copy (see the module docstring).

    Attributes:
        default: the optimizer, in ``keras.optimizers.deserialize`` form, for models without
            compile settings; :data:`DEFAULT_OPTIMIZER` unless a benchmark wants another.

    Example:
        >>> OptimizerPolicy().default_optimizer().get_config()["momentum"]  # doctest: +SKIP
        0.9
    """

    default: Mapping[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_OPTIMIZER))

    def default_optimizer(self) -> keras.optimizers.Optimizer:
        """A new instance of the default optimizer.

        Returns:
            The optimizer, with no state.

        Example:
            >>> type(OptimizerPolicy().default_optimizer()).__name__  # doctest: +SKIP
            'SGD'
        """
        return keras.optimizers.deserialize(copy.deepcopy(dict(self.default)))

    def compile(self, copy_: keras.Model, model: keras.Model) -> OptimizerSource:
        """Compiles ``copy_``, a copy of ``model``, by the policy.

        Args:
            copy_: the copy to train (compiled in place).
            model: the model it copies (only read).

        Returns:
            ``"model"`` if the copy trains with the model's own compile settings, ``"default"``
            if with :attr:`default`.

        Raises:
            GradscopeInputError: if the copy cannot be compiled (a subclass whose own
                ``compile()`` refuses the arguments).

        Example:
            >>> OptimizerPolicy().compile(copy_, model)  # doctest: +SKIP
            'default'
        """
        try:
            if model.compiled:
                _compile_like(copy_, model)
                return "model"
            loss = infer_loss(model)
            metrics = ["accuracy"] if "crossentropy" in str(loss) else None
            copy_.compile(optimizer=self.default_optimizer(), loss=loss, metrics=metrics)
        except (TypeError, ValueError) as err:
            raise GradscopeInputError(
                f"Cannot compile a copy of '{model.name}' for a trial ({first_line(err)}); a "
                "subclass that overrides compile() must accept optimizer= and loss=."
            ) from err
        return "default"


def _compile_like(copy_: keras.Model, model: keras.Model) -> None:
    # Keras's round trip gives fresh objects everywhere (optimizer state, metric state), so the
    # user's model shares nothing with the copy. Subclasses with their own compile() skip it
    # (Keras would only warn and leave the copy uncompiled), as do configs naming objects this
    # process cannot deserialize (a custom loss that is not registered).
    if type(copy_).compile is keras.Model.compile:
        with contextlib.suppress(Exception):
            copy_.compile_from_config(copy.deepcopy(dict(model.get_compile_config())))
            if copy_.compiled:
                return
    optimizer = model.optimizer
    fresh = None if optimizer is None else type(optimizer).from_config(optimizer.get_config())
    copy_.compile(optimizer=fresh, loss=getattr(model, "loss", None))


def _output_kind(model: keras.Model) -> tuple[str, int]:
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "") if activation is not None else ""
    if type(last).__name__ == "Softmax":
        name = "softmax"
    # A subclassed model has no symbolic outputs (and its last layer need not be its output):
    # nothing is known of its output, which infer_loss then treats as a regression.
    shape = declared_output_shape(model)
    if shape is None:
        return "", 1
    width = int((shape[-1] if shape else None) or 1)
    return name, width


def declared_output_shape(model: keras.Model) -> tuple[int | None, ...] | None:
    """The shape of the model's first output, without the batch axis, as the model declares it.

    Args:
        model: the model.

    Returns:
        The shape, or None for a model without symbolic outputs (a subclassed model, e.g. a GAN
        with its own ``train_step``).

    Example:
        >>> declared_output_shape(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
        (2,)
    """
    outputs = getattr(model, "outputs", None)
    return tuple(outputs[0].shape[1:]) if outputs else None


def infer_loss(model: keras.Model) -> Any:
    """The loss a trial trains with: the model's compiled loss, else one its output implies.

    Args:
        model: the model.

    Returns:
        The compiled loss (as in the model's compile config), or: softmax outputs -> sparse
        categorical cross-entropy, a single sigmoid -> binary cross-entropy, anything else ->
        mean squared error.

    Example:
        >>> infer_loss(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, "softmax")]))
        'sparse_categorical_crossentropy'
    """
    if model.compiled:
        loss = model.get_compile_config().get("loss")
        if loss is None:
            loss = getattr(model, "loss", None)
        if loss is not None:
            return loss
    name, width = _output_kind(model)
    if name == "softmax" and width > 1:
        return "sparse_categorical_crossentropy"
    if name == "sigmoid":
        return "binary_crossentropy"
    return "mse"


def legacy_optimizer(stored: Mapping[str, Any]) -> keras.optimizers.Optimizer | None:
    """Builds the optimizer a model file names, if Keras 3 has its class.

    Built-in optimizer classes only (never user code); Keras 2 names (``lr``) are mapped and
    arguments Keras 3 dropped (``decay``) are left out.

    Args:
        stored: ``{"class_name", "config"}`` from the file.

    Returns:
        The optimizer, or None if the class is unknown or the config unusable.

    Example:
        >>> legacy_optimizer({"class_name": "SGD", "config": {"lr": 0.05}}).learning_rate
        ... # doctest: +SKIP
        0.05
    """
    cls = getattr(keras.optimizers, str(stored.get("class_name", "")), None)
    config = stored.get("config")
    if not (isinstance(cls, type) and issubclass(cls, keras.optimizers.Optimizer)):
        return None
    if not isinstance(config, Mapping):
        return None
    params = dict(config)
    if "lr" in params:
        params.setdefault("learning_rate", params.pop("lr"))
    accepted = set(inspect.signature(cls.__init__).parameters)
    kwargs = {k: v for k, v in params.items() if k in accepted and k != "self"}
    if not isinstance(kwargs.get("learning_rate", 0.0), (int, float)):
        kwargs.pop("learning_rate")  # a serialized schedule: the trial uses the default rate
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        return None


def compile_as_saved(loaded: LoadedModel, policy: OptimizerPolicy | None = None) -> keras.Model:
    """Compiles a loaded model the way its file says it was compiled, when possible.

    gradscope's loader deserializes without compiling (legacy compile configs often fail in
    Keras 3). A Keras 3 compile config is restored whole; otherwise a loss name the file stores
    is compiled with the file's optimizer if Keras 3 has its class, else the policy's default.

    Args:
        loaded: what :func:`gradscope.model.loader.load_model_safely` returned (its model is
            compiled in place; it is gradscope's own object, never the user's).
        policy: the policy whose default stands in for an optimizer Keras 3 lacks.

    Returns:
        The model: compiled as saved, or uncompiled when the file holds no usable loss (trials
        then follow rule 2 of the policy).

    Example:
        >>> model = compile_as_saved(load_model_safely("model.h5"))  # doctest: +SKIP
    """
    model = loaded.model
    stored = loaded.stored
    config = stored.model_config.get("compile_config")
    if (
        isinstance(config, Mapping)
        and config.get("loss") is not None
        and isinstance(config.get("optimizer"), Mapping)
    ):
        try:
            model.compile_from_config(copy.deepcopy(dict(config)))
            return model
        except Exception:
            pass  # a partial or foreign config: the loss name and optimizer below, if usable
    if isinstance(stored.loss, str):
        # Keras 2 HDF5 files name their loss and optimizer in training_config: trials then train
        # with the user's loss (e.g. one-hot categorical targets) and, when known, optimizer.
        optimizer = legacy_optimizer(stored.optimizer_config) if stored.optimizer_config else None
        if optimizer is None:
            optimizer = (policy or OptimizerPolicy()).default_optimizer()
        with contextlib.suppress(Exception):
            # An unknown legacy loss name leaves the model uncompiled: trials then infer the
            # loss from the output layer.
            model.compile(optimizer=optimizer, loss=stored.loss)
    return model
