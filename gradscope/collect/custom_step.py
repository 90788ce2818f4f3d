"""Custom train steps: which optimizers a model's train step applies, and to which variables.

Keras's own train step applies ``model.optimizer`` to ``model.trainable_variables``. A model that
overrides ``train_step`` (a VAE, a GAN, distillation or contrastive models) may apply other
optimizers (``self.d_optimizer``, ``self.g_optimizer``) to the variables of its sub-models, and
its outer model may never be built, because nothing ever calls it. What such a step applies is
known only once it runs: :class:`StepWatcher` watches the trace of the first train step
(Python-side patches of ``train_step`` and of every optimizer's ``apply``; nothing enters the
graph), then the callback hooks exactly the optimizers the step applied, one group each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from gradscope.collect.hooks import Patches, base_optimizer
from gradscope.collect.layers import iter_units


@dataclass(frozen=True)
class OptimizerGroup:
    """One optimizer a train step applies, and what it applies to.

    Attributes:
        name: the model attribute holding the optimizer (``"optimizer"``, ``"d_optimizer"``).
        optimizer: the optimizer that applies the updates (LossScaleOptimizer unwrapped).
        variables: the variables the step passed to it, in first-seen order.
        calls: how many times one traced train step applies it.
    """

    name: str
    optimizer: keras.optimizers.Optimizer
    variables: tuple[Any, ...]
    calls: int


def find_optimizers(model: keras.Model) -> list[tuple[str, keras.optimizers.Optimizer]]:
    """Every Keras optimizer the model holds in an attribute, ``model.optimizer`` first.

    A custom ``compile`` typically stores its optimizers as attributes (``self.d_optimizer``);
    lists and dicts of optimizers are looked into one level (``"opts_0"``, ``"opts_gen"``).

    Args:
        model: a compiled Keras model.

    Returns:
        ``(attribute name, innermost optimizer)`` pairs, each optimizer once.

    Example:
        >>> model.compile(optimizer="adam")  # doctest: +SKIP
        >>> [name for name, _ in find_optimizers(model)]  # doctest: +SKIP
        ['optimizer']
    """
    found: list[tuple[str, keras.optimizers.Optimizer]] = []
    seen: set[int] = set()

    def add(name: str, value: Any) -> None:
        if isinstance(value, keras.optimizers.Optimizer):
            inner = base_optimizer(value)
            if id(inner) not in seen:
                seen.add(id(inner))
                found.append((name, inner))

    add("optimizer", getattr(model, "optimizer", None))
    attributes = list(vars(model).items())
    for name, value in attributes:
        add(name, value)
    # Containers after plain attributes: TensorFlow's tracking keeps its own dicts of the
    # attributes (``_self_unconditional_dependency_names``), whose names must not win.
    for name, value in attributes:
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                add(f"{name}_{i}", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                add(f"{name}_{key}", item)
    return found


class StepWatcher(Patches):
    """Notes, while Keras traces a train step, which optimizers it applies to which variables.

    Python-side only: the wrappers count ``apply`` calls at trace time and add nothing to the
    graph, so the first step runs at full speed and :meth:`remove` restores the model exactly.

    Args:
        model: the model being trained.
        optimizers: the optimizers to watch, as :func:`find_optimizers` returns them.

    Attributes:
        traced: True once a train step has been traced through ``model.train_step``.

    Example:
        >>> watcher = StepWatcher(model, find_optimizers(model))  # doctest: +SKIP
        >>> watcher.install()  # doctest: +SKIP
        >>> model.fit(x, epochs=1, steps_per_epoch=1)  # doctest: +SKIP
        >>> [g.name for g in watcher.groups()]  # doctest: +SKIP
        ['d_optimizer', 'g_optimizer']
    """

    def __init__(
        self, model: keras.Model, optimizers: Sequence[tuple[str, keras.optimizers.Optimizer]]
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizers = list(optimizers)
        self.traced = False
        self._counts: dict[int, int] | None = None
        self._calls: dict[int, int] = {}
        self._variables: dict[int, dict[int, Any]] = {}

    def install(self) -> None:
        """Patches ``model.train_step`` and every watched optimizer's ``apply``."""
        original_step = self.model.train_step

        def train_step(data: Any) -> Any:
            if not self.active:
                return original_step(data)
            counts: dict[int, int] = {}
            self._counts = counts
            try:
                return original_step(data)
            finally:
                self._counts = None
                self.traced = True
                for i, n in counts.items():
                    self._calls[i] = max(self._calls.get(i, 0), n)

        self._patch(self.model, "train_step", train_step)
        for i, (_, optimizer) in enumerate(self.optimizers):
            self._patch(optimizer, "apply", self._wrap_apply(i, optimizer))

    def _wrap_apply(self, index: int, optimizer: keras.optimizers.Optimizer) -> Callable[..., Any]:
        original = optimizer.apply

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            if trainable_variables is not None:
                trainable_variables = list(trainable_variables)  # may be a one-shot iterator
            if self.active and self._counts is not None:
                self._counts[index] = self._counts.get(index, 0) + 1
                applied = trainable_variables
                if applied is None:  # grads only: the variables it was built with
                    applied = list(getattr(optimizer, "_trainable_variables", []))
                known = self._variables.setdefault(index, {})
                for v in applied:
                    known.setdefault(id(v), v)
            return original(grads, trainable_variables)

        return apply

    def groups(self) -> list[OptimizerGroup]:
        """The optimizers the traced train step applied, in :func:`find_optimizers` order.

        Returns:
            One :class:`OptimizerGroup` per applied optimizer (empty if it applied none).
        """
        return [
            OptimizerGroup(
                name=name,
                optimizer=optimizer,
                variables=tuple(self._variables.get(i, {}).values()),
                calls=self._calls[i],
            )
            for i, (name, optimizer) in enumerate(self.optimizers)
            if self._calls.get(i)
        ]


def _short(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def bypass_note(model: keras.Model, optimizers: Sequence[str]) -> str:
    """The note for a train step that applies none of the model's optimizers.

    Args:
        model: the model.
        optimizers: names of the optimizers looked for.

    Returns:
        One line saying what is not recorded and what to do.

    Example:
        >>> bypass_note(keras.Sequential(name="m"), ["optimizer"])[:40]
        "the train step of model 'm' applied non"
    """
    return (
        f"the train step of model '{model.name}' applied none of its optimizers "
        f"({_short(list(optimizers))}): no gradient, weight or update statistics can be "
        "recorded. Apply gradients with an optimizer's apply_gradients()/apply(), or record "
        "them with gradscope.Scope"
    )


def orphan_note(model: keras.Model, groups: Sequence[OptimizerGroup]) -> str | None:
    """The note for updated variables that belong to no layer (a model-level weight).

    Args:
        model: the model.
        groups: the optimizers its train step applies.

    Returns:
        One line naming them, or None when every updated variable belongs to a layer.

    Example:
        >>> orphan_note(model, groups)  # doctest: +SKIP
        "1 variable updated by 'optimizer' belongs to no layer ('temperature'): not recorded"
    """
    in_layers = set()
    for _, layer in iter_units(model):
        for v in layer.trainable_variables:
            in_layers.update((id(v), id(v.value)))
    lost = [
        (group.name, getattr(v, "path", None) or getattr(v, "name", "?"))
        for group in groups
        for v in group.variables
        if id(v) not in in_layers
    ]
    if not lost:
        return None
    owners = sorted({name for name, _ in lost})
    noun = "variable" if len(lost) == 1 else "variables"
    verb = "belongs" if len(lost) == 1 else "belong"
    return (
        f"{len(lost)} {noun} updated by {_short(owners)} {verb} to no layer "
        f"({_short([path for _, path in lost])}): not recorded"
    )


def loss_note() -> str:
    """The note for a train step that computes its own loss.

    Returns:
        One line saying where the recorded loss comes from instead.

    Example:
        >>> loss_note().startswith("the train step computes its own loss")
        True
    """
    return (
        "the train step computes its own loss (not model.compute_loss): records take the "
        "'loss' its logs report, often a running mean of the epoch, or none"
    )


def activation_note(names: Sequence[str]) -> str:
    """The note for activation layers the train step never calls.

    Args:
        names: the layers (paths) whose activations cannot be recorded.

    Returns:
        One line naming them.

    Example:
        >>> activation_note(["decoder/dense"])
        "activations of 1 layer are not computed in the train step ('decoder/dense'): not recorded"
    """
    noun = "layer" if len(names) == 1 else "layers"
    return (
        f"activations of {len(names)} {noun} are not computed in the train step "
        f"({_short(list(names))}): not recorded"
    )


def probe_note(model: keras.Model) -> str:
    """The note for ``probe_data`` on a model that is never called as a whole.

    Args:
        model: the model.

    Returns:
        One line saying where activations come from instead.

    Example:
        >>> probe_note(keras.Sequential(name="m")).startswith("probe_data is ignored")
        True
    """
    return (
        f"probe_data is ignored: model '{model.name}' is never called as a whole (its train "
        "step calls sub-models); activations come from the training batch"
    )
