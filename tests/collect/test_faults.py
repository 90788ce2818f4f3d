"""Faults during training: other callbacks failing, NaN mid-fit, shared log_dirs, full disks.

Complements test_callback.py (KeyboardInterrupt, NaN targets, unwritable log_dir at
on_train_begin); every check here reads the run directory back from disk.
"""

from __future__ import annotations

import gc
import json
import math

import keras
import pytest
from helpers import LazyNet, toy_data

from gradscope import GradScope, load_run
from gradscope.data.store import STATS_FILE


def _mlp(out: int = 3, activation: str = "softmax") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="hidden"),
            keras.layers.Dense(out, activation=activation, name="output"),
        ]
    )


class FailAt(keras.callbacks.Callback):
    """Another user's callback that raises at a given batch."""

    def __init__(self, batch: int, error: BaseException) -> None:
        super().__init__()
        self.batch, self.error = batch, error

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            raise self.error


def _lines(run_dir) -> list[dict]:
    # Straight from the file, independent of load_run's tolerance for torn lines.
    return [json.loads(x) for x in (run_dir / STATS_FILE).read_text().splitlines()]


def test_exception_in_another_callback_leaves_a_complete_run(tmp_path) -> None:
    x, y = toy_data(64)
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path / "run", freq=1, verbose=0)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            verbose=0,
            callbacks=[scope, FailAt(6, RuntimeError("boom"))],
        )
    rows = _lines(scope.run_dir)  # every line parses: the last record is complete
    assert [r["step"] for r in rows] == list(range(7))
    assert set(rows[-1]["layers"]) == {"hidden", "output"}
    run = load_run(tmp_path / "run")
    assert run.skipped_lines == 0 and len(run.records) == 7
    # Keras never calls on_train_end after an exception: the run is still "running", and the
    # model still carries the hooks, until the callback is dropped (or the process exits).
    assert run.meta.status == "running"
    assert "train_step" in model.__dict__
    del scope
    gc.collect()
    assert load_run(tmp_path / "run").meta.status == "interrupted"
    assert "train_step" not in model.__dict__
    assert all("call" not in layer.__dict__ for layer in model.layers)
    # The model trains normally afterwards, without gradscope.
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][-1])
    assert len(_lines(run.path)) == 7  # nothing more was recorded


def test_interrupted_run_is_marked_when_the_process_exits(tmp_path) -> None:
    # A script that dies of the exception: the atexit side of the same finalizer.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import numpy as np, keras
        from gradscope import GradScope
        x = np.random.default_rng(0).standard_normal((32, 8)).astype("float32")
        y = np.zeros(32, "int32")
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, "softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy")
        class Boom(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 2:
                    raise RuntimeError("boom")
        model.fit(x, y, batch_size=4, verbose=0,
                  callbacks=[GradScope({str(tmp_path / "run")!r}, freq=1, verbose=0), Boom()])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and "RuntimeError: boom" in proc.stderr
    run = load_run(tmp_path / "run")
    assert run.meta.status == "interrupted"
    assert [r.step for r in run.records] == [0, 1, 2]


def test_learning_rate_blowup_mid_fit_gives_nonfinite_with_first_step_and_layer(tmp_path) -> None:
    class BlowUp(keras.callbacks.Callback):
        # A schedule bug: the learning rate jumps by 10^9 at step 8.
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 8:
                self.model.optimizer.learning_rate.assign(1e8)

    x, _ = toy_data(64)
    target = x.sum(axis=1, keepdims=True)
    model = _mlp(out=1, activation=None)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    scope = GradScope(tmp_path / "run", freq=1, verbose=0)
    model.fit(
        x, target, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[BlowUp(), scope]
    )
    run = load_run(tmp_path / "run")
    assert run.meta.status == "completed"
    # Independent: the first record whose loss or any layer statistic is not finite.
    bad = [
        r.step
        for r in run.records
        if not math.isfinite(r.loss)
        or any(not math.isfinite(v) for s in r.layers.values() for v in s.values())
    ]
    assert bad and 8 <= bad[0] <= 12
    assert all(math.isfinite(r.loss) for r in run.records if r.step < 8)
    found = {f.kind: f for f in scope.findings}
    nonfinite = found["nonfinite"]
    assert nonfinite.evidence["first_step"] == bad[0]
    first = run.records[[r.step for r in run.records].index(bad[0])]
    first_layer = nonfinite.evidence["first_layer"]
    assert first_layer in ("hidden", "output")
    # Its entries, or a norm: gradient norms stay finite for finite entries (float64 retake);
    # weight norms overflow past ~1.8e19 (no retake for weights).
    stats = first.layers[first_layer]
    assert stats["nonfinite"] > 0 or not all(
        math.isfinite(stats[k]) for k in ("grad_norm", "weight_norm", "update_norm")
    )


def test_on_finding_stop_ends_a_blowup_cleanly(tmp_path) -> None:
    class BlowUp(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 8:
                self.model.optimizer.learning_rate.assign(1e8)

    x, _ = toy_data(64)
    target = x.sum(axis=1, keepdims=True)
    model = _mlp(out=1, activation=None)
    model.compile(keras.optimizers.SGD(0.01), "mse")
    scope = GradScope(tmp_path / "run", freq=1, on_finding="stop", verbose=0)
    with pytest.warns(UserWarning, match=r"GS10[25]"):
        history = model.fit(
            x,
            target,
            batch_size=4,
            epochs=20,
            shuffle=False,
            verbose=0,
            callbacks=[BlowUp(), scope],
        )
    run = load_run(tmp_path / "run")
    # Stopped within the epoch where it blew up (16 steps per epoch), not after 320 steps.
    assert run.records[-1].step < 32 and len(history.history["loss"]) <= 2
    assert run.meta.status == "completed"  # a clean stop: on_train_end ran
    assert {"nonfinite", "exploding_gradients"} & {f.kind for f in scope.findings}
    assert "train_step" not in model.__dict__


def test_two_fits_into_one_log_dir_get_a_run_each(tmp_path) -> None:
    x, y = toy_data(64)
    first, second = _mlp(), _mlp()
    for m in (first, second):
        m.compile("sgd", "sparse_categorical_crossentropy")
    a = GradScope(tmp_path / "run", freq=1, verbose=0)
    b = GradScope(tmp_path / "run", freq=1, verbose=0)  # both alive at once
    first.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[a])
    second.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[b])
    assert a.run_dir != b.run_dir and a.run_dir.parent == b.run_dir.parent == tmp_path / "run"
    assert [r["step"] for r in _lines(a.run_dir)] == [0, 1, 2, 3]  # only the first model's
    assert [r["step"] for r in _lines(b.run_dir)] == [0, 1]
    # The parent reads as its newest run, which is b's (created last; same second -> "-1").
    assert load_run(tmp_path / "run").path == b.run_dir
    # Two callbacks on one directory inside the same fit: two runs, each with every step once.
    both = [GradScope(tmp_path / "both", freq=1, verbose=0) for _ in range(2)]
    second.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=both)
    assert both[0].run_dir != both[1].run_dir
    for callback in both:
        assert [r["step"] for r in _lines(callback.run_dir)] == [2, 3, 4, 5]


def test_lazily_built_models_get_a_run_each_too(tmp_path) -> None:
    # Subclassed models attach their hooks after the first step; the runs are still apart.
    x, y = toy_data(64)
    model = LazyNet(units=8)
    model.compile("sgd", "sparse_categorical_crossentropy")
    callbacks = [GradScope(tmp_path / "run", freq=1, verbose=0) for _ in range(2)]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=callbacks)
    assert callbacks[0].run_dir != callbacks[1].run_dir
    for callback in callbacks:
        steps = [r["step"] for r in _lines(callback.run_dir)]
        assert steps == [1, 2, 3]  # one writer per run: no step twice, in order


def test_disk_full_mid_fit_stops_recording_not_training(tmp_path) -> None:
    class DiskFills(keras.callbacks.Callback):
        # From step 5 on, every write to stats.jsonl fails as on a full disk (ENOSPC).
        def __init__(self, scope: GradScope) -> None:
            super().__init__()
            self.scope = scope

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 5:
                writer = self.scope.session.writer
                writer._stats.close()
                writer._stats = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115

    x, y = toy_data(64)
    model = _mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path / "run", freq=1, verbose=0)
    with pytest.warns(UserWarning, match="GradScope stopped recording.*No space left on device"):
        history = model.fit(
            x, y, batch_size=4, epochs=2, verbose=0, callbacks=[scope, DiskFills(scope)]
        )
    assert len(history.history["loss"]) == 2  # training finished both epochs
    run = load_run(scope.run_dir)
    assert [r.step for r in run.records] == list(range(5)) and run.skipped_lines == 0
    assert run.meta.status == "failed"
    assert "train_step" not in model.__dict__
