"""Experiment 7 — optimizers and learning-rate schedules: update ratios over time.

The same ReLU MLP trained with each of the chapter's optimizers and schedules; GradScope records
the update ratio ‖Δw‖/‖w‖ of every layer (CS231n's rule of thumb: around 1e-3 is healthy, much
lower is too slow, much higher unstable). The table shows the median ratio over the run and at
its end, with the final accuracy.

Run: python examples/optimizers.py [--out runs/optimizers] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import healthy_model, load_digits_data


def optimizers(steps: int) -> dict[str, keras.optimizers.Optimizer]:
    exp = keras.optimizers.schedules.ExponentialDecay(
        0.05, decay_steps=max(steps // 4, 1), decay_rate=0.3
    )
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps // 2, 3 * steps // 4], [0.05, 0.01, 0.002]
    )
    # 1cycle: warm up linearly to the peak, then anneal (Smith 2018), as a cosine schedule.
    one_cycle = keras.optimizers.schedules.CosineDecay(
        0.005, decay_steps=max(steps // 2, 1), warmup_target=0.1, warmup_steps=max(steps // 2, 1)
    )
    return {
        "sgd": keras.optimizers.SGD(0.01),
        "momentum": keras.optimizers.SGD(0.01, momentum=0.9),
        "nesterov": keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        "rmsprop": keras.optimizers.RMSprop(0.001),
        "adam": keras.optimizers.Adam(0.001),
        "nadam": keras.optimizers.Nadam(0.001),
        "sgd+exponential": keras.optimizers.SGD(exp),
        "sgd+piecewise": keras.optimizers.SGD(piecewise),
        "sgd+1cycle": keras.optimizers.SGD(one_cycle, momentum=0.9),
    }


def main(out: Path, epochs: int, names: tuple[str, ...] | None = None) -> dict[str, float]:
    x, y = load_digits_data()
    steps = epochs * int(np.ceil(len(x) / 64))
    shutil.rmtree(out, ignore_errors=True)
    medians = {}
    print(f"{'optimizer':<16} {'median update ratio':>20} {'at the end':>11} {'accuracy':>9}")
    for name, opt in optimizers(steps).items():
        if names is not None and name not in names:
            continue
        keras.utils.set_random_seed(0)
        model = healthy_model(depth=4)
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
        hist = model.fit(
            x,
            y,
            batch_size=64,
            epochs=epochs,
            verbose=0,
            callbacks=[scope := GradScope(out / name.replace("+", "_"), freq=5, verbose=0)],
        )
        run = load_run(scope.run_dir)
        per_step = np.nanmedian(
            np.stack(
                [run.series("update_ratio", n)[1] for n in run.layer_names if run.layer(n).watched]
            ),
            axis=0,
        )
        medians[name] = float(np.median(per_step))
        print(
            f"{name:<16} {medians[name]:>20.1e} {per_step[-1]:>11.1e} "
            f"{hist.history['accuracy'][-1]:>9.2f}"
        )
    return medians


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/optimizers", "one epoch, three optimizers")
    chosen = ("sgd", "adam", "sgd+1cycle") if quick else None
    main(out, epochs=1 if quick else 5, names=chosen)
    write_report(out, title=__doc__.splitlines()[0])
