"""Experiment 6 — transfer learning: reused layers frozen, then unfrozen.

Model A learns digits 0–4. Model B reuses A's hidden layers for digits 5–9: first frozen (only
the new head trains), then unfrozen with a lower learning rate, as in the chapter. GradScope
lists frozen layers as frozen — they get no gradient by design, which is not "vanishing".

Run: python examples/transfer_learning.py [--out runs/transfer] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import load_digits_data


def main(out: Path, epochs: int) -> dict[str, list[str]]:
    keras.utils.set_random_seed(0)
    x, y = load_digits_data()
    a_mask, b_mask = y < 5, y >= 5
    shutil.rmtree(out, ignore_errors=True)
    model_a = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                64, activation="relu", kernel_initializer="he_normal", name="reused_1"
            ),
            keras.layers.Dense(
                64, activation="relu", kernel_initializer="he_normal", name="reused_2"
            ),
            keras.layers.Dense(5, activation="softmax", name="head_a"),
        ]
    )
    model_a.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model_a.fit(x[a_mask], y[a_mask], epochs=epochs, verbose=0)

    # Clone so that training B never changes A (the chapter's warning).
    reused = keras.models.clone_model(model_a)
    reused.set_weights(model_a.get_weights())
    model_b = keras.Sequential(
        [*reused.layers[:-1], keras.layers.Dense(5, activation="softmax", name="head_b")]
    )
    for layer in model_b.layers[:-1]:
        layer.trainable = False
    model_b.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model_b.fit(
        x[b_mask],
        y[b_mask] - 5,
        epochs=epochs,
        verbose=0,
        callbacks=[frozen_scope := GradScope(out / "frozen", freq=5)],
    )
    for layer in model_b.layers[:-1]:
        layer.trainable = True
    model_b.compile(
        keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    hist = model_b.fit(
        x[b_mask],
        y[b_mask] - 5,
        epochs=epochs,
        verbose=0,
        callbacks=[unfrozen_scope := GradScope(out / "unfrozen", freq=5)],
    )
    frozen = [i.name for i in load_run(frozen_scope.run_dir).layers if not i.trainable]
    watched = [i.name for i in load_run(unfrozen_scope.run_dir).layers if i.watched]
    print(f"frozen phase: frozen layers {frozen}; unfrozen phase watches {watched}")
    print(f"model B accuracy on 5–9 after fine-tuning: {hist.history['accuracy'][-1]:.2f}")
    return {"frozen": frozen, "watched": watched}


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/transfer", "one epoch per phase")
    main(out, epochs=1 if quick else 5)
    write_report(out, title=__doc__.splitlines()[0])
