"""The audit's default probe: Keras's own training step on a copy, reduced on the host.

The recorded probe (:func:`gradscope.trial.runner.run_trial`) fits a copy under
``GradScope(freq=1)``, which traces an instrumented train step: most of an audit's time on a
small model, and tens of seconds on a large one, for eight steps. This probe traces the copy's
own ``train_step`` instead (Keras's step: its loss, loss scaling, clipping and optimizer), once,
with the hooks placed where GradScope places them (the optimizer's reduced gradients and update
step, the loss computation, each watched layer's call) returning what they saw as outputs, and
reduces those with numpy (:mod:`gradscope.audit.reduce`): no statistic is computed in the graph.
It writes the same run directory as the recorded probe (one record per step, the epoch's Keras
logs), so the detectors read it unchanged.

Models this probe cannot follow (a custom ``train_step``, several optimizers, gradient
accumulation) get the recorded probe: :func:`light_supported` says which.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.errors_impl import InaccessibleTensorError

from gradscope._version import __version__
from gradscope.audit.reduce import act_row, variable_sums, weight_sums
from gradscope.collect import stats
from gradscope.collect.hooks import Patches, base_optimizer
from gradscope.collect.layers import WatchPlan, plan_watch
from gradscope.collect.rewrites import no_graph_rewrites
from gradscope.collect.session import optimizer_description
from gradscope.data.rundirs import new_run_dir
from gradscope.data.schema import EpochRecord, RunMeta, StepRecord
from gradscope.data.store import Run, RunWriter, load_run
from gradscope.errors import GradscopeInputError
from gradscope.trial.data import TrialData, batch_order, data_errors
from gradscope.trial.policy import infer_loss
from gradscope.trial.runner import DEFAULT_BATCH_SIZE, prepare_trial_model


def light_supported(model: keras.Model) -> bool:
    """Whether the light probe can follow a model's training step.

    Args:
        model: the model to probe (compiled or not).

    Returns:
        False for a subclass with its own ``train_step`` (it may use several optimizers or
        none) and for optimizers without the TensorFlow update path or with gradient
        accumulation: those get the recorded probe.

    Example:
        >>> light_supported(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        True
    """
    if type(model).train_step is not keras.Model.train_step:
        return False
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return True  # the trial policy's default optimizer
    inner = base_optimizer(optimizer)
    return (
        hasattr(inner, "_all_reduce_sum_gradients")
        and hasattr(inner, "_backend_update_step")
        and not getattr(optimizer, "gradient_accumulation_steps", None)
    )


class _Tap(Patches):
    """Notes what one training step of the probe's copy computes, where GradScope records it.

    Patches on the copy's own objects (its optimizer, the model, its watched layers), removed
    by :meth:`remove`: gradients as the optimizer applies them (unscaled, clipped) with the
    weights right before the update, the learning rate, the loss before loss scaling and each
    watched layer's output (a layer called twice keeps its last call, as GradScope does).
    """

    def __init__(self, model: keras.Model, plan: WatchPlan) -> None:
        super().__init__()
        self.seen: dict[str, Any] = {}
        slots: dict[int, int] = {}
        for j, v in enumerate(v for variables in plan.grad_variables for v in variables):
            slots[id(v)] = slots[id(v.value)] = j
        optimizer = base_optimizer(model.optimizer)
        reduce_grads = optimizer._all_reduce_sum_gradients
        update_step = optimizer._backend_update_step

        def all_reduce(grads_and_vars: Any) -> Any:
            reduced = reduce_grads(grads_and_vars)
            grads = self.seen.setdefault("grads", {})
            for g, v in reduced:
                j = slots.get(id(v))
                if g is not None and j is not None:
                    grads[j] = (tf.convert_to_tensor(g), tf.identity(v))
            return reduced

        def update(grads: Any, variables: Any, learning_rate: Any) -> Any:
            self.seen["lr"] = learning_rate
            return update_step(grads, variables, learning_rate)

        self._patch(optimizer, "_all_reduce_sum_gradients", all_reduce)
        self._patch(optimizer, "_backend_update_step", update)
        compute_loss = model._compute_loss

        def loss_fn(*args: Any, **kwargs: Any) -> Any:
            loss = compute_loss(*args, **kwargs)
            self.seen["loss"] = loss
            return loss

        self._patch(model, "_compute_loss", loss_fn)
        for index, (_, layer, _) in enumerate(plan.act_layers):
            self._patch(layer, "call", self._wrap(layer.call, index))

    def _wrap(self, call: Callable[..., Any], index: int) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            outputs = call(*args, **kwargs)
            first = outputs[0] if isinstance(outputs, list | tuple) else outputs
            self.seen.setdefault("acts", {})[index] = first
            return outputs

        return wrapped


def _eager_step(model: keras.Model, tap: _Tap) -> Callable[..., dict[str, Any]]:
    # One step of Keras's own train_step, returning what the tap saw.
    def one_step(x: Any, y: Any) -> dict[str, Any]:
        tap.seen = {}
        model.train_step((x, y))
        return tap.seen

    return one_step


def _step_function(
    model: keras.Model, one_step: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    # Keras's own train_step, traced once as fit would (no XLA: the probe's 8 steps do not
    # repay a compile) and returning what the tap saw as outputs: raw gradients, pre-update
    # weights, activations, loss and learning rate, reduced on the host afterwards. Eight
    # eager steps cost more than the trace (per-variable eager optimizer ops dominate).
    if model.run_eagerly or base_optimizer(model.optimizer) is not model.optimizer:
        # A LossScaleOptimizer applies inside a tf.cond (only finite gradients): what the hooks
        # see there cannot leave the branch, so that step stays eager.
        return one_step
    return tf.function(one_step, autograph=False, reduce_retracing=True)


def _tensors(x: Any, y: np.ndarray) -> tuple[Any, Any]:
    # As fit's array adapter feeds them: floating arrays in Keras's float type.
    def convert(a: np.ndarray) -> tf.Tensor:
        a = np.asarray(a)
        return tf.convert_to_tensor(a.astype(keras.config.floatx()) if a.dtype.kind == "f" else a)

    xs = [convert(a) for a in x] if isinstance(x, list) else convert(x)
    return xs, convert(y)


_GRAD_COLUMNS = len(stats.VAR_GRAD_ORDER)
_W_COLUMNS = len(stats.VAR_WEIGHT_ORDER)


def _record(
    step: int, seen: dict[str, Any], plan: WatchPlan, after: list[np.ndarray]
) -> StepRecord:
    # Per-variable sums of the variables that got a gradient, combined into layer rows by the
    # recorder's own host function: one definition of every layer statistic for both probes.
    grads = {j: (g.numpy(), v.numpy()) for j, (g, v) in seen.get("grads", {}).items()}
    flat = [(i, v) for i, variables in enumerate(plan.grad_variables) for v in variables]
    present = sorted(grads)
    owner = np.array([flat[j][0] for j in present], np.int64)
    sizes = np.array([max(grads[j][0].size, 1) for j in present], np.float64)
    rows, var_grad, var_weight = stats.layer_stats(
        np.array([variable_sums(grads[j][0]) for j in present]).reshape(-1, _GRAD_COLUMNS),
        np.array([weight_sums(grads[j][1], after[j]) for j in present]).reshape(-1, _W_COLUMNS),
        owner,
        sizes,
        len(plan.grad_layers),
    )
    layers: dict[str, dict[str, float]] = {
        plan.grad_layers[i]: dict(zip(stats.LAYER_STAT_ORDER, rows[i].tolist(), strict=True))
        for i in sorted(set(owner.tolist()))
    }
    variables = {
        f"{plan.grad_layers[flat[j][0]]}/{flat[j][1].path.rsplit('/', 1)[-1]}": {
            "grad_norm": float(var_grad[k]),
            "weight_norm": float(var_weight[k]),  # after the update, as the layer's
        }
        for k, j in enumerate(present)
    }
    for index, output in seen.get("acts", {}).items():
        name, _, kind = plan.act_layers[index]
        layers.setdefault(name, {}).update(act_row(np.asarray(output), kind))
    loss, lr = seen.get("loss"), seen.get("lr")
    return StepRecord(
        step=step,
        epoch=0,
        loss=None if loss is None else float(loss),
        lr=None if lr is None else float(lr),
        layers=layers,
        variables=variables,
    )


def light_probe(
    model: keras.Model,
    data: TrialData,
    steps: int,
    log_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    owned: bool = False,
) -> Run:
    """Trains a copy of ``model`` for ``steps`` steps and records every one of them.

    The copy, its compilation and the batch order are the recorded probe's
    (:func:`gradscope.trial.runner.prepare_trial_model`,
    :func:`gradscope.trial.data.batch_order`), so both probes train the same copy on the same
    batches.

    Args:
        model: the model; never trained or changed (a copy is) unless ``owned``.
        data: what to train on (:func:`gradscope.trial.data.feed`).
        steps: optimizer steps (>= 1).
        log_dir: a new run directory is created under it (``run.path``).
        seed: Keras's random seed before copying, and the batch order's seed.
        batch_size: examples per step (at most the number of examples).
        owned: train ``model`` itself instead of a copy: only for a model the caller built
            right after ``keras.utils.set_random_seed(seed)`` and never hands out (the audit's
            model loaded from a file), whose dropout then draws the copy's masks.

    Returns:
        The recorded :class:`Run`: one record per step (GradScope's statistics at freq=1),
        the epoch's Keras logs, status ``"completed"``.

    Raises:
        GradscopeInputError: for user data that does not fit the model or its loss.
        TrialNotRunError: for models that cannot be copied, compiled or trained on synthetic
            data.

    Example:
        >>> run = light_probe(model, feed(model, n=128), 8, "runs/audit")  # doctest: +SKIP
        >>> len(run.records)  # doctest: +SKIP
        8
    """
    if steps < 1:
        raise GradscopeInputError(f"--steps must be at least 1. Received: {steps}")
    trained, _ = prepare_trial_model(model, seed=seed, copy=not owned)
    plan = plan_watch(trained)
    size = min(batch_size, len(data))
    order = batch_order(len(data), steps, size, seed)
    watched = [v for variables in plan.grad_variables for v in variables]
    writer = RunWriter(new_run_dir(log_dir), _meta(trained, plan))
    tap = _Tap(trained, plan)
    try:
        with data_errors(trained, infer_loss(trained), synthetic=data.synthetic):
            tap_step = _eager_step(trained, tap)
            step_fn = _step_function(trained, tap_step)
            if not trained.optimizer.built:
                # Its variables made outside the traced function, as fit does; metric variables
                # are made by their first (traced) update, which tf.function allows.
                trained.optimizer.build(trained.trainable_variables)
            trained.reset_metrics()  # as fit does at the start of an epoch
            # For 8 steps Grappler's first-call optimisation costs more than it saves (first
            # call 0.25 -> 0.20 s CPU on the benchmark CNN, 0.22 -> 0.15 s on the MLP).
            with no_graph_rewrites():
                for step in range(steps):
                    x, y = _tensors(*data.take(order[step * size : (step + 1) * size]))
                    try:
                        seen = step_fn(x, y)
                    except InaccessibleTensorError:
                        # A hook ran inside a control-flow branch of the step (a tf.cond, a
                        # loop): what it saw cannot be the traced step's output. Tracing ran
                        # nothing, so the steps run eagerly from here, this one included.
                        if step > 0 or step_fn is tap_step:
                            raise
                        step_fn = tap_step
                        seen = step_fn(x, y)
                    after = [v.numpy() for v in watched]
                    writer.append(_record(step, seen, plan, after))
            logs = {k: float(v) for k, v in trained.get_metrics_result().items()}
        writer.append_epoch(EpochRecord(epoch=0, step=steps, logs=logs))
        writer.set_status("completed")
    finally:
        tap.remove()
        writer.close()
    return load_run(writer.path)


def _meta(model: keras.Model, plan: WatchPlan) -> RunMeta:
    config = {"freq": 1, "histogram_freq": 0, "activation_freq": 1, "layers": None}
    return RunMeta(
        layers=plan.infos,
        model_name=model.name,
        optimizer=optimizer_description(model.optimizer),
        config={**config, "probe": "light"},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        gradscope_version=__version__,
    )


__all__ = ["light_probe", "light_supported"]
