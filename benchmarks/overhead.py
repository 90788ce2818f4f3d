"""Training overhead of GradScope versus a plain ``model.fit`` and Keras's TensorBoard callback.

One process, alternating repeats: in every round each variant is fitted once, in an order rotated
from round to round, so that slow drift of the machine (other processes, thermal state) spreads
over all variants instead of biasing one. Every variant fits one model instance, the same for all
of them (as a user re-running ``fit`` with other callbacks would): on this VM two models built
alike, traced apart, run a step up to 0.8 ms (13 %) apart whatever they hold, a bias that medians
over rounds do not remove (session 9, ``in_fit.py``). So the plain variant's steps and GradScope's
unrecorded ones run the very same traced function. Every timed fit follows an un-timed one-epoch
fit with the same variant's callbacks (tracing, oneDNN primitive caches, file-system caches; and
a model keeps the last GradScope's traced step only, so the timed fit reuses it).

Numbers per fit (medians over the rounds, ratios to ``plain``):

* ``fit``: wall time of the whole ``model.fit`` call, as the user sees it. GradScope installs its
  hooks in ``on_train_begin`` and forces a retrace of the train step on every fit, and diagnoses
  the run at the end, so this includes the per-fit fixed cost.
* ``steady``: wall time per step of epochs 2..E (end of epoch 1 to end of epoch E): no tracing,
  no ``on_train_begin``/``on_train_end`` work. This is the cost that grows with training length.
* ``steady min``: the same, fastest round of each variant: the round least disturbed by others.
* ``CPU``: CPU time per step (all threads of this process, user + system) over the same epochs.
  On a shared machine wall time also measures the neighbours; CPU time mostly does not, so it
  is the ratio to trust when the load line says others were busy. It is not immune either:
  TensorFlow's worker threads spin before they sleep, so contention changes it a little.
* ``fixed``: ``fit - steady * total_steps``: the per-fit cost that does not grow with steps.

Variants (the ``id`` column, defined with the models in ``overhead_variants.py``): plain fit;
GradScope defaults (freq=10, activations every 10 steps from wrapped layer calls); the same without
TensorBoard event files (where the host-side time goes); GradScope(freq=1, histogram_freq=10);
Keras ``TensorBoard(histogram_freq=1)``; a no-op callback that only defines ``on_train_batch_end``
(any such callback makes Keras leave asynchronous callback dispatch, so this isolates that cost);
and, for issue 3's choice of activation source, GradScope with activations off, from wrapped layer
calls (``activation_freq`` set, no probe) and from a 256-example ``probe_data`` batch, each at
freq=10 and at freq=1.

Run ``python benchmarks/overhead.py`` (full, ~15 min on 2 cores) or
``python benchmarks/overhead.py --quick`` (a 3-layer MLP, a few steps; a sanity check, not a
result).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import (
    EpochClock,
    LoadMeter,
    LoadWindow,
    fmt_ratio,
    header,
    markdown_table,
    wait_for_quiet,
)
from overhead_variants import ACTIVATION_TRIPLES, MODELS, Variant, build_mlp, load_data, variants

BATCH_SIZE = 32
PROBE_EXAMPLES = 256


@dataclass(frozen=True)
class Settings:
    """Size of one benchmark run."""

    examples: int  # training examples (digits tiled); steps per epoch = examples / BATCH_SIZE
    epochs: int  # epochs per timed fit (epoch 1 is excluded from "steady")
    rounds: int  # alternating rounds
    warmup: bool = True  # an un-timed one-epoch fit before each timed fit
    models: str = "mlp,cnn"
    variants: tuple[str, ...] | None = None  # ids to run; None runs all
    mlp_depth: int = 10


FULL = Settings(examples=3 * 1797, epochs=3, rounds=5)
#: A sanity check of every code path that matters (not a result): each fit is dominated by
#: tracing, whose cost grows with depth, so it runs a 3-layer MLP and only the variants of the
#: main table and the freq=1 activation triple.
QUICK = Settings(
    examples=128,
    epochs=2,
    rounds=1,
    warmup=False,
    models="mlp",
    mlp_depth=3,
    variants=(
        "plain",
        "gs_default",
        "gs_freq1_hist10",
        "tensorboard_hist1",
        "gs_f1_act_off",
        "gs_f1_wrapped",
        "gs_f1_probe",
    ),
)


@dataclass
class Timing:
    """Collected timings of one (model, variant) pair, seconds."""

    fit: list[float] = field(default_factory=list)
    steady: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed_fit(
    model: Any, x: np.ndarray, y: np.ndarray, callbacks: list[Any], epochs: int
) -> tuple[float, float, float]:
    """Fits once; returns whole-fit wall, epochs 2..E wall and epochs 2..E CPU seconds."""
    clock = EpochClock()
    start = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks, clock.callback],
    )
    end = time.perf_counter()
    (wall_1, cpu_1), (wall_e, cpu_e) = clock.marks[0], clock.marks[-1]
    return end - start, wall_e - wall_1, cpu_e - cpu_1


def bench_model(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    settings: Settings,
    chosen: list[Variant],
    max_wait: float,
) -> dict[str, Timing]:
    """Alternating, rotated repeats of every variant on one model architecture."""
    build = MODELS[name][1]
    if name == "mlp" and settings.mlp_depth != 10:
        build = lambda: build_mlp(depth=settings.mlp_depth)  # noqa: E731
    probe = x[:PROBE_EXAMPLES]
    model = build()
    by_id = {v.id: v for v in chosen}
    results = {v.id: Timing() for v in chosen}
    root = tempfile.mkdtemp(prefix=f"gs-bench-{name}-")
    count = 0

    def run(variant_id: str, epochs: int) -> tuple[float, float, float]:
        nonlocal count
        count += 1
        log_dir = os.path.join(root, f"{count:03d}")
        callbacks = by_id[variant_id].make(log_dir, probe)
        result = timed_fit(model, x, y, callbacks, epochs)
        shutil.rmtree(log_dir, ignore_errors=True)
        return result

    try:
        order = [v.id for v in chosen]
        for r in range(settings.rounds):
            busy = wait_for_quiet(max_wait) if max_wait > 0 else None
            with LoadMeter() as meter:
                shift = r % len(order)
                for variant_id in order[shift:] + order[:shift]:
                    if settings.warmup:
                        run(variant_id, 1)
                    fit, steady, cpu = run(variant_id, settings.epochs)
                    results[variant_id].fit.append(fit)
                    results[variant_id].steady.append(steady)
                    results[variant_id].cpu.append(cpu)
            assert meter.window is not None
            before = "" if busy is None else f"busy before {100 * busy:.0f}%; "
            print(
                f"  {name}: round {r + 1}/{settings.rounds} {meter.window.wall:.0f} s; "
                f"{before}{meter.window.describe()}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def format_table(
    results: dict[str, Timing], chosen: list[Variant], steps: int, steady_steps: int
) -> str:
    """Markdown table of medians per variant with ratios to ``plain``."""
    base = results["plain"]
    b_fit, b_steady, b_cpu = _median(base.fit), _median(base.steady), _median(base.cpu)
    b_min = min(base.steady)
    rows = []
    for v in chosen:
        t = results[v.id]
        fit, steady, cpu = _median(t.fit), _median(t.steady), _median(t.cpu)
        fastest = min(t.steady)
        rows.append(
            [
                v.id,
                v.description,
                f"{fit:.2f}",
                fmt_ratio(fit, b_fit),
                f"{1000 * steady / steady_steps:.2f}",
                fmt_ratio(steady, b_steady),
                fmt_ratio(fastest, b_min),
                f"{1000 * cpu / steady_steps:.2f}",
                fmt_ratio(cpu, b_cpu),
                f"{fit - steady * steps / steady_steps:.2f}",
            ]
        )
    headers = [
        "id",
        "variant",
        "fit [s]",
        "fit ratio",
        "steady [ms/step]",
        "steady ratio",
        "steady min ratio",
        "CPU [ms/step]",
        "CPU ratio",
        "fixed [s]",
    ]
    return markdown_table(headers, rows)


def activation_table(results: dict[str, Timing], steady_steps: int) -> tuple[str, list[str]]:
    """Wrapped layer calls vs probe batch: extra cost per step over activations off.

    Returns the table and one verdict sentence per frequency.
    """
    rows = []
    verdicts = []
    for freq, off, wrapped, probe in ACTIVATION_TRIPLES:
        if not all(k in results for k in (off, wrapped, probe)):
            continue
        per_step = {
            k: (
                1000 * _median(results[k].steady) / steady_steps,
                1000 * _median(results[k].cpu) / steady_steps,
            )
            for k in (off, wrapped, probe)
        }
        extra = {}
        for source, k in (("wrapped layer calls", wrapped), ("probe_data batch", probe)):
            wall_extra = per_step[k][0] - per_step[off][0]
            cpu_extra = per_step[k][1] - per_step[off][1]
            extra[source] = cpu_extra
            rows.append(
                [
                    f"freq={freq} {source} ({k})",
                    f"{wall_extra:+.2f}",
                    f"{cpu_extra:+.2f}",
                    fmt_ratio(per_step[k][0], per_step[off][0]),
                    fmt_ratio(per_step[k][1], per_step[off][1]),
                ]
            )
        w, p = extra["wrapped layer calls"], extra["probe_data batch"]
        faster = "wrapped layer calls" if w <= p else "probe_data batch"
        total = fmt_ratio(per_step[probe][1], per_step[wrapped][1])
        verdicts.append(
            f"freq={freq}: faster activation source: {faster} "
            f"(extra CPU per step {w:+.2f} ms wrapped vs {p:+.2f} ms probe; "
            f"probe/wrapped total CPU per step {total})"
        )
    headers = [
        "activation source",
        "extra wall [ms/step]",
        "extra CPU [ms/step]",
        "steady ratio vs act off",
        "CPU ratio vs act off",
    ]
    return markdown_table(headers, rows), verdicts


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one table per model."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="sanity run: 3x256 MLP, 8 steps, 7 variants"
    )
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument("--models", default=None, help="comma-separated subset of: mlp, cnn")
    parser.add_argument(
        "--variants", default=None, help="comma-separated subset of variant ids (plain is kept)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (>= 2)")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=None,
        help="seconds to wait before a round for other processes to calm down "
        "(default 20, 0 with --quick)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    rounds = args.rounds or settings.rounds
    if args.epochs is not None:
        if args.epochs < 2:
            parser.error("--epochs must be >= 2 (epoch 1 is excluded from the steady part)")
        settings = Settings(
            settings.examples,
            args.epochs,
            settings.rounds,
            settings.warmup,
            settings.models,
            settings.variants,
            settings.mlp_depth,
        )
    models = [m.strip() for m in (args.models or settings.models).split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            parser.error(f"unknown model {m!r}; choose from {sorted(MODELS)}")
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 20.0)

    print(header("GradScope training overhead", argv), flush=True)
    x, y = load_data(settings.examples)
    wanted = settings.variants
    if args.variants:
        wanted = ("plain", *(v.strip() for v in args.variants.split(",") if v.strip()))
        unknown = set(wanted) - {v.id for v in variants()}
        if unknown:
            parser.error(f"unknown variant ids {sorted(unknown)}")
    chosen = [v for v in variants() if wanted is None or v.id in wanted]
    per_epoch = -(-len(x) // BATCH_SIZE)
    steps, steady_steps = per_epoch * settings.epochs, per_epoch * (settings.epochs - 1)
    print(
        f"settings: {per_epoch} steps/epoch x {settings.epochs} epochs, batch {BATCH_SIZE}, "
        f"{rounds} rounds, warm-up {'on' if settings.warmup else 'off'}, "
        f"steady = epochs 2..{settings.epochs} ({steady_steps} steps)",
        flush=True,
    )
    windows: list[tuple[str, LoadWindow]] = []
    for name in models:
        title, _, shape = MODELS[name]
        if name == "mlp" and settings.mlp_depth != 10:
            title = title.replace("10x256", f"{settings.mlp_depth}x256")
        inputs = x.reshape(-1, *shape)
        with LoadMeter() as meter:
            run_settings = Settings(
                settings.examples,
                settings.epochs,
                rounds,
                settings.warmup,
                name,
                mlp_depth=settings.mlp_depth,
            )
            results = bench_model(name, inputs, y, run_settings, chosen, max_wait)
        assert meter.window is not None
        windows.append((name, meter.window))
        print(f"\n## {name}: {title}\n")
        print(f"load during {name} ({meter.window.wall:.0f} s): {meter.window.describe()}\n")
        print(format_table(results, chosen, steps, steady_steps))
        table, verdicts = activation_table(results, steady_steps)
        if verdicts:  # only when a whole (off, wrapped, probe) triple was run
            print(
                f"\nactivation source ({name}): extra cost over the same GradScope without "
                "activations\n"
            )
            print(table)
            print()
        for line in verdicts:
            print(f"{name} {line}")
        print(flush=True)
    print(f"load after: loadavg {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
