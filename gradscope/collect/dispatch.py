"""Plain steps stay plain: ``model.train_function`` picks Keras's own step or the recorded one.

Keras's ``fit`` looks up ``model.train_function`` and calls it with the data iterator once per
execution (``steps_per_execution`` steps). :class:`StepDispatch` takes that attribute for one
fit: an execution that contains no recorded step runs the function Keras built (the user's step,
untouched: no ``tf.cond``, no reads, no writes), and one that does runs an instrumented copy built
from the hooked ``train_step``, traced lazily on the first recorded step and once per fit.

Which executions hold a recorded step is counted on the host: the clock (the optimizer's
``iterations``, or GradScope's own train-step counter) is read at the first execution and the
callback advances the count by the steps Keras reports. Where the clock may not move once per
step (a ``LossScaleOptimizer`` skips the update of a non-finite step), it is read before every
execution instead; a count found off at a recorded step switches to that exact mode too.

A short first fit (at most :data:`SHARED_UP_TO_STEPS` steps, Keras's function not yet traced) runs
every execution through the instrumented function instead, its writes checking the beat in-graph:
tracing Keras's function too would cost more than those steps' checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from gradscope.collect.engine import Recorder
from gradscope.collect.readout import CARRY_KEY
from gradscope.collect.rewrites import lean_graph_rewrites

#: A first fit of at most this many steps runs one function, the instrumented one, for every
#: step (:attr:`StepDispatch.shared`). Measured by benchmarks/first_fit.py on the benchmark's
#: MLP and CNN and five zoo models (reports/benchmarks.md, session 9): tracing Keras's function
#: as well costs 0.18-0.98 s, an unrecorded step through the instrumented function up to 1 ms
#: more than Keras's, so one function is the cheaper up to 260 steps or more on every model
#: measured; the bound is half that.
SHARED_UP_TO_STEPS = 128


def plain_traced(function: Any) -> bool:
    """Whether Keras's train function has been traced (an earlier fit ran it).

    Read from the ``tf.function`` objects its closure holds (Keras's ``_make_function``); a
    function of another shape counts as traced, so nothing is assumed saved.

    Args:
        function: the function ``model.make_train_function`` returned.

    Returns:
        True unless every ``tf.function`` it closes over has never been traced.

    Example:
        >>> plain_traced(model.make_train_function())  # doctest: +SKIP
        False
    """
    counts = [
        cell.cell_contents.experimental_get_tracing_count()
        for cell in getattr(function, "__closure__", None) or ()
        if hasattr(cell.cell_contents, "experimental_get_tracing_count")
    ]
    return not counts or any(counts)


def build_step_function(model: keras.Model, jit_compile: bool | None = None) -> Any:
    """Builds Keras's train function around the model's current ``train_step``.

    Keras's own ``_make_function`` (the TensorFlow trainer's), so the function runs
    ``steps_per_execution`` steps per call, under the model's distribution strategy, exactly as
    the one ``fit`` made; without touching ``model.train_function``.

    Args:
        model: a compiled model on the TensorFlow backend (its hooks installed).
        jit_compile: compile with XLA; None: as the model says.

    Returns:
        ``function(iterator)``, traced on its first call.

    Example:
        >>> fn = build_step_function(model, jit_compile=False)  # doctest: +SKIP
    """
    saved = model.jit_compile
    if jit_compile is None or bool(jit_compile) == bool(saved):
        return model._make_function(model.train_step)
    model._jit_compile = jit_compile
    try:
        return model._make_function(model.train_step)
    finally:
        model._jit_compile = saved


def build_compile_state(model: keras.Model, iterator: Any) -> None:
    """Builds the compiled metrics' and loss's variables before a train function is traced.

    Keras builds them inside the first trace of its train step, except under a distribution
    strategy (``_maybe_symbolic_build``). A ``tf.function`` whose first trace creates variables
    traces a second time, so the first function a fit calls would be traced twice: a plain
    Keras fit pays that for its optimizer anyway, and GradScope, which builds the optimizer
    first, paid it for ``metrics=["accuracy"]`` alone. Built here from the iterator's element
    spec (no batch is consumed), as Keras does under a strategy. A model Keras cannot build
    symbolically (a custom ``train_step`` whose ``call`` takes other inputs) is left as it was.

    Args:
        model: a compiled model.
        iterator: the iterator ``fit`` passes to the train function.

    Example:
        >>> build_compile_state(model, iterator)  # doctest: +SKIP
    """
    metrics = getattr(model, "_compile_metrics", None)
    loss = getattr(model, "_compile_loss", None)
    if (metrics is None or metrics.built) and (loss is None or loss.built):
        return
    spec = getattr(iterator, "element_spec", None)
    if spec is None:
        return
    try:
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=spec)
    except Exception:  # whatever fails here, Keras builds them in the trace as before
        return


class StepDispatch:
    """``model.train_function`` for one fit: the plain step, or the recorded one when due.

    Args:
        plain: the function Keras built for the fit (never instrumented).
        make_instrumented: builds the instrumented function (called at most once).
        clock: the variable counting steps, read on the host.
        freq: record every ``freq`` steps.
        steps_per_execution: steps one call runs (at most).
        exact: read the clock before every execution (its count may skip steps).
        recorder: the recorder the instrumented function writes to (see :meth:`guard`).
        lean: call the instrumented function with
            :func:`~gradscope.collect.rewrites.lean_graph_rewrites` (a large model: its first
            call's optimisation costs seconds the full set of rewrites does not pay back).
        prepare: called with the iterator before the first execution
            (:func:`build_compile_state`).
        shared: run every execution through the instrumented function, never Keras's (a short
            first fit; the recorder must check the beat in-graph). A refit runs Keras's again.
        counted: the clock is GradScope's own step counter (a custom ``train_step``), which
            only the instrumented function advances: the host counts the steps Keras's function
            runs and sets the counter before the next instrumented execution.

    Attributes:
        next_step: the clock before the next execution, counted on the host; None: read it.
        recorded: whether the last execution held a recorded step (it ran the instrumented
            function; with ``shared`` every execution does).
        calls: executions run, ``{"plain": n, "recorded": n, "shared": n}`` (``shared``: those
            without a recorded step that ran the instrumented function).

    Example:
        >>> dispatch = StepDispatch(model.train_function, build, clock, freq=10)  # doctest: +SKIP
        >>> model.train_function = dispatch  # doctest: +SKIP
    """

    def __init__(
        self,
        plain: Callable[[Any], Any],
        make_instrumented: Callable[[], Callable[[Any], Any]],
        clock: tf.Variable,
        freq: int,
        steps_per_execution: int = 1,
        exact: bool = False,
        recorder: Recorder | None = None,
        lean: bool = False,
        prepare: Callable[[Any], None] | None = None,
        shared: bool = False,
        counted: bool = False,
    ) -> None:
        self.plain = plain
        self.shared = shared
        self.counted = counted
        self._behind = False  # Keras's function ran steps the counter has not counted
        self.lean = lean
        self._prepare = prepare
        self._make = make_instrumented
        self._instrumented: Callable[[Any], Any] | None = None
        self.clock = clock
        self.freq = freq
        self.steps_per_execution = max(1, int(steps_per_execution))
        self.exact = exact
        self.recorder = recorder
        self.next_step: int | None = None
        # Steps left in the epoch when known: the last execution of an epoch may run fewer.
        self.remaining: int | None = None
        self.recorded = False
        self.calls = {"plain": 0, "recorded": 0, "shared": 0}
        self._clock_value: tf.Tensor | None = None
        # Another GradScope's dispatch on the same model in the same fit: its hooks are traced
        # into this instrumented function too, so it runs when either one records.
        self.inner: StepDispatch | None = None

    @property
    def instrumented(self) -> Callable[[Any], Any]:
        """The instrumented function, built on first use."""
        if self._instrumented is None:
            self._instrumented = self._make()
        return self._instrumented

    def due(self, step: int) -> bool:
        """Whether an execution starting at clock ``step`` holds a recorded step.

        Args:
            step: the clock before the execution.

        Returns:
            True when a multiple of ``freq`` lies in ``[step, step + steps_per_execution)``
            (or up to the epoch's end, if sooner).

        Example:
            >>> StepDispatch(None, None, None, freq=10, steps_per_execution=4).due(37)
            True
        """
        span = self.steps_per_execution
        if self.remaining:
            span = min(span, self.remaining)
        return -(-step // self.freq) * self.freq < step + span

    def new_epoch(self, steps: int | None) -> None:
        """Starts an epoch of ``steps`` steps (None: unknown).

        The clock is read again at its first execution (the last execution of an epoch may run
        fewer steps than ``steps_per_execution``), unless the host keeps the count (``counted``).

        Args:
            steps: the epoch's steps, from Keras's callback ``params``.
        """
        self.remaining = steps
        if not self.counted:
            self.next_step = None

    def reset(self, exact: bool) -> None:
        """Forgets the previous fit's count, keeping the built functions (a refit reuses them).

        Args:
            exact: read the clock before every execution.
        """
        self.exact = exact
        self.next_step = None
        self.remaining = None
        self.recorded = False
        self.calls = {"plain": 0, "recorded": 0, "shared": 0}
        self.inner = None
        # Keras's function is traced once by then, at most: paying it once beats every later
        # short fit's checks.
        self.shared = False

    def guard(self) -> None:
        """Makes this dispatch's recorder (and chained ones) check the beat in-graph."""
        if self.recorder is not None:
            self.recorder.guarded = True
        if self.inner is not None:
            self.inner.guard()

    def decide(self) -> bool:
        """Decides whether the next execution records, for this dispatch and those it chains.

        Returns:
            True when this one or a chained one records in the next execution.
        """
        if self.freq > 1 and (self.next_step is None or self.exact):
            self.next_step = int(self.clock.numpy())
        self.recorded = self.freq == 1 or self.due(self.next_step)  # type: ignore[arg-type]
        inner = self.inner.decide() if self.inner is not None else False
        return self.recorded or inner

    def __call__(self, iterator: Any) -> Any:
        """Runs one execution: the instrumented function if it holds a recorded step."""
        if self._prepare is not None:
            prepare, self._prepare = self._prepare, None
            prepare(iterator)
        record = self.decide()
        self.calls["recorded" if record else "shared" if self.shared else "plain"] += 1
        if not record:
            if self.shared:
                return self.instrumented(iterator)
            self._behind = self.counted
            return self.plain(iterator)
        if self._behind:
            # The recorded step numbers itself from the counter: give it the steps Keras's
            # function ran since the last instrumented execution.
            self._behind = False
            self.clock.assign(self.next_step)
        self._clock_value = None
        if self.recorder is not None:
            # A failed execution carries nothing: the host then reads the buffers.
            self.recorder.carried = None
            self.recorder.unread = True
        with lean_graph_rewrites() if self.lean else contextlib.nullcontext():
            logs = self.instrumented(iterator)
        if isinstance(logs, dict) and CARRY_KEY in logs:
            logs = dict(logs)
            buffers, clock = logs.pop(CARRY_KEY)
            if self.recorder is not None:
                self.recorder.carried = buffers
            self._clock_value = clock
        return logs

    def advance(self, steps: int) -> None:
        """Counts the steps the last execution ran (Keras reports them to callbacks).

        Args:
            steps: steps run.
        """
        if self.next_step is not None:
            self.next_step += steps

    def check(self) -> None:
        """After a recorded execution: reads the clock; a count found off reads it from now on."""
        clock, self._clock_value = self._clock_value, None
        if self.freq == 1 or self.next_step is None or self.exact:
            return
        # The clock the recorded step carried out after its update, else a read.
        actual = int(clock if clock is not None else self.clock.numpy())
        if actual != self.next_step:
            self.exact = True
            self.next_step = actual
