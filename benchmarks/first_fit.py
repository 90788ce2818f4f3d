"""A short first fit: one shared function against two (dispatch.SHARED_UP_TO_STEPS).

A first fit of at most ``SHARED_UP_TO_STEPS`` steps runs every step through GradScope's
instrumented function instead of also tracing Keras's. This measures both sides of that trade on
each model, in one process, with fresh models and alternating order:

* ``first fit``: CPU seconds of a whole first fit (fresh model, 3 epochs), plain Keras, GradScope
  with two functions (``SHARED_UP_TO_STEPS = 0``) and with one shared function;
* ``trace saved`` (T): what the shared first fit saves in epoch 1, where the traces are;
* ``per step`` (c): what a step of epochs 2-3 costs more when it runs the shared function;
* ``break-even``: T / c, the fit length (in steps) up to which one function is cheaper.

CPU time of this process (all threads), medians over rounds. ``SHARED_UP_TO_STEPS`` should stay
below the smallest break-even.

Run ``python benchmarks/first_fit.py`` (about 6 minutes on 2 cores), ``--quick`` for one model,
one round (a sanity check, not a result), ``--out FILE`` to also write the markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import EpochClock, LoadMeter, fmt_ratio, header, markdown_table, publish
from overhead_variants import build_cnn, build_mlp, load_data

#: Zoo models measured besides the overhead benchmark's MLP and CNN.
ZOO_MODELS = (
    "tabular_mlp",
    "cnn_dropout",
    "embedding_lstm",
    "bidirectional_gru",
    "transformer_encoder",
)
KINDS = ("plain", "two", "shared")


@dataclass
class Model:
    """A model to fit: a builder (fresh, compiled), its data and batch size."""

    name: str
    build: Callable[[], Any]
    x: np.ndarray
    y: np.ndarray
    batch: int

    @property
    def steps(self) -> int:
        """Steps per epoch."""
        return -(-len(self.x) // self.batch)


@dataclass
class Timing:
    """Per kind of fit: whole fit, epoch 1, and per step of epochs 2.. (CPU seconds)."""

    fit: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    first: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    step: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})


def models(quick: bool) -> list[Model]:
    """The benchmark's MLP and CNN on digits, and zoo models on their data tiled 4 times."""
    from gradscope.zoo import ZOO

    if quick:
        entry = ZOO["tabular_mlp"]
        x, y = entry.train_data()
        return [Model("tabular_mlp", entry.build, x[:160], y[:160], entry.batch_size)]
    x, y = load_data(1797)
    out = [
        Model("mlp (10x256)", build_mlp, x, y, 32),
        Model("cnn", build_cnn, x.reshape(-1, 8, 8, 1), y, 32),
    ]
    for name in ZOO_MODELS:
        entry = ZOO[name]
        x, y = entry.train_data()
        out.append(
            Model(
                name,
                entry.build,
                np.concatenate([x] * 4),
                np.concatenate([y] * 4),
                entry.batch_size,
            )
        )
    return out


def timed_fit(model: Model, kind: str, epochs: int, root: Path) -> tuple[float, float, float]:
    """Fits a fresh model once; returns CPU seconds of the fit, of epoch 1, per later step."""
    from gradscope import GradScope
    from gradscope.collect import dispatch

    dispatch.SHARED_UP_TO_STEPS = 10**9 if kind == "shared" else 0
    clock = EpochClock()
    net = model.build()
    callbacks: list[Any] = [clock.callback]
    if kind != "plain":
        callbacks.insert(0, GradScope(tempfile.mkdtemp(dir=root), tensorboard=False, verbose=0))
    start = time.process_time()
    net.fit(model.x, model.y, batch_size=model.batch, epochs=epochs, verbose=0, callbacks=callbacks)
    end = time.process_time()
    first, last = clock.marks[0][1], clock.marks[-1][1]
    return end - start, first - start, (last - first) / (model.steps * (epochs - 1))


def measure(model: Model, rounds: int, epochs: int, root: Path) -> Timing:
    """Alternating rounds of the three kinds of first fit."""
    timing = Timing()
    for i in range(rounds):
        order = KINDS if i % 2 == 0 else KINDS[::-1]
        for kind in order:
            fit, first, step = timed_fit(model, kind, epochs, root)
            timing.fit[kind].append(fit)
            timing.first[kind].append(first)
            timing.step[kind].append(step)
    return timing


def row(model: Model, timing: Timing, epochs: int) -> list[object]:
    """One table row: medians, the trade's two sides and its break-even."""
    med = {
        k: {kind: statistics.median(v[kind]) for kind in KINDS}
        for k, v in (("fit", timing.fit), ("first", timing.first), ("step", timing.step))
    }
    saved = med["first"]["two"] - med["first"]["shared"]
    per_step = med["step"]["shared"] - med["step"]["two"]
    even = f"{saved / per_step:.0f}" if per_step > 0 and saved > 0 else "—"
    return [
        model.name,
        model.steps * epochs,
        f"{med['fit']['plain']:.2f}",
        f"{med['fit']['two']:.2f}",
        f"{med['fit']['shared']:.2f}",
        fmt_ratio(med["fit"]["two"], med["fit"]["plain"]),
        fmt_ratio(med["fit"]["shared"], med["fit"]["plain"]),
        f"{saved:+.2f}",
        f"{1000 * med['step']['plain']:.2f}",
        f"{1000 * per_step:+.2f}",
        even,
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one model, one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per model (default 3)")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    args = parser.parse_args(argv)
    from gradscope.collect import dispatch

    bound = dispatch.SHARED_UP_TO_STEPS
    rounds, epochs = (1, 2) if args.quick else (args.rounds, 3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gradscope-first-fit-") as tmp, LoadMeter() as meter:
        try:
            for model in models(args.quick):
                rows.append(row(model, measure(model, rounds, epochs, Path(tmp)), epochs))
                print(f"done {model.name}", file=sys.stderr, flush=True)
        finally:
            dispatch.SHARED_UP_TO_STEPS = bound
    assert meter.window is not None
    headers = [
        "model",
        "steps",
        "plain fit s",
        "two functions s",
        "shared s",
        "two: ratio",
        "shared: ratio",
        "trace saved s (T)",
        "plain step ms",
        "shared step +ms (c)",
        "break-even steps (T/c)",
    ]
    text = "\n".join(
        [
            header("A short first fit: one shared function against two", argv),
            f"date: {dt.date.today().isoformat()}",
            f"settings: first fits of {epochs} epochs, fresh models, {rounds} alternating rounds, "
            f"CPU seconds (medians); SHARED_UP_TO_STEPS = {bound}",
            f"load during the run: {meter.window.describe()}",
            "",
            markdown_table(headers, rows),
            "",
        ]
    )
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
