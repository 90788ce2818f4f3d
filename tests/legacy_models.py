"""Writes a Keras 2.2-era HDF5 model file by hand (as TF1-era Keras saved them)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np


def _vs(scale: float, mode: str) -> dict:
    return {
        "class_name": "VarianceScaling",
        "config": {"scale": scale, "mode": mode, "distribution": "uniform", "seed": None},
    }


def write_keras22_h5(
    path: Path, depth: int = 6, width: int = 16, act: str = "relu", seed: int = 0
) -> Path:
    """Sequential MLP 8 -> width x depth -> 3 softmax; glorot_uniform as VarianceScaling(1, avg)."""
    rng = np.random.default_rng(seed)
    layers = []
    shapes = []
    fan_in = 8
    for i in range(depth + 1):
        last = i == depth
        units = 3 if last else width
        cfg = {
            "name": f"dense_{i + 1}",
            "trainable": True,
            "units": units,
            "activation": "softmax" if last else act,
            "use_bias": True,
            "kernel_initializer": _vs(1.0, "fan_avg"),
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        }
        if i == 0:
            cfg["batch_input_shape"] = [None, 8]
            cfg["dtype"] = "float32"
        layers.append({"class_name": "Dense", "config": cfg})
        shapes.append((fan_in, units))
        fan_in = units
    model_config = {"class_name": "Sequential", "config": layers}  # Keras <= 2.2: a bare list
    training_config = {
        "optimizer_config": {
            "class_name": "SGD",
            "config": {"lr": 0.01, "momentum": 0.0, "decay": 0.0, "nesterov": False},
        },
        "loss": "categorical_crossentropy",
        "metrics": ["accuracy"],
        "sample_weight_mode": None,
        "loss_weights": None,
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode()
        f.attrs["training_config"] = json.dumps(training_config).encode()
        weights = f.create_group("model_weights")
        names = [f"dense_{i + 1}" for i in range(depth + 1)]
        weights.attrs["layer_names"] = [n.encode() for n in names]
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.2.4"
        for name, (n_in, n_out) in zip(names, shapes, strict=True):
            g = weights.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            inner = g.create_group(name)
            limit = np.sqrt(6.0 / (n_in + n_out))
            inner["kernel:0"] = rng.uniform(-limit, limit, (n_in, n_out)).astype("float32")
            inner["bias:0"] = np.zeros(n_out, "float32")
    return path
