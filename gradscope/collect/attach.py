"""Installing one fit's recording on a model: the plan, the recorder, the hooks and the clock.

Two ways in. A built model whose only optimizer is ``model.optimizer`` is hooked before its first
step, and its records are keyed by that optimizer's step. Any other model (a subclassed model
built lazily, a custom ``train_step`` whose outer model is never built, a GAN with two
optimizers) is hooked after its first step, once :class:`StepWatcher` has seen which optimizers
the step applies and to which variables; its records are keyed by a train-step counter of our
own, so every optimizer's rows of one step share one step number.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf

from gradscope.collect import dispatch as dispatching
from gradscope.collect import rewrites
from gradscope.collect.custom_step import (
    OptimizerGroup,
    activation_note,
    bypass_note,
    find_optimizers,
    loss_note,
    orphan_note,
    probe_note,
)
from gradscope.collect.dispatch import (
    StepDispatch,
    build_compile_state,
    build_step_function,
    plain_traced,
)
from gradscope.collect.engine import Recorder
from gradscope.collect.hooks import Hooks, Patches, base_optimizer
from gradscope.collect.layers import WatchPlan, plan_watch
from gradscope.collect.options import Frequencies
from gradscope.collect.probe_pass import make_probe
from gradscope.collect.session import RecordingSession, optimizer_description


@dataclass
class Attachment:
    """What one fit installed on a model.

    Attributes:
        plan: what is watched.
        recorder: the in-graph recorder.
        hooks: the installed patches (none installed when nothing can be recorded).
        clock: the variable counting steps (read on the host); None when nothing is recorded.
        probe_fn: the compiled ``probe_data`` pass, or None.
        optimizer_meta: the optimizer(s) as ``meta.json`` describes them.
        notes: what this fit cannot record, one line each.
        dispatch: the fit's ``model.train_function`` (None when nothing is recorded).
    """

    plan: WatchPlan
    recorder: Recorder
    hooks: Hooks
    clock: tf.Variable | None
    probe_fn: Any = None
    optimizer_meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dispatch: StepDispatch | None = None


def _same_watch(a: WatchPlan, b: WatchPlan) -> bool:
    # The same variable and layer objects under the same names: the buffers still fit.
    def key(plan: WatchPlan) -> tuple[Any, ...]:
        return (
            plan.grad_layers,
            plan.groups,
            plan.grad_groups,
            [id(v) for vs in plan.grad_variables for v in vs],
            [(name, id(layer)) for name, layer, _ in plan.act_layers],
        )

    return key(a) == key(b)


def _recorder(
    plan: WatchPlan, freqs: Frequencies, model: keras.Model, previous: Recorder | None
) -> Recorder:
    # One ring-buffer row per recorded step between two host reads, plus slack.
    spe = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    slots = math.ceil(spe / freqs.freq) + 2
    if previous is not None and previous.slots == slots and _same_watch(previous.plan, plan):
        previous.reset()
        return previous
    return Recorder(plan, freqs, slots, model.distribute_strategy)


def _plain_function(model: keras.Model) -> Any:
    # The function Keras built for this fit, from the model's own train_step (read before the
    # hooks patch it): unrecorded executions run it untouched. Another GradScope's dispatch
    # already installed for this fit is returned as is, to be chained.
    current = model.__dict__.get("train_function")
    return current if current is not None else build_step_function(model)


def _install_dispatch(
    model: keras.Model,
    hooks: Hooks,
    plain: Any,
    clock: tf.Variable,
    freqs: Frequencies,
    exact: bool,
    probe: bool = False,
    steps: int | None = None,
    counted: bool = False,
) -> StepDispatch:
    spe = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    # With XLA, the recorded step (a fraction 1/freq of steps) runs as a TF graph rather than
    # paying a second XLA compile per fit; with freq=1 it is the only step, compiled as asked.
    jit = None if freqs.freq == 1 else False
    inner = plain if isinstance(plain, StepDispatch) else None
    # A large model's recorded step gets the Grappler rewrites that pay for it; XLA compiles
    # its own (rewrites.LEAN_FROM_VARIABLES).
    watched = sum(len(vs) for vs in hooks.recorder.plan.grad_variables)
    xla = bool(model.jit_compile) and jit is None
    lean = watched >= rewrites.LEAN_FROM_VARIABLES and not xla
    # A short first fit runs the instrumented step throughout rather than trace Keras's too
    # (dispatch.SHARED_UP_TO_STEPS): not a large model (its step would run lean rewrites and
    # keep a copy of its weights) nor XLA (its steps would run without it).
    shared = (
        freqs.freq > 1
        and steps is not None
        and steps <= dispatching.SHARED_UP_TO_STEPS
        and inner is None
        and not lean
        and not model.jit_compile
        and not plain_traced(plain)
    )
    # Several steps per execution may hold unrecorded ones: only then do writes need a cond.
    hooks.recorder.guarded = (spe > 1 and freqs.freq > 1) or shared
    # The recorded step returns its buffers with its logs, sparing the host a second call,
    # where those logs are its own: one replica (Keras averages replicas' outputs), writes not
    # guarded (an execution's last step then returns every row of the execution), no probe
    # batch writing activations after it, and traced (an eager step reads as cheaply).
    # guard() turns it off.
    hooks.recorder.carry = (
        not hooks.recorder.guarded
        and not probe
        and not model.run_eagerly
        and model.distribute_strategy.num_replicas_in_sync == 1
    )
    dispatch = StepDispatch(
        inner.plain if inner is not None else plain,
        lambda: build_step_function(model, jit_compile=jit),
        clock,
        freqs.freq,
        steps_per_execution=spe,
        exact=exact,
        recorder=hooks.recorder,
        lean=lean,
        prepare=lambda iterator: build_compile_state(model, iterator),
        shared=shared,
        counted=counted,
    )
    if inner is not None:
        # Each one's hooks write in the other's recorded steps: the beat is checked in-graph.
        dispatch.inner = inner
        hooks.recorder.guarded = True
        inner.guard()
    hooks.install_train_function(dispatch)
    return dispatch


def attach(
    model: keras.Model,
    layers: Sequence[str] | None,
    freqs: Frequencies,
    probe_inputs: Any,
    previous: Recorder | None = None,
    groups: Sequence[OptimizerGroup] | None = None,
    steps: int | None = None,
) -> Attachment:
    """Hooks a model for one fit and retraces its train step.

    Args:
        model: the compiled model.
        layers: the layers to watch (None: all).
        freqs: recording frequencies.
        probe_inputs: ``probe_data`` inputs, or None.
        previous: the recorder of an earlier fit, reused when the plan is the same.
        groups: None for a built model trained by ``model.optimizer`` alone (hooked before its
            first step); otherwise the optimizers its (first, watched) train step applied,
            an empty list when it applied none.
        steps: the steps this fit plans (epochs x steps per epoch); None: unknown.

    Returns:
        The :class:`Attachment`.

    Example:
        >>> att = attach(model, None, validate_frequencies(10, None, 0), None)  # doctest: +SKIP
        >>> att.plan.grad_layers  # doctest: +SKIP
        ('dense', 'dense_1')
    """
    if groups is None:
        return _attach_compiled(model, layers, freqs, probe_inputs, previous, steps)
    plain = _plain_function(model)
    plan = plan_watch(model, layers, groups=[(g.name, g.variables) for g in groups])
    recorder = _recorder(plan, freqs, model, previous)
    hooks = Hooks(model, recorder, step_fn=lambda: tf.constant(-1, tf.int64))
    if not groups:
        names = [name for name, _ in find_optimizers(model)]
        return Attachment(plan, recorder, hooks, clock=None, notes=[bypass_note(model, names)])
    primary = groups[0]
    notes = [note for note in [orphan_note(model, groups)] if note]
    with model.distribute_strategy.scope():
        # Train steps so far, in the primary optimizer's steps: a plain model's records keep
        # their optimizer-step numbers, and a continued fit continues them.
        start = int(primary.optimizer.iterations.numpy()) // max(primary.calls, 1)
        counter = tf.Variable(
            start,
            dtype=tf.int64,
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
    hooks.step_fn = counter.read_value
    for index, group in enumerate(groups):
        hooks.install_optimizer(group.optimizer, group=index)
    probe_fn = None
    if probe_inputs is not None and not model.built:
        notes.append(probe_note(model))
        probe_inputs = None
    hooks.install_model(model, activations_in_step=probe_inputs is None, counter=counter)
    if freqs.activation:
        hooks.install_layers()
    if probe_inputs is not None:
        probe_fn = make_probe(model, hooks)
    dispatch = _install_dispatch(
        model,
        hooks,
        plain,
        counter,
        freqs,
        exact=False,
        probe=probe_fn is not None,
        steps=steps,
        counted=True,  # only the instrumented step advances the counter
    )
    described = model.optimizer if base_optimizer(model.optimizer) is primary.optimizer else None
    meta = optimizer_description(described or primary.optimizer)
    if len(groups) > 1:
        meta["optimizers"] = {
            group.name: {
                **optimizer_description(group.optimizer),
                "calls_per_step": group.calls,
                "layers": [
                    n for n, g in zip(plan.grad_layers, plan.grad_groups, strict=True) if g == i
                ],
            }
            for i, group in enumerate(groups)
        }
    return Attachment(plan, recorder, hooks, counter, probe_fn, meta, notes, dispatch)


def _attach_compiled(
    model: keras.Model,
    layers: Sequence[str] | None,
    freqs: Frequencies,
    probe_inputs: Any,
    previous: Recorder | None,
    steps: int | None,
) -> Attachment:
    optimizer = base_optimizer(model.optimizer)
    if not optimizer.built:
        # Built here, outside the train step, so that optimizer slots are created eagerly.
        optimizer.build(model.trainable_variables)
    plain = _plain_function(model)
    plan = plan_watch(model, layers)
    # A LossScaleOptimizer does not count a step whose update it skipped (non-finite).
    exact = optimizer is not model.optimizer
    if probe_inputs is None and (reused := _reuse(plain, model, plan, freqs, exact)):
        return reused
    recorder = _recorder(plan, freqs, model, previous)
    iterations = optimizer.iterations
    hooks = Hooks(model, recorder, step_fn=lambda: iterations.value)
    hooks.install_optimizer(optimizer)
    hooks.install_model(model, activations_in_step=probe_inputs is None)
    if freqs.activation:
        hooks.install_layers()
    probe_fn = make_probe(model, hooks) if probe_inputs is not None else None
    dispatch = _install_dispatch(
        model, hooks, plain, iterations, freqs, exact, probe=probe_fn is not None, steps=steps
    )
    meta = optimizer_description(model.optimizer)
    att = Attachment(plan, recorder, hooks, iterations, probe_fn, meta, dispatch=dispatch)
    if probe_fn is None and dispatch.inner is None:
        # Kept on Keras's function (dropped with it when the model is recompiled): a later fit
        # of this model, by any GradScope with the same options, reuses the traced step.
        with contextlib.suppress(AttributeError, TypeError):
            plain._gradscope_attachment = (_reuse_key(model, freqs), att)
    return att


def _reuse_key(model: keras.Model, freqs: Frequencies) -> tuple[Any, ...]:
    spe = max(1, int(getattr(model, "steps_per_execution", 1) or 1))
    return (id(model.optimizer), freqs, spe, bool(model.jit_compile), model.distribute_strategy)


def _reuse(
    plain: Any, model: keras.Model, plan: WatchPlan, freqs: Frequencies, exact: bool
) -> Attachment | None:
    """An earlier fit's attachment whose instrumented step this fit can run as it is."""
    key, att = getattr(plain, "_gradscope_attachment", (None, None))
    if att is None or att.hooks.active or key != _reuse_key(model, freqs):
        return None
    if not _same_watch(att.plan, plan):
        return None
    att.recorder.reset()
    att.dispatch.reset(exact)
    att.hooks.reinstall()  # the train function's dispatch included
    return att


def first_step_notes(att: Attachment, model: keras.Model, optimizers: Sequence[str]) -> list[str]:
    """What the first instrumented train step showed cannot be recorded.

    Read from what the hooks saw while Keras traced the step: a step that applied none of the
    hooked optimizers, computed its own loss, or never called some activation layers.

    Args:
        att: the attachment, after its first train step ran.
        model: the model.
        optimizers: names of the model's optimizers (for the message).

    Returns:
        One line per thing not recorded (empty when the step was traced elsewhere).

    Example:
        >>> first_step_notes(att, model, ["optimizer"])  # doctest: +SKIP
        []
    """
    hooks = att.hooks
    if not hooks.step_traced:
        return []
    if not hooks.applied:
        return [bypass_note(model, optimizers)]
    notes = []
    if hooks.loss_traced is False:
        notes.append(loss_note())
    if hooks.layers_hooked and hooks.activations_in_step:
        missing = [
            name for i, (name, _, _) in enumerate(att.plan.act_layers) if i not in hooks.called
        ]
        if missing:
            notes.append(activation_note(missing))
    return notes


def abandon_fit(
    model: keras.Model, installed: list[Patches], session: list[RecordingSession | None]
) -> None:
    """Cleans up after a fit that never reached ``on_train_end`` (an exception, Ctrl-C).

    Called when the callback is garbage-collected or the interpreter exits with the fit still
    open: the model gets its own methods back and the run is marked ``"interrupted"``.

    Args:
        model: the model.
        installed: the fit's patches (the first-step watcher, the hooks).
        session: holds the fit's session once it is opened (after its first step), else None.

    Example:
        >>> weakref.finalize(callback, abandon_fit, model, [hooks], [None])  # doctest: +SKIP
    """
    with contextlib.suppress(Exception):  # at interpreter exit, cleanup must never raise
        for patches in reversed(installed):  # newest first
            patches.remove()  # the hooks' removal gives the model back Keras's own step
        if session[0] is not None:
            session[0].close("interrupted")
