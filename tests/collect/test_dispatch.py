"""Plain steps run Keras's own function; recorded steps record exactly what a tape computes.

These are the fits too long to share one function (dispatch.SHARED_UP_TO_STEPS set to 0); a
short first fit's one function is tested in test_shared_step.py.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from dispatch_fits import BATCH, LR, assert_match_tape, counted_fit, mlp, tape_norms
from helpers import LazyNet, toy_data

from gradscope import GradScope, load_run
from gradscope.collect.dispatch import StepDispatch


@pytest.fixture(autouse=True)
def as_in_long_fits(monkeypatch) -> None:
    """Every fit here runs Keras's function on its unrecorded steps, however short."""
    from gradscope.collect import dispatch

    monkeypatch.setattr(dispatch, "SHARED_UP_TO_STEPS", 0)


@pytest.fixture
def decisions(monkeypatch) -> list[bool]:
    """Whether each execution of every StepDispatch ran the instrumented function."""
    seen: list[bool] = []
    original = StepDispatch.decide

    def decide(self: StepDispatch) -> bool:
        record = original(self)
        seen.append(record)
        return record

    monkeypatch.setattr(StepDispatch, "decide", decide)
    return seen


@pytest.mark.parametrize("jit", [False, True])
def test_recorded_steps_match_the_tape_and_others_run_plain(jit, decisions, tmp_path) -> None:
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", jit_compile=jit)
    reference = tape_norms(model, x, y, steps=7)
    callback = GradScope(tmp_path / "run", freq=3, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    # Steps 0, 3 and 6 run the instrumented function; the four others Keras's own.
    assert decisions == [True, False, False, True, False, False, True]
    run = load_run(callback.run_dir)
    assert [r.step for r in run.records] == [0, 3, 6]
    assert_match_tape(run.records, reference)
    for record in run.records:  # activations on the same steps (ReLU outputs: a mean >= 0)
        assert record.layers[model.layers[0].name]["act_mean"] >= 0.0


def test_a_new_callback_on_the_same_model_reuses_the_traced_step(monkeypatch, tmp_path) -> None:
    import gradscope.collect.attach as attach_module

    built: list[object] = []
    original = attach_module.build_step_function

    def build(model, jit_compile=None):
        built.append(model)
        return original(model, jit_compile=jit_compile)

    monkeypatch.setattr(attach_module, "build_step_function", build)
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
    reference = tape_norms(model, np.concatenate([x, x]), np.concatenate([y, y]), steps=14)
    runs = []
    for fit in range(2):
        callback = GradScope(tmp_path / f"run{fit}", freq=3, verbose=0, tensorboard=False)
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
        runs.append(load_run(callback.run_dir))
    assert len(built) == 1  # the instrumented step was built (and traced) by the first fit only
    assert [r.step for r in runs[1].records] == [9, 12]
    assert_match_tape(runs[0].records + runs[1].records, reference)
    # Other options, or a recompiled model, build their own.
    model.fit(x, y, batch_size=BATCH, verbose=0, callbacks=[GradScope(tmp_path / "f2", freq=2)])
    assert len(built) == 2


def test_refit_keeps_keras_function_and_steps_per_execution(decisions, tmp_path) -> None:
    x, y = toy_data(8 * BATCH)
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy", steps_per_execution=3)
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    plain = model.train_function
    callback = GradScope(tmp_path / "run", freq=4, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[callback])
    # After the fit the model has Keras's own function back, already traced: no retrace.
    assert model.train_function is plain
    assert not hasattr(model.train_function, "_gradscope_patch")
    # Clock 8..23 in executions of 3, 3 and 2 steps an epoch: those holding 8, 12, 16 and 20
    # record; the last of each epoch (14-15, 22-23) holds none.
    assert decisions == [True, True, False, True, True, False]
    steps = [r.step for r in load_run(callback.run_dir).records]
    assert steps == [8, 12, 16, 20]


def test_recorded_steps_carry_the_buffers_out_with_their_logs(monkeypatch, tmp_path) -> None:
    from gradscope.collect import readout

    seen: list[tuple[set[str], list[np.ndarray] | None, list[np.ndarray]]] = []
    original = StepDispatch.__call__

    def call(self: StepDispatch, iterator):
        logs = original(self, iterator)
        rec = self.recorder
        carried = None if rec.carried is None else [t.numpy() for t in rec.carried]
        # What the host would read with a second call, read here from the variables.
        direct = [v.numpy() for v in (getattr(rec, n) for n in readout.BUFFERS)]
        seen.append((set(logs), carried, direct))
        return logs

    checks: list[tuple[bool, bool]] = []  # (a carried clock was there, count found off)
    original_check = StepDispatch.check

    def check(self: StepDispatch) -> None:
        carried_clock = self._clock_value is not None
        original_check(self)
        checks.append((carried_clock, self.exact))

    monkeypatch.setattr(StepDispatch, "__call__", call)
    monkeypatch.setattr(StepDispatch, "check", check)
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
    callback = GradScope(tmp_path / "run", freq=3, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert [carried is not None for _, carried, _ in seen] == [1, 0, 0, 1, 0, 0, 1]
    for keys, carried, direct in seen:
        assert readout.CARRY_KEY not in keys and "loss" in keys  # Keras sees its own logs
        if carried is not None:
            assert len(carried) == len(direct)
            for a, b in zip(carried, direct, strict=True):
                np.testing.assert_array_equal(a, b)
    assert [r.step for r in load_run(callback.run_dir).records] == [0, 3, 6]
    # The clock each recorded step carried out (after its update) agreed with the host's count.
    assert checks == [(True, False)] * 3
    # Every read found its values carried, the fit's last one nothing unread: the compiled read
    # of the buffers was never built.
    assert callback._recorder._snapshot_fn is None


@pytest.mark.parametrize("case", ["steps_per_execution", "run_eagerly", "probe_data"])
def test_the_host_reads_the_buffers_where_the_logs_cannot_carry_them(case, tmp_path) -> None:
    x, y = toy_data(6 * BATCH)
    model = mlp()
    model.compile(
        keras.optimizers.SGD(LR),
        "sparse_categorical_crossentropy",
        steps_per_execution=3 if case == "steps_per_execution" else 1,
        run_eagerly=case == "run_eagerly",
    )
    probe = x[:BATCH] if case == "probe_data" else None
    callback = GradScope(tmp_path / "run", freq=2, verbose=0, tensorboard=False, probe_data=probe)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert callback._recorder.carry is False
    assert [r.step for r in load_run(callback.run_dir).records] == [0, 2, 4]


def test_an_execution_of_several_recorded_steps_carries_all_their_rows(tmp_path) -> None:
    # freq=1 with 3 steps per execution: every step records, the writes need no guard, and the
    # last step of each execution (the last one short) returns the rows of the whole execution.
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(
        keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", steps_per_execution=3
    )
    reference = tape_norms(model, x, y, steps=7)
    callback = GradScope(tmp_path / "run", freq=1, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    assert callback._recorder.carry is True
    records = load_run(callback.run_dir).records
    assert [r.step for r in records] == list(range(7))
    assert_match_tape(records, reference)


@pytest.mark.parametrize("bound", [1, 10_000])
def test_a_large_models_recorded_step_gets_the_lean_rewrites(bound, monkeypatch, tmp_path) -> None:
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context

    import gradscope.collect.rewrites as rewrites

    # "Large" is a count of watched variables: the MLP's 6 are over a bound of 1.
    monkeypatch.setattr(rewrites, "LEAN_FROM_VARIABLES", bound)
    seen: list[bytes] = []
    original = StepDispatch.instrumented.fget

    def instrumented(self: StepDispatch):
        fn = original(self)

        def call(iterator):
            seen.append(context.context().function_call_options.config_proto_serialized)
            return fn(iterator)

        return call

    monkeypatch.setattr(StepDispatch, "instrumented", property(instrumented))
    options = context.context().function_call_options.config_proto_serialized
    x, y = toy_data(7 * BATCH)
    model = mlp()
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
    reference = tape_norms(model, x, y, steps=7)
    callback = GradScope(tmp_path / "run", freq=3, verbose=0, tensorboard=False)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[callback])
    # Each recorded execution ran with other options exactly when the model is over the bound,
    # and the thread's options were put back after each.
    assert len(seen) == 3 and all((s != options) == (bound == 1) for s in seen)
    assert context.context().function_call_options.config_proto_serialized == options
    config = config_pb2.ConfigProto()
    config.ParseFromString(seen[0])
    lean = config.graph_options.rewrite_options
    if bound == 1:  # Grappler still runs, with its remapper (the fusions that save memory)
        assert not lean.disable_meta_optimizer
        assert lean.remapping != rewriter_config_pb2.RewriterConfig.OFF
        assert lean.meta_optimizer_iterations == rewriter_config_pb2.RewriterConfig.ONE
    records = load_run(callback.run_dir).records
    assert [r.step for r in records] == [0, 3, 6]
    assert_match_tape(records, reference)


def test_a_first_fit_traces_each_train_function_once(tmp_path) -> None:
    # Keras alone: its optimizer and metrics are built inside the first trace, and a
    # tf.function whose first trace creates variables traces again.
    plain_traces, plain = counted_fit(tmp_path / "plain", scope=False)
    assert plain_traces == 2
    # GradScope builds both first: the instrumented step and Keras's, once each (the
    # accuracy metric's variables made it three before).
    traces, recorded = counted_fit(tmp_path / "scoped", scope=True)
    assert traces == 2
    # The metric built ahead of the trace counts as Keras's own does, epoch by epoch.
    assert recorded["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)
    assert recorded["loss"] == pytest.approx(plain["loss"], rel=1e-5)


@pytest.mark.parametrize("spe", [1, 3])
def test_a_lazily_built_model_records_every_beat(spe, decisions, tmp_path) -> None:
    # Its steps are numbered by GradScope's own counter, which Keras's function (the steps in
    # between) does not advance: records once stopped after the first, mislabelled as step 1.
    x, y = toy_data(8 * BATCH)
    histories = []
    for scope in (False, True):
        keras.utils.set_random_seed(5)
        model = LazyNet()
        model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
        model.steps_per_execution = spe
        callbacks = [GradScope(tmp_path / "run", freq=4, verbose=0, tensorboard=False)]
        history = model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=callbacks if scope else [],
        )
        histories.append(history.history["loss"])
    assert histories[0] == pytest.approx(histories[1], rel=1e-5)  # training as without it
    run = load_run(callbacks[0].run_dir)
    assert [r.step for r in run.records] == [4, 8, 12]  # 16 steps; step 0 is watched
    assert all(r.layers[run.layer_names[0]]["grad_norm"] > 0 for r in run.records)
