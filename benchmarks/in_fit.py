"""A recorded step's cost inside a real fit: CPU per execution, recorded against unrecorded.

``floors.py`` times each part of a recorded step called back to back; this times the same
steps where users meet them, inside ``model.fit``. With ``GradScope()`` defaults one step in ten
is recorded, so its function runs on caches the nine plain steps before it have filled; with
``freq=1`` every step is. Each round builds one model and fits it plain once; then, for each
``freq``, a warm-up fit under GradScope, and one timed fit of 3 epochs plain and one under
GradScope, in alternating order:

* ``plain execution``: CPU ms of one call of Keras's function in a fit without GradScope;
* ``unrecorded`` / ``recorded``: CPU ms of one call of ``model.train_function`` under GradScope,
  by whether the execution recorded;
* ``in the graph``: recorded less unrecorded (the same model throughout: two fresh models differ
  by up to 0.8 ms a step on this VM, whatever they run);
* ``host``: CPU ms of GradScope's ``on_train_batch_end`` after a recorded step (read, record,
  JSON line, TensorBoard event) and after an unrecorded one;
* ``per step, implied``: what those parts add to a step on average, as a ratio to the unrecorded
  execution; ``whole fit``: CPU of the GradScope fit over the plain fit of the same model.

CPU time of this process (all threads), medians over rounds.

Last, ``pauses``: the plain fit again with a callback that keeps the main thread busy for 1 or
3 ms after every tenth step, as a recorded step's host work does; the process's CPU per step
grows by more than the pauses, because TensorFlow's idle worker threads spin before they sleep.

Run ``python benchmarks/in_fit.py`` (about 3 minutes on 2 cores), ``--quick`` for a 3-layer MLP
and one round (a sanity check, not a result).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import LoadMeter, fmt_ratio, header, markdown_table
from overhead_variants import MODELS, build_mlp, load_data

FREQS = (10, 1)


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args)
        finally:
            into.append(time.process_time() - start)

    return call


def timed_fit(
    model: Any, x: np.ndarray, y: np.ndarray, freq: int | None, epochs: int, root: str
) -> dict:
    """One fit of ``model`` (plain when ``freq`` is None); CPU seconds per call, by kind."""
    from gradscope import GradScope
    from gradscope.collect.callback import GradScope as Callback
    from gradscope.collect.dispatch import StepDispatch

    seen: dict[str, list[float]] = defaultdict(list)
    callbacks: list[Any] = []
    if freq is not None:
        callbacks.append(GradScope(tempfile.mkdtemp(dir=root), freq=freq, verbose=0))
    dispatch_call, batch_end = StepDispatch.__call__, Callback.on_train_batch_end
    recorded = [False]

    def execution(self: StepDispatch, iterator: Any) -> Any:
        start = time.process_time()
        try:
            return dispatch_call(self, iterator)
        finally:
            recorded[0] = self.recorded
            kind = "recorded" if self.recorded else "unrecorded"
            seen[kind].append(time.process_time() - start)

    def on_batch_end(self: Callback, batch: int, logs: Any = None) -> None:
        start = time.process_time()
        batch_end(self, batch, logs)
        kind = "host, recorded" if recorded[0] else "host, unrecorded"
        seen[kind].append(time.process_time() - start)

    plain = model.train_function  # Keras's, traced by the warm-up fits
    if freq is None:
        model.train_function = _timed(plain, seen["plain execution"])
    StepDispatch.__call__, Callback.on_train_batch_end = execution, on_batch_end  # type: ignore
    try:
        start = time.process_time()
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks)
        seen["fit"].append(time.process_time() - start)
    finally:
        StepDispatch.__call__, Callback.on_train_batch_end = dispatch_call, batch_end  # type: ignore
        model.train_function = plain
    return seen


def one_round(
    build: Callable[[], Any],
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    reverse: bool,
    root: str,
) -> dict[int | None, dict[str, list[float]]]:
    """One fresh model; for each ``freq`` a warm-up fit, then a timed plain fit and a timed one.

    The same model for every kind of fit: its unrecorded steps then run the very function its
    plain fit runs, so what differs is GradScope's alone.
    """
    from gradscope import GradScope

    model = build()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    out: dict[int | None, dict[str, list[float]]] = {None: defaultdict(list)}
    for freq in FREQS:
        # Traces the instrumented step; the timed fit right after reuses it (a model keeps the
        # last GradScope's attachment only, so each freq is warmed up just before its fit).
        callback = GradScope(tempfile.mkdtemp(dir=root), freq=freq, verbose=0)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
        for kind in (freq, None)[:: -1 if reverse else 1]:
            for key, values in timed_fit(model, x, y, kind, epochs, root).items():
                out.setdefault(kind, defaultdict(list))[key].extend(values)
    return out


def table(parts: dict[int | None, dict[str, float]]) -> str:
    """Rows of measures, one column per freq."""

    def ms(freq: int, key: str) -> float:
        return 1000 * parts[freq][key]

    rows: list[list[object]] = [
        ["plain execution (no GradScope)", *(f"{ms(None, 'plain execution'):.2f}" for _ in FREQS)]
    ]
    for key in ("unrecorded", "recorded"):
        rows.append([f"{key} execution", *(_cell(parts[f], key) for f in FREQS)])
    graph = [
        f"{ms(f, 'recorded') - ms(f, 'unrecorded'):.2f}" if "unrecorded" in parts[f] else "—"
        for f in FREQS
    ]
    rows.append(["in the graph: recorded - unrecorded", *graph])
    for key in ("host, recorded", "host, unrecorded"):
        rows.append([key, *(_cell(parts[f], key) for f in FREQS)])
    implied, whole = [], []
    for f in FREQS:
        p = parts[f]
        # The same model's unrecorded steps where there are some; else the plain fit's.
        base = p.get("unrecorded", parts[None]["plain execution"])
        graph = p["recorded"] - base
        host = p["host, recorded"] + (f - 1) * p.get("host, unrecorded", 0.0)
        implied.append(fmt_ratio(base + (graph + host) / f, base))
        whole.append(fmt_ratio(p["fit"], parts[None]["fit"]))
    rows.append(["per step, implied: ratio", *implied])
    rows.append(["whole fit, CPU: ratio", *whole])
    return markdown_table(["measure (CPU ms a call)", *(f"freq={f}" for f in FREQS)], rows)


def _cell(p: dict[str, float], key: str) -> str:
    return f"{1000 * p[key]:.2f}" if key in p else "—"


def pauses(build: Callable[[], Any], x: np.ndarray, y: np.ndarray, epochs: int, rounds: int) -> str:
    """CPU per step of plain fits with a main-thread pause after every tenth step."""
    import keras

    class Pause(keras.callbacks.Callback):
        def __init__(self, ms: float) -> None:
            super().__init__()
            self.ms = ms

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.ms and batch % 10 == 0:
                start = time.thread_time()  # busy on this thread, as host work is
                while time.thread_time() - start < self.ms / 1000:
                    pass

    model = build()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    steps = -(-len(x) // 32) * epochs
    cpu: dict[float, list[float]] = defaultdict(list)
    for _ in range(rounds):
        for ms in (0.0, 1.0, 3.0):
            start = time.process_time()
            model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[Pause(ms)])
            cpu[ms].append((time.process_time() - start) / steps)
    base = statistics.median(cpu[0.0])
    rows = []
    for ms, values in cpu.items():
        step = statistics.median(values)
        extra = 10 * (step - base) * 1000 - ms  # CPU beyond the pause itself, per pause
        rows.append(
            [
                f"pause {ms:g} ms every 10th step",
                f"{1000 * step:.2f}",
                fmt_ratio(step, base),
                f"{extra:+.2f}" if ms else "—",
            ]
        )
    headers = ["plain fit", "CPU ms a step", "CPU ratio", "CPU beyond the pause, ms a pause"]
    return markdown_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3-layer MLP, 1 round, 2 epochs")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (default 3)")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    args = parser.parse_args(argv)
    rounds, epochs = (1, 2) if args.quick else (args.rounds, 3)
    if args.quick:
        x, y = load_data(320)
        models = {"mlp": ("MLP 3x256 (quick)", lambda: build_mlp(depth=3), (64,))}
    else:
        x, y = load_data(3 * 1797)
        models = {m: MODELS[m] for m in args.models.split(",")}
    print(header("A recorded step's cost inside a real fit", argv), flush=True)
    print(
        f"settings: a warm-up fit, then {epochs} epochs of {len(x) // 32} steps, batch 32, "
        f"{rounds} rounds (a fresh model each, fitted plain and under each freq, in alternating "
        "order); medians of CPU per call",
        flush=True,
    )
    for name, (title, build, shape) in models.items():
        xs = x.reshape(-1, *shape)
        with tempfile.TemporaryDirectory(prefix="gradscope-in-fit-") as root, LoadMeter() as meter:
            merged: dict[int | None, dict[str, list[float]]] = {}
            for i in range(rounds):
                for freq, seen in one_round(build, xs, y, epochs, i % 2 == 1, root).items():
                    for key, values in seen.items():
                        merged.setdefault(freq, defaultdict(list))[key].append(
                            statistics.median(values)
                        )
        parts = {f: {k: statistics.median(v) for k, v in d.items()} for f, d in merged.items()}
        assert meter.window is not None
        print(f"\n## {name}: {title}\n\nload during {name}: {meter.window.describe()}\n")
        print(table(parts), flush=True)
        print(f"\n{pauses(build, xs, y, epochs, rounds)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
