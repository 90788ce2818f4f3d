"""Experiment 1 — vanishing gradients: a 10-layer sigmoid net, gradient norm by depth.

The chapter's numpy demonstration, reproduced in Keras and measured by GradScope: the gradient
that reaches each layer shrinks on the way back to the input.

Run: python examples/vanishing_gradients.py [--out runs/vanishing] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import first_last_ratio, load_digits_data, median_grad_norms, sick_model
from gradscope.render.fmt import grad_ratio


def main(out: Path, epochs: int) -> dict[str, float]:
    keras.utils.set_random_seed(0)
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    model = sick_model()
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=epochs,
        verbose=0,
        callbacks=[scope := GradScope(out / "sigmoid", freq=5, verbose=0)],
    )
    norms = median_grad_norms(load_run(scope.run_dir))
    last = norms["output"]
    print(f"{'layer':<10} {'median |grad|':>14} {'vs output':>10}")
    for name, value in norms.items():
        print(f"{name:<10} {value:>14.2e} {value / last:>10.1e}")
    # The depth profile above is of norms; the ratio gradscope reports everywhere is per weight.
    ratio = grad_ratio(first_last_ratio(load_run(scope.run_dir)))
    print(f"First/last gradient ratio (per weight, as gradscope reports it): {ratio}.")
    return norms


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/vanishing", "one epoch only")
    main(out, epochs=1 if quick else 10)
    write_report(out, title=__doc__.splitlines()[0])
