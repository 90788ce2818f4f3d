"""Test configuration: quiet TensorFlow, two logical CPUs for tf.distribute tests, seeds."""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

import keras
import pytest
import tensorflow as tf

# Two logical CPU devices so MirroredStrategy can be tested without a GPU; this must happen before
# TensorFlow initializes its devices, hence at import time of the test session.
_cpus = tf.config.list_physical_devices("CPU")
with contextlib.suppress(RuntimeError):  # devices already initialized by another plugin
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(1234)


@pytest.fixture(scope="session")
def readme_tour(tmp_path_factory: pytest.TempPathFactory):
    """README's runnable tour, run once: (working directory, steps). Starts with the demo."""
    from readme_tour import run_tour

    cwd = tmp_path_factory.mktemp("tour")
    return cwd, run_tour(cwd)
