"""Experiment 3 — activations: dead and saturated fractions, and training speed.

The same 6-layer MLP with each of the chapter's activations (init matched to the activation),
trained briefly on digits with GradScope. Dead = ReLU-family units silent for a whole batch;
saturated = sigmoid/tanh outputs in the flat tails.

Run: python examples/activations.py [--out runs/activations] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import load_digits_data

# name -> (activation layer factory, matching initializer)
ACTIVATIONS = {
    "sigmoid": (lambda: keras.layers.Activation("sigmoid"), "glorot_uniform"),
    "tanh": (lambda: keras.layers.Activation("tanh"), "glorot_uniform"),
    "relu": (lambda: keras.layers.ReLU(), "he_normal"),
    "leaky_relu(0.2)": (lambda: keras.layers.LeakyReLU(negative_slope=0.2), "he_normal"),
    "prelu": (lambda: keras.layers.PReLU(), "he_normal"),
    "elu": (lambda: keras.layers.ELU(), "he_normal"),
    "selu": (lambda: keras.layers.Activation("selu"), "lecun_normal"),
}


def build(factory, init: str, depth: int = 6) -> keras.Model:
    layers: list = [keras.Input((64,))]
    for _ in range(depth):
        layers += [keras.layers.Dense(64, kernel_initializer=init), factory()]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def _mean_stat(run, stat: str) -> float:
    values = [
        np.nanmean(run.series(stat, info.name)[1])
        for info in run.layers
        if info.class_name != "Dense" and len(run.series(stat, info.name)[1])
    ]
    return float(np.mean(values)) if values else float("nan")


def main(out: Path, epochs: int, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    results = {}
    print(f"{'activation':<16} {'dead %':>7} {'saturated %':>12} {'accuracy':>9}")
    for name in names:
        factory, init = ACTIVATIONS[name]
        keras.utils.set_random_seed(0)
        model = build(factory, init)
        model.compile(
            keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        run_dir = out / name.split("(")[0]
        hist = model.fit(
            x,
            y,
            batch_size=64,
            epochs=epochs,
            verbose=0,
            callbacks=[scope := GradScope(run_dir, freq=5, verbose=0)],
        )
        run = load_run(scope.run_dir)
        dead, sat = _mean_stat(run, "dead_frac"), _mean_stat(run, "sat_frac")
        acc = hist.history["accuracy"][-1]
        results[name] = {"dead": dead, "saturated": sat, "accuracy": acc}
        print(f"{name:<16} {100 * dead:>7.1f} {100 * sat:>12.1f} {acc:>9.2f}")
    return results


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/activations", "one epoch, three activations")
    chosen = ("sigmoid", "relu", "selu") if quick else tuple(ACTIVATIONS)
    main(out, epochs=1 if quick else 5, names=chosen)
    write_report(out, title=__doc__.splitlines()[0])
