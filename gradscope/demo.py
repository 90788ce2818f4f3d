"""The chapter's story on scikit-learn's bundled digits.

A deep sigmoid net whose early layers barely get a gradient, next to the same net with He
initialization and ReLU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from rich.console import Console
from rich.table import Table

from gradscope.collect.callback import GradScope
from gradscope.data.store import Run, load_run

#: Depth of the chapter's deep stack of dense layers.
DEPTH = 10
WIDTH = 64


def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """Returns scikit-learn's bundled 8×8 digits, standardized per feature (no download).

    Returns:
        ``(x, y)``: float32 inputs of shape (1797, 64) with zero mean and unit variance per
        feature (constant pixels stay 0), and int32 labels 0–9.

    Example:
        >>> x, y = load_digits_data()
        >>> x.shape, int(y.max())
        ((1797, 64), 9)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype("float32")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x.astype("float32"), digits.target.astype("int32")


def sick_model(depth: int = DEPTH, width: int = WIDTH) -> keras.Model:
    """The chapter's sick network: a deep sigmoid MLP as naively written in Keras.

    Keras's default Glorot-uniform init assumes a unit derivative; sigmoid's is at most 0.25 and
    its outputs are not zero-centred, so each layer shrinks the backward signal (measured on
    digits at init: first-layer gradient ~1e-6 of the output layer's).

    Args:
        depth: number of hidden Dense layers.
        width: units per hidden layer.

    Returns:
        An uncompiled Sequential model for 64 inputs and 10 classes.

    Example:
        >>> len(sick_model(depth=3).layers)
        4
    """
    layers: list[keras.layers.Layer] = [keras.Input((64,))]
    for i in range(depth):
        layers.append(keras.layers.Dense(width, activation="sigmoid", name=f"hidden_{i + 1}"))
    layers.append(keras.layers.Dense(10, activation="softmax", name="output"))
    return keras.Sequential(layers, name="deep_sigmoid")


def healthy_model(depth: int = DEPTH, width: int = WIDTH) -> keras.Model:
    """The same depth with the chapter's cure: ReLU with He initialization.

    Args:
        depth: number of hidden Dense layers.
        width: units per hidden layer.

    Returns:
        An uncompiled Sequential model for 64 inputs and 10 classes.

    Example:
        >>> healthy_model(depth=2).layers[0].activation.__name__
        'relu'
    """
    layers: list[keras.layers.Layer] = [keras.Input((64,))]
    for i in range(depth):
        layers.append(
            keras.layers.Dense(
                width, activation="relu", kernel_initializer="he_normal", name=f"hidden_{i + 1}"
            )
        )
    layers.append(keras.layers.Dense(10, activation="softmax", name="output"))
    return keras.Sequential(layers, name="deep_relu_he")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo's runs went and how they trained.

    Attributes:
        sick_run: run directory of the deep sigmoid network.
        healthy_run: run directory of the He + ReLU network.
        sick_accuracy: final training accuracy of the sick network.
        healthy_accuracy: final training accuracy of the healthy network.
    """

    sick_run: Path
    healthy_run: Path
    sick_accuracy: float
    healthy_accuracy: float


def _train(model: keras.Model, x: np.ndarray, y: np.ndarray, run_dir: Path, epochs: int) -> float:
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(
        x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[GradScope(run_dir, freq=5)]
    )
    return float(history.history["accuracy"][-1])


def median_grad_norms(run: Run) -> dict[str, float]:
    """Median gradient norm of every watched layer over a run.

    Args:
        run: a loaded run.

    Returns:
        layer name -> median gradient L2 norm, in forward order.

    Example:
        >>> median_grad_norms(load_run("reports/demo/sick"))  # doctest: +SKIP
    """
    out = {}
    for info in run.layers:
        if info.watched:
            _, values = run.series("grad_norm", info.name)
            if len(values):
                out[info.name] = float(np.median(values))
    return out


def run_demo(out: Path, epochs: int = 10, console: Console | None = None) -> DemoResult:
    """Trains the sick and the healthy network with GradScope and prints the comparison.

    Args:
        out: output folder; ``out/sick`` and ``out/healthy`` are replaced.
        epochs: epochs per model.
        console: where to print (a default rich console if None).

    Returns:
        The :class:`DemoResult`.

    Example:
        >>> run_demo(Path("reports/demo"), epochs=2)  # doctest: +SKIP
    """
    console = console or Console()
    keras.utils.set_random_seed(42)
    x, y = load_digits_data()
    dirs = {"sick": out / "sick", "healthy": out / "healthy"}
    for path in dirs.values():
        shutil.rmtree(path, ignore_errors=True)
    with console.status("Training the deep sigmoid network (Keras defaults)..."):
        sick_acc = _train(sick_model(), x, y, dirs["sick"], epochs)
    with console.status("Training the same depth with ReLU + He init..."):
        healthy_acc = _train(healthy_model(), x, y, dirs["healthy"], epochs)
    sick, healthy = (
        median_grad_norms(load_run(dirs["sick"])),
        median_grad_norms(load_run(dirs["healthy"])),
    )
    table = Table(title="Median gradient norm per layer (input → output)")
    table.add_column("layer")
    table.add_column("sigmoid, default init", justify="right")
    table.add_column("ReLU, He init", justify="right")
    for name in sick:
        table.add_row(name, f"{sick[name]:.2e}", f"{healthy.get(name, float('nan')):.2e}")
    console.print(table)
    names = list(sick)
    ratio = sick[names[0]] / sick[names[-1]] if sick[names[-1]] else float("nan")
    console.print(
        f"Deep sigmoid: first/last layer gradient ratio {ratio:.1e}, "
        f"training accuracy {sick_acc:.2f}; ReLU + He: accuracy {healthy_acc:.2f}."
    )
    # soft_wrap: paths and the command must stay copy-pasteable, never wrapped mid-path.
    console.print(f"Runs written to {dirs['sick']} and {dirs['healthy']}.", soft_wrap=True)
    console.print(f"See them in TensorBoard: tensorboard --logdir {out}", soft_wrap=True)
    return DemoResult(dirs["sick"], dirs["healthy"], sick_acc, healthy_acc)
