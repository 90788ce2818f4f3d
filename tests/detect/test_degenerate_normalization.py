"""Normalization over a single element (issue 15, item 6a).

A LayerNormalization over an axis of size 1 subtracts each value from itself: its output is its
offset beta whatever the input, so every gradient before it is exactly zero (the keras-io
time-series transformer does not learn under Keras 3 for this reason). The model description
records each layer's input shape and how many elements a per-example normalization reduces over.
"""

from __future__ import annotations

import keras
import pytest

from gradscope.model.extract import spec_from_model
from gradscope.model.shapes import normalized_size, stored_input_shape


@pytest.mark.parametrize(
    ("class_name", "config", "shape", "expected"),
    [
        ("LayerNormalization", {"axis": -1}, (500, 1), 1),
        ("LayerNormalization", {"axis": [-1]}, (500, 16), 16),
        ("LayerNormalization", {"axis": [1, 2]}, (500, 1), 500),
        ("LayerNormalization", {}, (7, 1), 1),  # Keras's default axis=-1
        ("RMSNormalization", {"axis": -1}, (10, 1), 1),
        ("UnitNormalization", {"axis": 2}, (10, 1), 1),
        ("GroupNormalization", {"groups": -1}, (64,), 1),  # instance norm of a Dense output
        ("GroupNormalization", {"groups": 64, "axis": -1}, (64,), 1),
        ("GroupNormalization", {"groups": 8}, (64,), 8),
        ("GroupNormalization", {"groups": -1}, (28, 28, 3), 784),  # spatial axes count
        ("LayerNormalization", {"axis": -1}, (500, None), None),  # unknown size
        ("LayerNormalization", {"axis": 0}, (500, 1), None),  # the batch axis: not per example
        ("LayerNormalization", {"axis": -1}, None, None),
        ("BatchNormalization", {"axis": -1}, (500, 1), None),  # normalizes over the batch
        ("GroupNormalization", {"groups": 5}, (64,), None),  # Keras refuses 64 % 5
    ],
)
def test_normalized_size(class_name, config, shape, expected) -> None:
    assert normalized_size(class_name, config, shape) == expected


def test_stored_input_shape_reads_build_config_then_the_first_call() -> None:
    assert stored_input_shape({"build_config": {"input_shape": [None, 500, 1]}}) == (500, 1)
    call = {"class_name": "__keras_tensor__", "config": {"shape": [None, 8]}}
    assert stored_input_shape({"inbound_nodes": [{"args": [call]}]}) == (8,)
    assert stored_input_shape({"inbound_nodes": [{"args": (call,)}]}) == (8,)
    assert stored_input_shape({"build_config": {"input_shape": [[None, 2], [None, 3]]}}) is None
    assert stored_input_shape({"inbound_nodes": [[["dense", 0, 0, {}]]]}) is None  # Keras 2
    assert stored_input_shape({}) is None


def test_spec_records_input_shapes_and_normalized_sizes() -> None:
    inputs = keras.Input((16, 1))
    x = keras.layers.Dense(1, name="to_one")(inputs)
    ln = keras.layers.LayerNormalization(name="ln")(x)
    unit = keras.layers.UnitNormalization(name="unit")(x)
    wide = keras.layers.LayerNormalization(name="wide")(keras.layers.Dense(16)(x))
    merged = keras.layers.Concatenate()([ln, unit, wide])
    model = keras.Model(inputs, keras.layers.Dense(1)(merged))
    layers = {x.name: x for x in spec_from_model(model).layers}
    assert layers["to_one"].input_shape == (16, 1)
    assert layers["ln"].input_shape == (16, 1) and layers["ln"].normalized_size == 1
    assert layers["unit"].normalized_size == 1  # no build_config: read from its call
    assert layers["wide"].normalized_size == 16
    assert layers["to_one"].normalized_size is None
    assert layers["concatenate"].input_shape is None  # several inputs
