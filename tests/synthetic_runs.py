"""Builds run directories with known statistics through RunWriter, for detector unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from gradscope.data import EpochRecord, LayerInfo, RunMeta, RunWriter, StepRecord, load_run
from gradscope.data.store import Run

StatsFn = Callable[[int], dict[str, dict[str, float]]]


def dense(
    name: str, params: int = 100, kind: str | None = "relu", trainable: bool = True
) -> LayerInfo:
    return LayerInfo(
        name=name,
        class_name="Dense",
        activation=kind,
        activation_kind=kind,
        kernel_initializer="HeNormal",
        units=10,
        params=params,
        trainable=trainable,
        watched=trainable,
        variables=("kernel", "bias") if trainable else (),
    )


def make_run(
    path: Path,
    layers: Sequence[LayerInfo],
    stats: StatsFn,
    steps: int = 40,
    loss: Callable[[int], float] = lambda s: 2.0,
    epochs: Sequence[dict[str, float]] = (),
) -> Run:
    writer = RunWriter(path, RunMeta(layers=tuple(layers)))
    for step in range(steps):
        writer.append(StepRecord(step=step, epoch=0, loss=loss(step), lr=0.01, layers=stats(step)))
    for i, logs in enumerate(epochs):
        writer.append_epoch(
            EpochRecord(epoch=i, step=(i + 1) * steps // max(1, len(epochs)), logs=logs)
        )
    writer.close()
    return load_run(path)


def uniform_stats(names: Sequence[str], **values: float) -> StatsFn:
    """Same statistics for every layer and step."""
    return lambda step: {n: dict(values) for n in names}


def sigmoid_run(path: Path) -> Run:
    """The sick all-sigmoid shape: no ReLU layer, no hidden saturation, a confident output."""
    layers = [dense(f"s{i}", kind="sigmoid") for i in range(3)] + [dense("out", kind="sigmoid")]
    return make_run(
        path,
        layers,
        lambda s: {
            **{f"s{i}": {"grad_norm": 10.0 ** (i - 6), "sat_frac": 0.0} for i in range(3)},
            "out": {"grad_norm": 0.5, "sat_frac": 0.97},
        },
        steps=12,
    )


def relu_run(path: Path, dead: float = 0.3) -> Run:
    """ReLU hidden layers with some dead units and a confident (97 % saturated) output."""
    layers = [dense("h1"), dense("h2"), dense("out", kind="sigmoid")]
    return make_run(
        path,
        layers,
        lambda s: {
            "h1": {"grad_norm": 0.2, "dead_frac": dead},
            "h2": {"grad_norm": 0.3, "dead_frac": 0.0},
            "out": {"grad_norm": 0.4, "sat_frac": 0.97},
        },
        steps=12,
    )
