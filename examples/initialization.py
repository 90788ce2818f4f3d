"""Experiment 2 — initialization: naive N(0,1) vs Glorot vs He vs LeCun for ReLU, tanh and SELU.

For each activation and initializer, a 10-layer MLP trains briefly on digits with GradScope; the
table shows the gradient spread (largest / smallest median layer gradient norm; 1 is perfectly
balanced) and the final training accuracy. The chapter's pairing — Glorot for tanh/sigmoid, He for
ReLU, LeCun for SELU — should keep the spread small.

Run: python examples/initialization.py [--out runs/initialization] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import load_digits_data, median_grad_norms

INITIALIZERS = {
    "naive N(0,1)": keras.initializers.RandomNormal(stddev=1.0),
    "glorot_uniform": "glorot_uniform",
    "he_normal": "he_normal",
    "lecun_normal": "lecun_normal",
}


def build(activation: str, init: object, depth: int = 10) -> keras.Model:
    layers = [keras.Input((64,))]
    layers += [
        keras.layers.Dense(64, activation=activation, kernel_initializer=init) for _ in range(depth)
    ]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main(
    out: Path,
    epochs: int,
    activations: tuple[str, ...],
    initializers: tuple[str, ...] = tuple(INITIALIZERS),
) -> dict[tuple[str, str], float]:
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    spreads = {}
    print(f"{'activation':<8} {'initializer':<15} {'grad spread':>12} {'accuracy':>9}")
    for activation in activations:
        for name in initializers:
            init = INITIALIZERS[name]
            keras.utils.set_random_seed(0)
            model = build(activation, init)
            model.compile(
                keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            run_dir = out / f"{activation}-{name.split()[0]}"
            hist = model.fit(
                x,
                y,
                batch_size=64,
                epochs=epochs,
                verbose=0,
                callbacks=[scope := GradScope(run_dir, freq=5, verbose=0)],
            )
            norms = list(median_grad_norms(load_run(scope.run_dir)).values())
            spread = max(norms) / max(min(norms), 1e-30)
            spreads[(activation, name)] = spread
            acc = hist.history["accuracy"][-1]
            print(f"{activation:<8} {name:<15} {spread:>12.1e} {acc:>9.2f}")
    return spreads


if __name__ == "__main__":
    out, quick = parse_args(
        __doc__, "runs/initialization", "one epoch, ReLU only, without LeCun (SELU's pairing)"
    )
    acts = ("relu",) if quick else ("relu", "tanh", "selu")
    inits = tuple(INITIALIZERS)[:3] if quick else tuple(INITIALIZERS)
    main(out, epochs=1 if quick else 5, activations=acts, initializers=inits)
    write_report(out, title=__doc__.splitlines()[0])
