"""Experiment 1 — vanishing gradients: a 10-layer sigmoid net, gradient norm by depth.

The chapter's numpy demonstration, reproduced in Keras and measured by GradScope: the gradient
that reaches each layer shrinks on the way back to the input.

Run: python examples/vanishing_gradients.py [--out runs/vanishing] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
from _common import parse_args, write_report  # examples/_common.py

from gradscope import GradScope, load_run
from gradscope.demo import load_digits_data, median_grad_norms, sick_model


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
    spread = np.log10(last / norms["hidden_1"])
    print(f"The first layer's gradient is {spread:.1f} orders of magnitude below the output's.")
    return norms


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/vanishing", "one epoch only")
    main(out, epochs=1 if quick else 10)
    write_report(out, title=__doc__.splitlines()[0])
