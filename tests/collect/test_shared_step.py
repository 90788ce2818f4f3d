"""A short first fit runs one function, the instrumented one, and records what a tape computes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from dispatch_fits import BATCH, LR, assert_match_tape, counted_fit, mlp, tape_norms
from helpers import toy_data

from gradscope import GradScope, load_run
from gradscope.collect import dispatch
from gradscope.collect.dispatch import StepDispatch, plain_traced


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_a_short_first_fit_runs_the_instrumented_step_throughout(
    steps_per_execution, monkeypatch, tmp_path
) -> None:
    executions: list[tuple[bool, dict[str, int]]] = []
    original = StepDispatch.__call__

    def call(self: StepDispatch, iterator):
        logs = original(self, iterator)
        executions.append((self.shared, dict(self.calls)))
        return logs

    monkeypatch.setattr(StepDispatch, "__call__", call)
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(
        keras.optimizers.SGD(LR),
        "sparse_categorical_crossentropy",
        steps_per_execution=steps_per_execution,
    )
    reference = tape_norms(model, x, y, steps=7)
    callback = GradScope(tmp_path / "run", freq=3, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    shared, calls = executions[-1]
    assert shared
    # Keras's function never ran, so it was never traced.
    assert calls["plain"] == 0 and calls["recorded"] + calls["shared"] == len(executions)
    assert not plain_traced(model.train_function)
    # The beat, checked in-graph, wrote steps 0, 3 and 6 only: exactly what the tape computes.
    records = load_run(callback.run_dir).records
    assert [r.step for r in records] == [0, 3, 6]
    assert_match_tape(records, reference)


def test_a_short_first_fit_traces_the_train_step_once(tmp_path) -> None:
    plain_traces, plain = counted_fit(tmp_path / "plain", scope=False)
    traces, recorded = counted_fit(tmp_path / "scoped", scope=True)
    assert plain_traces == 2  # Keras builds its optimizer in the first trace, then retraces
    assert traces == 1  # GradScope builds it first, and Keras's own step is never traced
    assert recorded["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)
    assert recorded["loss"] == pytest.approx(plain["loss"], rel=1e-5)


@pytest.mark.parametrize("case", ["long", "traced", "refit", "jit"])
def test_keras_function_runs_the_unrecorded_steps_otherwise(case, monkeypatch, tmp_path) -> None:
    executions: list[tuple[bool, bool]] = []  # (shared, recorded)
    original = StepDispatch.__call__

    def call(self: StepDispatch, iterator):
        logs = original(self, iterator)
        executions.append((self.shared, self.recorded))
        return logs

    monkeypatch.setattr(StepDispatch, "__call__", call)
    if case == "long":  # 7 steps is "long" when the bound is 6
        monkeypatch.setattr(dispatch, "SHARED_UP_TO_STEPS", 6)
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(
        keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", jit_compile=case == "jit"
    )
    steps = 14 if case in ("traced", "refit") else 7
    reference = tape_norms(model, np.concatenate([x, x]), np.concatenate([y, y]), steps=steps)
    callback = GradScope(tmp_path / "run", freq=3, verbose=0, tensorboard=False)
    if case == "traced":  # a plain fit traced Keras's function already
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    if case == "refit":  # the first fit shared one function; the second pays Keras's trace
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
        assert all(shared for shared, _ in executions)
        executions.clear()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert not any(shared for shared, _ in executions)
    first = 7 if case in ("traced", "refit") else 0
    assert [recorded for _, recorded in executions] == [(first + i) % 3 == 0 for i in range(7)]
    records = [r for r in load_run(callback.run_dir).records if r.step >= first]
    assert [r.step for r in records] == [s for s in range(first, first + 7) if s % 3 == 0]
    assert_match_tape(records, reference)


def test_a_train_function_of_another_shape_counts_as_traced() -> None:
    # Nothing to read a tracing count from (a user's own train_function, run_eagerly): the rule
    # assumes no trace is saved, so such a fit keeps Keras's function for its plain steps.
    assert plain_traced(lambda iterator: None)
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.make_train_function()
    assert not plain_traced(model.train_function)  # Keras's own, not yet called
    x, y = toy_data(2 * BATCH)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert plain_traced(model.train_function)


@pytest.mark.parametrize("shared", [True, False])
def test_a_loss_scale_optimizers_skipped_step_keeps_the_optimizer_steps(
    shared, monkeypatch, tmp_path
) -> None:
    # The host reads the clock before every execution under a LossScaleOptimizer, and a shared
    # fit's in-graph beat reads the same clock: a skipped (non-finite) update moves neither.
    if not shared:
        monkeypatch.setattr(dispatch, "SHARED_UP_TO_STEPS", 0)
    x, y = toy_data(6 * BATCH)
    x[BATCH : 2 * BATCH] = np.nan  # step 1's gradients are NaN: the update is skipped
    model = mlp()
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR))
    model.compile(optimizer, "sparse_categorical_crossentropy")
    callback = GradScope(tmp_path / "run", freq=2, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert plain_traced(model.train_function) is not shared
    # Six batches, five updates: the optimizer's clock did not count the skipped one.
    assert int(model.optimizer.iterations.numpy()) == 5
    # Every even optimizer step is recorded; counting batches instead would have run the
    # instrumented step at clock 1 (batch 2) and missed clock 4 (batch 5).
    assert [r.step for r in load_run(callback.run_dir).records] == [0, 2, 4]
