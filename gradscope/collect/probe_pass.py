"""``probe_data``: activation statistics from a fixed batch, in inference mode, on recorded steps.

Without ``probe_data`` GradScope measures activations on the training batch inside the train
step; with it, a separate forward pass on the same examples every time makes the numbers
comparable from step to step (no batch-to-batch noise, no dropout).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gradscope.collect.hooks import Hooks

#: Examples of ``probe_data`` used for activation statistics.
PROBE_EXAMPLES = 256


def probe_inputs(probe_data: Any) -> Any:
    """The first :data:`PROBE_EXAMPLES` inputs of ``probe_data``, as tensors.

    Args:
        probe_data: None, an array (or nested structure of arrays), a tuple ``(x, y)`` or a
            ``tf.data.Dataset`` of batches.

    Returns:
        The inputs (nested like ``x``), or None without ``probe_data``.

    Example:
        >>> probe_inputs((np.zeros((300, 4)), np.zeros(300))).shape
        TensorShape([256, 4])
    """
    if probe_data is None:
        return None
    x = probe_data[0] if isinstance(probe_data, tuple) else probe_data
    if isinstance(x, tf.data.Dataset):
        x = next(iter(x.unbatch().batch(PROBE_EXAMPLES)))
        x = x[0] if isinstance(x, tuple) else x
    return tf.nest.map_structure(lambda a: tf.convert_to_tensor(np.asarray(a)[:PROBE_EXAMPLES]), x)


def make_probe(model: keras.Model, hooks: Hooks) -> Any:
    """A compiled forward pass that records activations of ``step`` through ``hooks``.

    Args:
        model: the model being recorded.
        hooks: the installed hooks (their layer wrappers record the activations).

    Returns:
        ``probe(x, step)``, a ``tf.function``.

    Example:
        >>> probe = make_probe(model, hooks)  # doctest: +SKIP
        >>> probe(inputs, tf.constant(10, tf.int64))  # doctest: +SKIP
    """

    @tf.function
    def probe(x: Any, step: tf.Tensor) -> tf.Tensor:
        hooks.activations_on = True
        pending = hooks.collect_activations()
        try:
            model(x, training=False)
            hooks.recorder.record_activations(pending, step)
        finally:
            hooks.activations_on = False
            hooks.collect_activations(stop=True)
        return step

    return probe
