"""Experiment 4 — Batch Normalization before vs after the activation.

The chapter's deep sigmoid net, then the same net with BatchNormalization after each Dense
layer's activation, and before it (Dense(use_bias=False) -> BN -> Activation, as Géron
recommends). GradScope shows how BN restores gradient flow to the early layers.

Run: python examples/batch_norm.py [--out runs/batch_norm] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import first_last_ratio, load_digits_data
from gradscope.render.fmt import grad_ratio


def build(variant: str, depth: int = 10) -> keras.Model:
    layers: list = [keras.Input((64,))]
    for _ in range(depth):
        if variant == "none":
            layers.append(keras.layers.Dense(64, activation="sigmoid"))
        elif variant == "after":
            layers += [
                keras.layers.Dense(64, activation="sigmoid"),
                keras.layers.BatchNormalization(),
            ]
        else:  # before the activation: the bias is redundant with BN's beta
            layers += [
                keras.layers.Dense(64, use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.Activation("sigmoid"),
            ]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def main(out: Path, epochs: int) -> dict[str, float]:
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    ratios = {}
    print(f"{'BN':<8} {'first/last gradient ratio':>34} {'accuracy':>9}")
    for variant in ("none", "after", "before"):
        keras.utils.set_random_seed(0)
        model = build(variant)
        model.compile(
            keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        hist = model.fit(
            x,
            y,
            batch_size=32,
            epochs=epochs,
            verbose=0,
            callbacks=[scope := GradScope(out / variant, freq=5, verbose=0)],
        )
        # gradscope's one first/last ratio: per-weight gradient RMS, kernel layers (BN excluded)
        ratios[variant] = first_last_ratio(load_run(scope.run_dir))
        text = grad_ratio(ratios[variant])
        print(f"{variant:<8} {text:>34} {hist.history['accuracy'][-1]:>9.2f}")
    return ratios


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/batch_norm", "one epoch only")
    main(out, epochs=1 if quick else 5)
    write_report(out, title=__doc__.splitlines()[0])
