"""Where a recorded step's cost goes, part by part, against the floor of each part.

Issue 16 asks for ``GradScope()`` defaults at <= 1.03x and ``GradScope(freq=1)`` at <= 1.25x of a
plain step. This script splits a recorded step of the overhead benchmark's models into its parts,
each timed alone in one process (CPU time, minimum over rounds), and sets each part beside the
cheapest way to do the same job:

* in the graph: Keras's own train function (``plain``), GradScope's instrumented one with and
  without activation statistics and with every statistic replaced by zeros (the recording's
  skeleton: hooks, buffer writes, the clock, the carried buffers), the statistics' reductions
  alone in a ``tf.function`` of their own, less an empty function taking the same tensors (the
  arithmetic of the sums), and the copy an update makes of weights whose old values are still
  held (an exact ‖Δw‖);
* on the host: an empty ``tf.function`` call (what a separate read of device values costs), the
  buffer read (values the recorded step returned with its logs; the compiled read it falls back
  to), building the record, its JSON line in ``stats.jsonl``, its TensorBoard event.

The ``ratio at freq=1`` and ``ratio at freq=10`` columns are what each part alone adds to a plain
step: ``1 + part / plain`` and ``1 + part / (10 * plain)``.

Usage: ``python benchmarks/floors.py [--quick] [--rounds R] [--calls N] [--traces K] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from benchutil import LoadMeter, fmt_ratio, header, markdown_table, publish
from overhead_variants import MODELS, load_data

BATCH = 32


def cpu_ms(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """Minimum over ``rounds`` of the mean CPU milliseconds per call of ``fn``."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - start) / calls * 1e3)
    return best


def paired_ms(fn: Callable[[], Any], base: Callable[[], Any], calls: int, rounds: int) -> float:
    """Median over ``rounds`` of ``fn``'s CPU ms per call less ``base``'s, timed side by side.

    For a part much smaller than the calls around it (a copy inside an update), where the
    difference of two minima taken apart is lost in their spread.
    """
    fn(), base()
    diffs = [cpu_ms(fn, calls, 1) - cpu_ms(base, calls, 1) for _ in range(2 * rounds)]
    return float(np.median(diffs))


def recorded_parts(build: Callable[[], Any], x: np.ndarray, y: np.ndarray, act: bool) -> Any:
    """Fits a fresh model under ``GradScope(freq=1)``; returns its callback after the fit.

    The benchmark reads the callback's dispatch (Keras's and the instrumented train functions),
    recorder and session: private attributes, on purpose, to time each part alone.
    """
    import keras

    from gradscope import GradScope

    model = build()
    scope = GradScope(tempfile.mkdtemp(prefix="gs-floors-"), freq=1, activation_freq=int(act))
    grabbed: dict[str, Any] = {}

    class Grab(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 3:
                grabbed["dispatch"] = scope._att.dispatch
                grabbed["recorder"] = scope._recorder
                grabbed["session"] = scope.session

    model.fit(x[:320], y[:320], batch_size=BATCH, epochs=1, verbose=0, callbacks=[scope, Grab()])
    grabbed["model"] = model
    return grabbed


@contextlib.contextmanager
def statistics_as_zeros() -> Iterator[None]:
    """Traces the instrumented step with every reduction replaced by zeros of its shape.

    What is left is the recording's skeleton: the hooks, the ring-buffer writes, the clock and
    the buffers carried out with the logs. Instrumented minus plain, traced inside this context,
    is what recording costs before any statistic is computed.
    """
    import tensorflow as tf

    from gradscope.collect import stats

    saved = stats.variable_grad_stats, stats.update_squares, stats.act_stats_rows
    stats.variable_grad_stats = lambda gs: tf.zeros([len(gs), 5], tf.float64)
    stats.update_squares = lambda vs, olds: tf.zeros([len(vs), 2], tf.float64)
    stats.act_stats_rows = lambda xs, kinds, *a, **k: tf.zeros([len(xs), 4], tf.float32)
    try:
        yield
    finally:
        stats.variable_grad_stats, stats.update_squares, stats.act_stats_rows = saved


def graph_parts(model: Any, recorder: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The statistics' reductions alone, and an empty function of the same tensors.

    The same calls the instrumented step makes (:mod:`gradscope.collect.stats`) on tensors
    shaped like the model's gradients, weights, updates and watched layers' outputs (batch 32).
    """
    import tensorflow as tf

    from gradscope.collect import stats

    variables = model.trainable_variables
    rng = np.random.default_rng(0)

    def normal(shape: Any) -> Any:
        return tf.constant(rng.standard_normal(shape).astype("float32"))

    grads = [normal(v.shape) for v in variables]
    weights = [tf.convert_to_tensor(v) for v in variables]
    acts = [
        (normal((BATCH, *layer.output.shape[1:])), kind)
        for _, layer, kind in recorder.plan.act_layers
    ]
    kinds = [kind for _, kind in acts]

    @tf.function
    def reductions(gs: list[Any], ws: list[Any], xs: list[Any]) -> Any:
        return (
            stats.variable_grad_stats(gs),
            stats.update_squares(ws, gs),  # the gradients stand in for the weights before
            stats.act_stats_rows(xs, kinds),
        )

    @tf.function
    def empty(gs: list[Any], ws: list[Any], xs: list[Any]) -> Any:
        return tf.zeros([len(gs), 5]), tf.zeros([len(ws), 2]), tf.zeros([len(xs), 4])

    tensors = [x for x, _ in acts]
    return (lambda: reductions(grads, weights, tensors)), (lambda: empty(grads, weights, tensors))


def copy_parts(model: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """An update of weights shaped like the model's, with and without their old values held.

    An exact ‖Δw‖ for any optimizer needs each weight's value from before the step's update
    while the update writes in place: TensorFlow then copies the buffer rather than overwrite
    one still read. The difference of the two calls is that copy.
    """
    import tensorflow as tf

    variables = [tf.Variable(tf.zeros(v.shape)) for v in model.trainable_variables]
    deltas = [tf.zeros(v.shape) for v in variables]

    def make(hold: bool) -> Callable[[], Any]:
        @tf.function
        def update(ds: list[Any]) -> Any:
            before = [tf.convert_to_tensor(v) for v in variables]
            writes = [v.assign_sub(d) for v, d in zip(variables, ds, strict=True)]
            with tf.control_dependencies(writes):  # used after the update: the copy is made
                held = before if hold else ds
                return tf.stack([tf.reshape(b, [-1])[0] for b in held])

        return lambda: update(deltas)

    return make(True), make(False)


def host_parts(recorder: Any, session: Any, carried: Any) -> dict[str, Callable[[], Any]]:
    """The host's work on one record, each part callable alone.

    The fit's run is closed by now: the JSON line and the event go to a fresh run directory and
    event file, written by the classes the session uses. ``carried`` are the buffer values a
    recorded step returned with its logs (``Recorder.carried``), read as the fit reads them;
    the compiled read is what the host falls back to where a step cannot carry them.
    """
    import tensorflow as tf

    from gradscope.collect import readout
    from gradscope.data.rundirs import new_run_dir
    from gradscope.data.store import RunWriter
    from gradscope.data.tensorboard import TensorBoardWriter

    empty_fn = tf.function(lambda: tf.constant(0.0)).get_concrete_function()
    last = int(readout.snapshot(recorder)["step_buf"].max())
    record = session.last_record
    root = Path(tempfile.mkdtemp(prefix="gs-floors-host-"))
    writer = RunWriter(new_run_dir(root), session.writer.meta)
    events = TensorBoardWriter(root / "tb", layers=session.writer.meta.layers)

    def carry() -> None:
        recorder.carried = carried

    return {
        "empty tf.function call": lambda: empty_fn(),
        "fallback: buffer read in one compiled call": lambda: readout.snapshot(recorder),
        "buffer read (carried with the logs)": lambda: (carry(), readout.snapshot(recorder)),
        "buffer read + record": lambda: (
            carry(),
            readout.read_buffers(recorder, last - 1, 0, None),
        ),
        "JSON line (stats.jsonl)": lambda: writer.append(record),
        "TensorBoard event": lambda: events.write_record(record),
    }


def bench_model(
    name: str, calls: int, rounds: int, traces: int = 3, quick: bool = False
) -> tuple[str, list[str]]:
    """Times every part for one model; returns its markdown table and summary lines.

    The in-step parts are medians over ``traces`` fresh fits, each traced anew.
    """
    import tensorflow as tf

    title, build, _ = MODELS[name]
    x, y = load_data(640)
    if name == "cnn":
        x = x.reshape(-1, 8, 8, 1)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    iterator = iter(data.repeat())

    def in_step(act: bool, zeros: bool = False) -> tuple[float, dict[str, Any]]:
        # Functions traced apart differ by up to ~1 ms a call on this VM, whatever they hold:
        # each trace is paired with the plain function of its own fit, medians over traces.
        diffs, first = [], None
        for _ in range(traces):
            with statistics_as_zeros() if zeros else contextlib.nullcontext():
                fit = recorded_parts(build, x, y, act)  # traced at its first recorded step
            first = first or fit
            d = fit["dispatch"]
            diffs.append(
                paired_ms(
                    lambda d=d: d.instrumented(iterator),
                    lambda d=d: d.plain(iterator),
                    calls,
                    rounds,
                )
            )
        return float(np.median(diffs)), first

    every, on = in_step(act=True)
    dispatch_on = on["dispatch"]
    timings: dict[str, float] = {}
    timings["plain"] = cpu_ms(lambda: dispatch_on.plain(iterator), calls, rounds)
    if not quick:  # more models and traces: left out of the test suite's sanity run
        timings["in-step: instrumented - plain, activations off"] = in_step(act=False)[0]
        timings["in-step: instrumented - plain, statistics as zeros"] = in_step(True, True)[0]
    timings["in-step: instrumented - plain, every statistic"] = every
    reductions, empty = graph_parts(on["model"], on["recorder"])
    timings["alone: the reductions' arithmetic"] = cpu_ms(reductions, calls, rounds) - cpu_ms(
        empty, calls, rounds
    )
    held, dropped = copy_parts(on["model"])
    timings["alone: the weights' copy for an exact update norm"] = max(
        0.0, paired_ms(held, dropped, calls, rounds)
    )
    dispatch_on(iterator)  # a recorded execution: its buffers come back with its logs
    carried = on["recorder"].carried
    host = {
        k: cpu_ms(fn, calls, rounds)
        for k, fn in host_parts(on["recorder"], on["session"], carried).items()
    }
    host["record building"] = (
        host.pop("buffer read + record") - host["buffer read (carried with the logs)"]
    )
    timings.update(host)
    plain = timings["plain"]
    rows = [
        [
            part,
            f"{ms:.3f}",
            fmt_ratio(plain + ms, plain) if part != "plain" else "1.00x",
            fmt_ratio(plain + ms / 10, plain) if part != "plain" else "1.00x",
        ]
        for part, ms in timings.items()
    ]
    table = markdown_table(["part", "CPU ms", "ratio at freq=1", "ratio at freq=10"], rows)
    host_total = sum(
        timings[k]
        for k in (
            "buffer read (carried with the logs)",
            "record building",
            "JSON line (stats.jsonl)",
            "TensorBoard event",
        )
    )
    recorded = timings["in-step: instrumented - plain, every statistic"] + host_total
    floor_graph = (
        timings["alone: the reductions' arithmetic"]
        + timings["alone: the weights' copy for an exact update norm"]
    )
    # The least a read of device values costs: an empty call, or values a step already returned.
    least_read = min(
        timings["empty tf.function call"], timings["buffer read (carried with the logs)"]
    )
    # GradScope() writes each record twice by default: its JSON line and a TensorBoard event.
    floor_host = least_read + timings["JSON line (stats.jsonl)"] + timings["TensorBoard event"]
    lines = [
        f"## {name}: {title}",
        "",
        table,
        "",
        f"{name}: a recorded step adds {recorded:.2f} ms to a {plain:.2f} ms step "
        f"(in the graph {recorded - host_total:.2f}, on the host {host_total:.2f}): "
        f"freq=1 {fmt_ratio(plain + recorded, plain)}, freq=10 "
        f"{fmt_ratio(plain + recorded / 10, plain)} before the per-step dispatch",
        f"{name}: floor of the parts (reductions and the weights' copy alone "
        f"{floor_graph:.2f} ms, the least read, the JSON line and the event {floor_host:.2f} ms): "
        f"freq=1 {fmt_ratio(plain + floor_graph + floor_host, plain)}, freq=10 "
        f"{fmt_ratio(plain + (floor_graph + floor_host) / 10, plain)}",
    ]
    skeleton = timings.get("in-step: instrumented - plain, statistics as zeros")
    if skeleton is not None:
        statistics_ms = timings["in-step: instrumented - plain, every statistic"] - skeleton
        lines.append(
            f"{name}: in the step, the skeleton {skeleton:.2f} ms and the statistics "
            f"{statistics_ms:.2f} ms, against {floor_graph:.2f} ms for their reductions and the "
            "weights' copy alone"
        )
    return "\n".join(lines), lines[-2:]


def main(argv: list[str] | None = None) -> int:
    """Runs the split for the MLP and the CNN and prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few calls: a sanity run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--traces", type=int, default=3, help="fresh fits per in-step part")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    calls, rounds, traces = (5, 2, 1) if args.quick else (args.calls, args.rounds, args.traces)
    out = [header("gradscope: where a recorded step's cost goes", argv)]
    out.append(
        f"settings: {rounds} rounds of {calls} calls per part, CPU time, minimum per call; "
        f"in-step parts: median over {traces} fresh traces of the median of {2 * rounds} "
        "paired differences with the plain function of the same fit"
    )
    # --quick (the test suite's sanity run) times the MLP only.
    for name in ("mlp",) if args.quick else ("mlp", "cnn"):
        with LoadMeter() as meter:
            text, _ = bench_model(name, calls, rounds, traces, args.quick)
        out += ["", text, "", f"load during {name}: {meter.window.describe()}"]
    publish("\n".join(out), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
