"""Experiment 9 — tf.distribute.MirroredStrategy on two logical CPU devices.

GradScope inside a distributed fit: gradients are recorded after the all-reduce (the global
batch's gradient), activations from replica 0's share of the batch.

Run: python examples/mirrored_strategy.py [--out runs/mirrored] [--quick]
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import tensorflow as tf

# Two logical CPUs must be configured before TensorFlow initializes its devices. When they are
# already initialized (this file run from a notebook or another program that used TensorFlow),
# the strategy uses the devices there are.
_cpus = tf.config.list_physical_devices("CPU")
with contextlib.suppress(RuntimeError):
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )

import keras  # noqa: E402
from _common import parse_args, write_report  # noqa: E402 (examples/_common.py)

from gradscope import GradScope, load_run  # noqa: E402
from gradscope.demo import healthy_model, load_digits_data  # noqa: E402


def main(out: Path, epochs: int) -> int:
    keras.utils.set_random_seed(0)
    x, y = load_digits_data()
    shutil.rmtree(out, ignore_errors=True)
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")]
    )
    print(f"replicas in sync: {strategy.num_replicas_in_sync}")
    with strategy.scope():
        model = healthy_model(depth=4)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(
        x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=[scope := GradScope(out, freq=5)]
    )
    run = load_run(scope.run_dir)
    first = run.layer_names[0]
    last_norm = run.series("grad_norm", first)[1][-1]
    print(
        f"{len(run.records)} records; {first} grad norm {last_norm:.3e}; "
        f"accuracy {hist.history['accuracy'][-1]:.2f}"
    )
    return strategy.num_replicas_in_sync


if __name__ == "__main__":
    out, quick = parse_args(__doc__, "runs/mirrored", "one epoch only")
    main(out, epochs=1 if quick else 5)
    write_report(out, title=__doc__.splitlines()[0])
