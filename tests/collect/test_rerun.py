"""Re-running a script: each fit process gets its own run directory under the log_dir.

Real Keras fits of a tiny model; the "script" runs in fresh Python processes, as a user re-runs
it. The two processes of the first fixture run at the same time into one log_dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import toy_data
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from typer.testing import CliRunner
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from gradscope import GradScope, list_runs, load_run
from gradscope.cli import app
from gradscope.data.rundirs import is_run_name
from gradscope.render.tb_plugin.plugin import GradscopePlugin
from gradscope.render.tb_plugin.runs import discover_runs

# argv: log_dir, model name, steps, seed. Prints the callback's run_dir.
SCRIPT = """
import sys
import keras, numpy as np
from gradscope import GradScope
log_dir, name, steps, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(seed)
x = np.random.default_rng(seed).standard_normal((8 * steps, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
model = keras.Sequential(
    [keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)],
    name=name,
)
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
scope = GradScope(log_dir, freq=1, verbose=0)
model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[scope])
print("RUN_DIR", scope.run_dir)
"""

# argv: log_dir, backup_dir, "fail"|"resume". 3 epochs of 4 steps; "fail" dies in epoch 1.
# GradScope is listed before BackupAndRestore: its on_train_begin runs before the restore.
RESUME_SCRIPT = """
import sys
import keras, numpy as np
from gradscope import GradScope
log_dir, backup, mode = sys.argv[1], sys.argv[2], sys.argv[3]
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).standard_normal((32, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
model.compile("sgd", "sparse_categorical_crossentropy")
class Preempted(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if mode == "fail" and self.epoch == 1 and batch == 2:
            raise RuntimeError("preempted")
scope = GradScope(log_dir, freq=1, verbose=0)
model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
          callbacks=[scope, keras.callbacks.BackupAndRestore(backup), Preempted()])
print("RUN_DIR", scope.run_dir)
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _run_dir(stdout: str) -> Path:
    return Path(next(x for x in stdout.splitlines() if x.startswith("RUN_DIR ")).split(" ", 1)[1])


def _steps(run_dir: Path) -> list[int]:
    # Straight from the file: every line, none skipped.
    return [json.loads(line)["step"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The same script, started twice at once into one log_dir: (log_dir, run A, run B)."""
    log_dir = tmp_path_factory.mktemp("rerun") / "runs" / "x"
    procs = [_python(SCRIPT, str(log_dir), "model_a", "6", "1")]
    procs.append(_python(SCRIPT, str(log_dir), "model_b", "10", "2"))
    results = [_finish(p) for p in procs]
    for code, _, err in results:
        assert code == 0, err[-2000:]
    run_a, run_b = (_run_dir(out) for _, out, _ in results)
    return log_dir, run_a, run_b


def test_two_processes_get_two_run_dirs_each_with_its_own_records(two_runs) -> None:
    log_dir, run_a, run_b = two_runs
    assert run_a != run_b
    assert run_a.parent == run_b.parent == log_dir
    assert is_run_name(run_a.name) and is_run_name(run_b.name)
    assert sorted(list_runs(log_dir)) == sorted([run_a, run_b])
    for run_dir, model, steps in ((run_a, "model_a", 6), (run_b, "model_b", 10)):
        run = load_run(run_dir)
        assert run.meta.model_name == model and run.meta.status == "completed"
        assert run.skipped_lines == 0
        assert _steps(run_dir) == list(range(steps))  # its own records only, each once
        assert (run_dir / "findings.json").is_file()
        assert list(run_dir.glob("events.out.tfevents.*"))


def test_parent_reads_as_its_newest_run_everywhere(two_runs, tmp_path: Path) -> None:
    log_dir, run_a, run_b = two_runs
    newest, older = list_runs(log_dir)[-1], list_runs(log_dir)[0]
    created = [json.loads((p / "meta.json").read_text())["created"] for p in (older, newest)]
    assert created[0] <= created[1]
    assert load_run(log_dir).path == newest
    # TensorBoard's plugin lists both runs, named as TensorBoard names them.
    root = log_dir.parent
    names = {f"x/{run_a.name}", f"x/{run_b.name}"}
    assert set(discover_runs(root)) == names
    plugin = GradscopePlugin(base_plugin.TBContext(logdir=str(root)))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]), wrappers.Response)
    listing = client.get("/data/plugin/gradscope/runs").get_data(as_text=True)
    assert all(name in listing for name in names)
    for name, model in ((f"x/{run_a.name}", "model_a"), (f"x/{run_b.name}", "model_b")):
        response = client.get("/data/plugin/gradscope/data", query_string={"run": name})
        assert response.status_code == 200 and json.loads(response.get_data())["model"] == model
    # `gradscope report` on the parent: the newest run, and a note naming the other one.
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(log_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"reporting the newest, '{newest.name}'" in result.stderr
    assert f"'{older.name}'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    html = out.read_text(encoding="utf-8")
    newest_model = load_run(newest).meta.model_name
    older_model = load_run(older).meta.model_name
    assert newest_model in html and older_model not in html
    # Both named explicitly: compared, nothing to note.
    both = CliRunner().invoke(app, ["report", str(run_a), str(run_b), "-o", str(out)])
    assert both.exit_code == 0 and both.stderr == ""
    html = out.read_text(encoding="utf-8")
    assert "model_a" in html and "model_b" in html


def test_same_callback_two_fits_one_run_with_rising_steps(tmp_path: Path) -> None:
    x, y = toy_data(64)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path, freq=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[scope])
    first = scope.run_dir
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[scope])
    assert scope.run_dir == first and list_runs(tmp_path) == [first]
    steps = _steps(first)
    assert steps == list(range(12))  # strictly increasing, none twice
    assert load_run(first).meta.status == "completed"
    assert len(list(first.glob("events.out.tfevents.*"))) == 2  # one per fit, same run
    # A recompiled model restarts its optimizer's steps: a new run, never repeated steps.
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[scope])
    assert scope.run_dir != first and list_runs(tmp_path) == [first, scope.run_dir]
    assert _steps(scope.run_dir) == [0, 1, 2, 3] and _steps(first) == steps


def test_backup_and_restore_resumed_in_a_new_process(tmp_path: Path) -> None:
    log_dir, backup = tmp_path / "runs", tmp_path / "backup"
    code, _, err = _finish(_python(RESUME_SCRIPT, str(log_dir), str(backup), "fail"))
    assert code == 1 and "preempted" in err
    (interrupted,) = list_runs(log_dir)
    code, out, err = _finish(_python(RESUME_SCRIPT, str(log_dir), str(backup), "resume"))
    assert code == 0, err[-2000:]
    resumed = _run_dir(out)
    assert list_runs(log_dir) == [interrupted, resumed]
    # The first process recorded epoch 0 and three steps of epoch 1 before dying.
    assert _steps(interrupted) == list(range(7))
    assert load_run(interrupted).meta.status == "interrupted"
    # The second restarted from the epoch-0 backup (step 4) and ran epochs 1 and 2.
    assert _steps(resumed) == list(range(4, 12))
    run = load_run(resumed)
    assert run.meta.status == "completed" and [e.epoch for e in run.epochs] == [1, 2]
    assert [e.step for e in run.epochs] == [8, 12]  # the host step count follows the restore


def test_backup_and_restore_in_the_same_process_starts_a_new_run(tmp_path: Path) -> None:
    # Same callback object, fit again after the exception: the restore takes the optimizer's
    # step back from 7 to 4, so continuing would record steps 4-6 twice in one run.
    class Preempted(keras.callbacks.Callback):
        armed = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.armed and self.epoch == 1 and batch == 2:
                raise RuntimeError("preempted")

    x, y = toy_data(32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    preempted = Preempted()
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    scope = GradScope(tmp_path / "runs", freq=1, verbose=0)
    with pytest.raises(RuntimeError, match="preempted"):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                  callbacks=[scope, backup, preempted])  # fmt: skip
    first = scope.run_dir
    preempted.armed = False
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
              callbacks=[scope, backup, preempted])  # fmt: skip
    assert scope.run_dir != first
    assert _steps(first) == list(range(7))
    assert load_run(first).meta.status == "interrupted"
    assert _steps(scope.run_dir) == list(range(4, 12))
    assert load_run(scope.run_dir).meta.status == "completed"
    assert np.all(np.diff(_steps(scope.run_dir)) == 1)
