"""Experiment 5 — gradient clipping: clipvalue vs clipnorm on an exploding setup.

An 8-layer ReLU net initialized with N(0, 0.3²) — 1.7x He's standard deviation, so the signal
grows layer after layer — trained with SGD(0.1). Without clipping the loss turns NaN within the
first epoch (GradScope's nonfinite finding); with clipvalue or clipnorm it trains. Compare the
largest update ratio ‖Δw‖/‖w‖ and the final loss.

Run: python examples/gradient_clipping.py [--out runs/clipping] [--quick]
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import keras
import numpy as np
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import load_digits_data

VARIANTS = {"none": {}, "clipvalue=1.0": {"clipvalue": 1.0}, "clipnorm=1.0": {"clipnorm": 1.0}}


def build(depth: int = 8) -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=0.3)
    layers: list = [keras.Input((64,))]
    layers += [
        keras.layers.Dense(64, activation="relu", kernel_initializer=init) for _ in range(depth)
    ]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main(out: Path, epochs: int) -> dict[str, float]:
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    final = {}
    print(f"{'clipping':<14} {'max update ratio':>17} {'final loss':>11}")
    for name, kwargs in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(keras.optimizers.SGD(0.1, **kwargs), "sparse_categorical_crossentropy")
        run_dir = out / name.split("=")[0]
        hist = model.fit(
            x,
            y,
            batch_size=32,
            epochs=epochs,
            verbose=0,
            callbacks=[scope := GradScope(run_dir, freq=5, verbose=0)],
        )
        run = load_run(scope.run_dir)
        ratios = [np.nanmax(run.series("update_ratio", n)[1]) for n in run.layer_names]
        loss = hist.history["loss"][-1]
        final[name] = loss
        shown = f"{loss:.3f}" if math.isfinite(loss) else "diverged"
        print(f"{name:<14} {max(ratios):>17.2e} {shown:>11}")
    return final


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/clipping", "one epoch only")
    main(out, epochs=1 if quick else 5)
    write_report(out, title=__doc__.splitlines()[0])
