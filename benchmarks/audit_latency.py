"""Latency of ``gradscope audit`` versus bare ``load_model`` + one forward/backward pass.

Issue 16's targets: audit time (without ``--steps``, i.e. the default light probe) at most 2x the
time of ``keras.models.load_model`` plus one forward/backward pass on the same file in one
process, and at most 1.3x end to end in fresh processes (issue 4 asked 1.5x in-process).

Model files (written once into a temporary directory, compiled, in both formats):

* ``sigmoid_mlp``: the chapter's sick network, 10 x Dense(256, sigmoid) with RandomNormal(1.0)
  init, SGD(0.01), 32 inputs (the audit tests' model);
* ``cnn``: a small CNN on 28x28x1 images (2 conv + pool + 2 dense, ReLU/He, Adam).

Per file, in one process, alternating and rotated repeats after one warm-up of each:

* ``bare``: ``keras.models.load_model(path, compile=False)`` + one eager forward/backward
  (``GradientTape``) on 32 standard-normal examples -- issue 4's baseline;
* ``traced``: the same load + ``compile`` + ``train_on_batch`` on the same batch: a
  baseline that, like the audit, traces a compiled train step (context, not the target);
* ``audit``: ``gradscope.audit.audit(path, log_dir=tmp)`` with its defaults (static rules + the
  light probe: 8 eager steps of the loaded model, reduced on the host, nothing traced);
* ``audit_recorded``: ``audit(path, steps=8)``: the same 8 steps by the recorded probe (a fit of
  a copy under ``GradScope(freq=1)``, which traces an instrumented train step), the default
  before issue 16;
* ``audit_static``: ``audit(path, steps=0)``, static rules only (safe load, no probe).

Ratios are medians of each variant over the median of ``bare``, in wall time and in CPU time of
this process (all threads; the fairer figure when other processes compete for the cores). A
phase table then shows where the audit's time goes: the audit's own functions (and, for the
recorded probe, GradScope's callback hooks) are wrapped with timers for one extra (un-counted)
run of each probe per file. With ``--cli`` the same
comparison is made end to end in fresh processes (``python -m gradscope.cli audit FILE`` vs a
``python -c`` that does the bare baseline): what a user waits for, including importing
TensorFlow.

Run ``python benchmarks/audit_latency.py`` (4 files, 5 rounds, ``--cli``) or
``python benchmarks/audit_latency.py --quick`` (cnn.h5, 1 round, no warm-up: a sanity check).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import LoadMeter, fmt_ratio, header, markdown_table, wait_for_quiet

TARGET = 2.0  # in-process, issue 16
PROCESS_TARGET = 1.3  # fresh processes, issue 16
BATCH = 32
FILES_FULL = ("sigmoid_mlp.keras", "sigmoid_mlp.h5", "cnn.keras", "cnn.h5")
FILES_QUICK = ("cnn.h5",)
VARIANTS = ("bare", "traced", "audit", "audit_recorded", "audit_static")
#: The default light probe's steps, given explicitly to run the recorded probe instead.
PROBE_STEPS = 8


def build_sigmoid_mlp() -> Any:
    """10 x Dense(256, sigmoid), RandomNormal(1.0), SGD(0.01): vanishing + saturation."""
    import keras

    keras.utils.set_random_seed(0)
    init = keras.initializers.RandomNormal(stddev=1.0)
    model = keras.Sequential(
        [keras.Input((32,))]
        + [
            keras.layers.Dense(256, activation="sigmoid", kernel_initializer=init)
            for _ in range(10)
        ]
        + [keras.layers.Dense(10, activation="softmax")],
        name="sigmoid_mlp",
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def build_cnn() -> Any:
    """Small healthy CNN on 28x28x1: 2 conv (ReLU, He) + pool + 2 dense, Adam."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu", kernel_initializer="he_normal"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer="he_normal"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def write_models(root: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """Saves the requested files (``<model>.<keras|h5>``) under ``root``."""
    import warnings

    builders = {"sigmoid_mlp": build_sigmoid_mlp, "cnn": build_cnn}
    paths = {}
    for name in names:
        stem = name.split(".")[0]
        path = root / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns that HDF5 is a legacy format
            builders[stem]().save(path)
        paths[name] = path
    return paths


def batch_for(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """32 standard-normal inputs for the model's input shape and integer class targets."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, *model.inputs[0].shape[1:])).astype("float32")
    y = rng.integers(0, int(model.outputs[0].shape[-1]), BATCH).astype("int32")
    return x, y


def bare(path: Path) -> None:
    """Issue 4's baseline: load_model + one eager forward/backward pass.

    ``compile=False``, as the audit itself loads: the pass needs no optimizer, and restoring the
    stored one would only make the baseline slower (and the ratio look better).
    """
    import keras
    import tensorflow as tf

    model = keras.models.load_model(path, compile=False)
    x, y = batch_for(model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    float(loss)
    _ = [g.numpy() for g in grads]  # make sure the backward pass really ran


def traced(path: Path) -> None:
    """load_model + one compiled train step (traces a tf.function, as the audit's probe does)."""
    import keras

    # A fresh optimizer: one restored from an .h5 file refuses the loaded model's variables.
    model = keras.models.load_model(path, compile=False)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x, y = batch_for(model)
    model.train_on_batch(x, y)


def run_audit(path: Path, steps: int | None = None) -> None:
    """``gradscope.audit.audit`` on the file, its probe run written to a temporary directory."""
    from gradscope.audit import audit

    with tempfile.TemporaryDirectory(prefix="gs-audit-bench-") as tmp:
        audit(path, steps=steps, log_dir=Path(tmp) / "run")


RUNNERS: dict[str, Callable[[Path], None]] = {
    "bare": bare,
    "traced": traced,
    "audit": run_audit,
    "audit_recorded": lambda p: run_audit(p, steps=PROBE_STEPS),
    "audit_static": lambda p: run_audit(p, steps=0),
}


@contextlib.contextmanager
def phase_timers(times: dict[str, float]) -> Iterator[None]:
    """Wraps the audit's own steps with timers (module attributes, restored on exit).

    Phases: ``load`` (safe inspection + deserialization), ``static rules``, ``detect``,
    ``write findings``; for the light probe ``light: copy + compile``, ``light: host reductions``,
    ``light: load run`` and ``light: steps, writes, rest``; for the recorded one ``probe: clone``,
    ``probe: compile + dataset``, ``probe: fit start`` (GradScope hooks), ``probe: first step``
    (tracing the train step), ``probe: other steps``, ``probe: end of fit`` (diagnosis, close),
    ``probe: load run``.
    """
    import gradscope.audit as audit_mod
    import gradscope.audit.light as light_mod
    import gradscope.detect as detect_mod
    import gradscope.trial.runner as probe_mod  # the recorded probe is the one trial

    patched: list[tuple[Any, str, Any]] = []

    def timed(module: Any, attr: str, phase: str) -> None:
        original = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[phase] = times.get(phase, 0.0) + time.perf_counter() - start

        patched.append((module, attr, original))
        setattr(module, attr, wrapper)

    base = probe_mod.GradScope
    marks: dict[str, float] = {}

    class TimedGradScope(base):  # type: ignore[misc,valid-type]
        """GradScope that notes when fit starts, its first and last batch and its end."""

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            marks["begin"] = time.perf_counter()
            super().on_train_begin(logs)
            marks["begun"] = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_train_batch_end(batch, logs)
            marks.setdefault("first", time.perf_counter())
            marks["last"] = time.perf_counter()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            marks["end"] = time.perf_counter()
            super().on_train_end(logs)
            marks["ended"] = time.perf_counter()

    timed(audit_mod, "load_model_safely", "load")
    timed(audit_mod, "static_findings", "static rules")
    timed(probe_mod, "clone_with_weights", "probe: clone")
    timed(probe_mod, "load_run", "probe: load run")
    timed(detect_mod, "detect", "detect")
    timed(audit_mod, "write_findings", "write findings")
    timed(audit_mod, "_probe", "probe (total)")
    timed(light_mod, "prepare_trial_model", "light: copy + compile")
    timed(light_mod, "_record", "light: host reductions")
    timed(light_mod, "load_run", "light: load run")
    patched.append((probe_mod, "GradScope", base))
    probe_mod.GradScope = TimedGradScope
    try:
        yield
    finally:
        for module, attr, original in reversed(patched):
            setattr(module, attr, original)
        if {"begin", "begun", "first", "last", "end", "ended"} <= set(marks):
            times["probe: fit start (hooks)"] = marks["begun"] - marks["begin"]
            times["probe: first step (trace)"] = marks["first"] - marks["begun"]
            times["probe: other steps"] = marks["last"] - marks["first"]
            times["probe: end of fit (diagnose)"] = marks["ended"] - marks["end"]
            # GradScope's end-of-fit diagnosis binds detect at import, so the "detect" timer
            # sees only the audit's own call; the diagnosis is in "end of fit".
            accounted = sum(
                times.get(k, 0.0)
                for k in (
                    "probe: clone",
                    "probe: load run",
                    "probe: fit start (hooks)",
                    "probe: first step (trace)",
                    "probe: other steps",
                    "probe: end of fit (diagnose)",
                )
            )
            times["probe: compile, data, rest"] = times.get("probe (total)", 0.0) - accounted
        elif "light: copy + compile" in times:
            light = ("light: copy + compile", "light: host reductions", "light: load run")
            accounted = sum(times.get(k, 0.0) for k in light)
            times["light: steps, writes, rest"] = times.get("probe (total)", 0.0) - accounted


def profile_audit(path: Path, steps: int | None = None) -> tuple[float, dict[str, float]]:
    """One timed audit with phase timers; returns (total seconds, phase -> seconds)."""
    times: dict[str, float] = {}
    with phase_timers(times):
        start = time.perf_counter()
        run_audit(path, steps)
        total = time.perf_counter() - start
    return total, times


#: (wall seconds, CPU seconds) of one call.
Sample = tuple[float, float]


def bench_files(
    paths: dict[str, Path], rounds: int, warmup: bool, max_wait: float
) -> dict[str, dict[str, list[Sample]]]:
    """Alternating, rotated repeats of every variant on every file; (wall, CPU) per call."""
    results: dict[str, dict[str, list[Sample]]] = {f: {v: [] for v in VARIANTS} for f in paths}
    if warmup:  # imports, h5py/zip readers, oneDNN kernels
        for path in paths.values():
            for v in VARIANTS:
                RUNNERS[v](path)
    for r in range(rounds):
        if max_wait > 0:
            wait_for_quiet(max_wait)
        with LoadMeter() as meter:
            for name, path in paths.items():
                shift = r % len(VARIANTS)
                for v in VARIANTS[shift:] + VARIANTS[:shift]:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    RUNNERS[v](path)
                    results[name][v].append(
                        (time.perf_counter() - start, time.process_time() - start_cpu)
                    )
        assert meter.window is not None
        print(
            f"  round {r + 1}/{rounds}: {meter.window.wall:.0f} s; {meter.window.describe()}",
            file=sys.stderr,
            flush=True,
        )
    return results


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_times(path: Path, repeats: int) -> dict[str, list[Sample]]:
    """End-to-end (wall, CPU) of fresh processes: ``gradscope audit`` vs the bare baseline."""
    here = Path(__file__).resolve().parent
    bare_cmd = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(here)!r}); import audit_latency as a, pathlib; "
        f"a.bare(pathlib.Path({str(path)!r}))",
    ]
    audit_cmd = [sys.executable, "-m", "gradscope.cli", "audit", str(path), "--json"]
    out: dict[str, list[Sample]] = {"bare process": [], "gradscope audit process": []}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _ in range(repeats):
        for key, cmd in (("bare process", bare_cmd), ("gradscope audit process", audit_cmd)):
            start, start_cpu = time.perf_counter(), _children_cpu()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            out[key].append((time.perf_counter() - start, _children_cpu() - start_cpu))
            if proc.returncode not in (0, 1):  # audit exits 1 when it has findings
                raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


SUMMARY_HEADERS = ("median [s]", "min [s]", "ratio", "CPU median [s]", "CPU ratio")


def _median(samples: list[Sample], k: int) -> float:
    return statistics.median(s[k] for s in samples)


def summary_rows(name: str, by_key: dict[str, list[Sample]], base: str) -> list[list[str]]:
    """Rows of ``<name> <key>``: wall median, wall min, ratio, CPU median, CPU ratio."""
    rows = []
    for key, samples in by_key.items():
        wall, cpu = _median(samples, 0), _median(samples, 1)
        rows.append(
            [
                f"{name} {key}",
                f"{wall:.3f}",
                f"{min(s[0] for s in samples):.3f}",
                fmt_ratio(wall, _median(by_key[base], 0)),
                f"{cpu:.3f}",
                fmt_ratio(cpu, _median(by_key[base], 1)),
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Writes the model files, runs the comparison and prints the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cnn.h5, 1 round, no warm-up")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 5)")
    parser.add_argument(
        "--cli", action=argparse.BooleanOptionalAction, default=None, help="process-level table"
    )
    parser.add_argument("--max-wait", type=float, default=None, help="wait for a quiet machine")
    args = parser.parse_args(argv)
    names = FILES_QUICK if args.quick else FILES_FULL
    rounds = args.rounds or (1 if args.quick else 5)
    cli = args.cli if args.cli is not None else not args.quick
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 20.0)

    print(header("gradscope audit latency", argv), flush=True)
    root = Path(tempfile.mkdtemp(prefix="gs-audit-latency-"))
    try:
        with LoadMeter() as meter:
            paths = write_models(root, names)
            results = bench_files(paths, rounds, warmup=not args.quick, max_wait=max_wait)
            phases = {}
            for name, path in paths.items():
                phases[name] = profile_audit(path)
                phases[f"{name} recorded"] = profile_audit(path, PROBE_STEPS)
        assert meter.window is not None
        print(f"settings: {rounds} rounds, warm-up {'off' if args.quick else 'on'}")
        print(
            f"load during the in-process runs ({meter.window.wall:.0f} s): "
            f"{meter.window.describe()}\n"
        )
        print("## in-process: median seconds per call, ratios to bare\n")
        rows = [row for name, by in results.items() for row in summary_rows(name, by, "bare")]
        print(markdown_table(["file variant", *SUMMARY_HEADERS], rows))
        print()
        for name, by_variant in results.items():
            for label, k in (("wall", 0), ("CPU", 1)):
                ratio = _median(by_variant["audit"], k) / _median(by_variant["bare"], k)
                verdict = "met" if ratio <= TARGET else "MISSED"
                print(
                    f"{name}: audit / bare = {ratio:.2f}x {label} (target <= {TARGET}x: {verdict})"
                )
        print("\n## where the audit's time goes (one extra run per file, phase timers)\n")
        phase_names = sorted({p for _, t in phases.values() for p in t}, key=_phase_order)
        rows = [[p, *(f"{phases[n][1].get(p, 0.0):.3f}" for n in phases)] for p in phase_names]
        rows.append(["audit (total)", *(f"{phases[n][0]:.3f}" for n in phases)])
        print(markdown_table(["phase", *(f"{n} [s]" for n in phases)], rows))
        if cli:
            print("\n## end to end: fresh processes (includes importing TensorFlow)\n")
            with LoadMeter() as cli_meter:
                cli_results = {
                    name: cli_times(path, max(3, rounds // 2)) for name, path in paths.items()
                }
            assert cli_meter.window is not None
            print(
                f"load during the process runs ({cli_meter.window.wall:.0f} s): "
                f"{cli_meter.window.describe()}\n"
            )
            rows = [
                row
                for name, by in cli_results.items()
                for row in summary_rows(name, by, "bare process")
            ]
            print(markdown_table(["file command", *SUMMARY_HEADERS], rows))
            print()
            for name, by in cli_results.items():
                for label, k in (("wall", 0), ("CPU", 1)):
                    ratio = _median(by["gradscope audit process"], k) / _median(
                        by["bare process"], k
                    )
                    verdict = "met" if ratio <= PROCESS_TARGET else "MISSED"
                    print(
                        f"{name}: audit process / bare process = {ratio:.2f}x {label} "
                        f"(target <= {PROCESS_TARGET}x: {verdict})"
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload after: loadavg {os.getloadavg()[0]:.2f}")
    return 0


_ORDER = (
    "load",
    "static rules",
    "probe (total)",
    "light: copy + compile",
    "light: steps, writes, rest",
    "light: host reductions",
    "light: load run",
    "probe: clone",
    "probe: compile, data, rest",
    "probe: fit start (hooks)",
    "probe: first step (trace)",
    "probe: other steps",
    "probe: end of fit (diagnose)",
    "probe: load run",
    "detect",
    "write findings",
)


def _phase_order(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


if __name__ == "__main__":
    sys.exit(main())
