"""A custom training loop recorded with gradscope.Scope (digits, small MLP).

Run: python examples/custom_loop.py [--out runs/custom_loop] [--quick]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from _common import parse_args, write_report  # examples/_common.py

from gradscope import Scope, load_run
from gradscope.demo import load_digits_data


def main(out: Path, epochs: int) -> Path:
    keras.utils.set_random_seed(0)
    x, y = load_digits_data()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(10),
        ]
    )
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2000, seed=0).batch(32)
    shutil.rmtree(out, ignore_errors=True)

    with Scope(model, out, freq=5, optimizer=optimizer) as scope:

        @tf.function
        def train_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_fn(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            scope.record_gradients(grads, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        for epoch in range(epochs):
            for xb, yb in dataset:
                scope.step_end(loss=train_step(xb, yb), epoch=epoch)
            accuracy = float(np.mean(np.argmax(model(x), axis=1) == y))
            scope.epoch_end(epoch, {"accuracy": accuracy})
            print(f"epoch {epoch}: accuracy {accuracy:.3f}")

    run = load_run(scope.run_dir)
    print(
        f"{len(run.records)} records in {scope.run_dir}; first layer grad norm at the end: "
        f"{run.series('grad_norm', run.layer_names[0])[1][-1]:.3e}"
    )
    return out


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/custom_loop", "one epoch only")
    main(out, epochs=1 if quick else 5)
    write_report(out, title=__doc__.splitlines()[0])
