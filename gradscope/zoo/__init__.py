"""A zoo of everyday Keras models on learnable synthetic data, healthy ones and sick twins.

One place for the builders, their data and their ground truth, shared by the tests
(``tests/detect/test_zoo.py``) and ``benchmarks/zoo.py``. The ground truth is set by
construction, not from what gradscope reports: a healthy model learns its data (a held-out
error criterion checked in NumPy, :class:`~gradscope.zoo.scores.Learns`) and should get no
finding at warning or above; a sick twin differs from a healthy model by one fault the chapter
describes and should get that fault's kinds.

Example:
    >>> ZOO["cnn_dropout"].sick, ZOO["deep_sigmoid_mlp"].twin_of
    (False, 'tabular_mlp')
    >>> done = fit_zoo(ZOO["cnn_dropout"], "runs/zoo")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope.zoo import data as zdata
from gradscope.zoo.generative import dense_autoencoder, gan, vae
from gradscope.zoo.scores import Learns
from gradscope.zoo.sequence import (
    bidirectional_gru,
    conv1d_series,
    embedding_lstm,
    transformer_encoder,
)
from gradscope.zoo.tabular import HUGE_INIT, regression_mlp, tabular_mlp
from gradscope.zoo.vision import cnn_dropout, mixed_precision_cnn, resnet_bn, xception_separable

#: Training and held-out examples of every zoo data set.
TRAIN_EXAMPLES = 512
TEST_EXAMPLES = 512


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo, its data and the diagnosis it should get.

    Attributes:
        name: the model id.
        build: returns a fresh compiled model (call after ``keras.utils.set_random_seed``).
        data: ``data(n, seed)`` returns ``(x, y)`` of the model's synthetic data set.
        architecture: one line for tables.
        learns: the "it learned" criterion (checked on held-out data, without gradscope).
        epochs: training epochs of :func:`fit_zoo`.
        batch_size: examples per step.
        expected: kinds a run must report at warning or above (empty for healthy models).
        expected_static: kinds the static rules should report from the architecture alone.
        tolerated: secondary symptoms of the fault that may also be reported (never for
            healthy models).
        twin_of: the healthy model this one is a sick twin of.
    """

    name: str
    build: Callable[[], keras.Model]
    data: Callable[[int, int], tuple[np.ndarray, np.ndarray]]
    architecture: str
    learns: Learns
    epochs: int = 4
    batch_size: int = 32
    expected: frozenset[str] = field(default_factory=frozenset)
    expected_static: frozenset[str] = field(default_factory=frozenset)
    tolerated: frozenset[str] = field(default_factory=frozenset)
    twin_of: str | None = None

    @property
    def sick(self) -> bool:
        """True for a sick twin."""
        return self.twin_of is not None

    def train_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The training set (:data:`TRAIN_EXAMPLES`, seed 0)."""
        return self.data(TRAIN_EXAMPLES, 0)

    def test_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out set (:data:`TEST_EXAMPLES`, seed 1)."""
        return self.data(TEST_EXAMPLES, 1)

    def allowed(self) -> frozenset[str]:
        """Kinds that may be reported at warning or above without being a false alarm."""
        return self.expected | self.expected_static | self.tolerated


def _with_learning_rate(model: keras.Model, learning_rate: float) -> keras.Model:
    model.compile(keras.optimizers.Adam(learning_rate), model.loss, metrics=["accuracy"])
    return model


#: Far above chance (error 0.5-0.75 for these data sets): at most 25% wrong on held-out data.
_CLASSIFIED = Learns("classification_error", at_most=0.25, ratio=0.5)


def _zoo(*models: ZooModel) -> dict[str, ZooModel]:
    return {m.name: m for m in models}


ZOO: dict[str, ZooModel] = _zoo(
    ZooModel(
        "cnn_dropout",
        cnn_dropout,
        zdata.images,
        "Conv2D x2 + MaxPooling + Dropout, Adam",
        _CLASSIFIED,
    ),
    ZooModel(
        "resnet_bn",
        resnet_bn,
        zdata.images,
        "residual CNN: 2 identity blocks with BatchNormalization, Adam",
        _CLASSIFIED,
    ),
    ZooModel(
        "xception_separable",
        xception_separable,
        zdata.images,
        "Xception-style: SeparableConv2D + BN, strided 1x1 shortcut, Adam",
        _CLASSIFIED,
    ),
    ZooModel(
        "mixed_precision_cnn",
        mixed_precision_cnn,
        zdata.images,
        "CNN in mixed_float16, LossScaleOptimizer(Adam)",
        _CLASSIFIED,
    ),
    ZooModel(
        "embedding_lstm",
        embedding_lstm,
        zdata.tokens,
        "Embedding + LSTM, Adam without clipping",
        _CLASSIFIED,
    ),
    ZooModel(
        "bidirectional_gru",
        bidirectional_gru,
        zdata.tokens,
        "Embedding + Bidirectional(GRU) + ReLU head, Adam",
        _CLASSIFIED,
    ),
    ZooModel(
        "transformer_encoder",
        transformer_encoder,
        zdata.tokens,
        "token+position embedding, MultiHeadAttention, LayerNorm, GELU FFN",
        _CLASSIFIED,
    ),
    ZooModel(
        "conv1d_series",
        conv1d_series,
        zdata.series,
        "Conv1D x2 + pooling, time-series classifier, Adam",
        _CLASSIFIED,
    ),
    ZooModel(
        "dense_autoencoder",
        dense_autoencoder,
        zdata.manifold,
        "dense autoencoder 32-16-4-16-32, MSE, Adam",
        Learns("mean_squared_error", ratio=0.5),
    ),
    ZooModel(
        "vae",
        vae,
        zdata.manifold,
        "VAE, custom train_step (reconstruction + KL), Adam",
        Learns("mean_squared_error", ratio=0.6),
        epochs=8,
    ),
    ZooModel(
        "gan",
        gan,
        zdata.gan_points,
        "GAN, custom train_step, two Adam optimizers",
        Learns("gan_mismatch", ratio=0.6),
    ),
    ZooModel(
        "regression_mlp",
        regression_mlp,
        zdata.smooth_regression,
        "3 x Dense(32, ReLU), MSE, SGD(0.01, momentum 0.9)",
        Learns("mean_squared_error", at_most=0.6, ratio=0.6),
    ),
    ZooModel(
        "tabular_mlp",
        tabular_mlp,
        zdata.tabular,
        "6 x Dense(64, ReLU), He, Adam",
        _CLASSIFIED,
    ),
    # Sick twins: one fault each, its kinds by construction (the chapter's causes).
    ZooModel(
        "deep_sigmoid_mlp",
        # The chapter's stack is 256 wide: sigmoid inputs of 256 units with weights of std 1
        # give pre-activations of std ~9, so most units sit beyond |z| = 5 (saturated).
        lambda: tabular_mlp(
            width=256,
            activation="sigmoid",
            init=HUGE_INIT,
            optimizer=keras.optimizers.SGD(0.01),
        ),
        zdata.tabular,
        "6 x Dense(256, sigmoid), RandomNormal(1.0), SGD(0.01)",
        _CLASSIFIED,
        expected=frozenset({"vanishing_gradients", "saturation"}),
        expected_static=frozenset({"deep_saturating_stack", "init_activation_mismatch"}),
        twin_of="tabular_mlp",
    ),
    ZooModel(
        "negative_bias_mlp",
        lambda: tabular_mlp(bias=-5.0),
        zdata.tabular,
        "tabular_mlp with ReLU biases initialized to -5",
        _CLASSIFIED,
        expected=frozenset({"dying_relu"}),
        # Dead units pass no gradient, so the layers below them look vanished too.
        tolerated=frozenset({"vanishing_gradients"}),
        twin_of="tabular_mlp",
    ),
    ZooModel(
        "regression_high_lr",
        lambda: regression_mlp(learning_rate=1.0),
        zdata.smooth_regression,
        "regression_mlp with SGD learning rate 1.0 (100x)",
        Learns("mean_squared_error", at_most=0.6, ratio=0.6),
        expected=frozenset({"nonfinite"}),
        # The norms blow up on the way to NaN; ReLUs pushed far negative die (the chapter).
        tolerated=frozenset({"exploding_gradients", "dying_relu"}),
        twin_of="regression_mlp",
    ),
    ZooModel(
        "cnn_high_lr",
        lambda: cnn_dropout(learning_rate=0.3),
        zdata.images,
        "cnn_dropout with Adam learning rate 0.3 (100x)",
        _CLASSIFIED,
        # Adam's first steps move every weight by about the learning rate, 0.3, more than the
        # kernels' own scale: pre-activations are thrown far below zero and the ReLUs die (the
        # chapter's warning about large rates). Dead units then pass no gradient.
        expected=frozenset({"dying_relu"}),
        tolerated=frozenset({"vanishing_gradients", "exploding_gradients", "unstable_loss"}),
        twin_of="cnn_dropout",
    ),
    ZooModel(
        "lstm_high_lr",
        lambda: _with_learning_rate(embedding_lstm(), 1.0),
        zdata.tokens,
        "embedding_lstm with Adam learning rate 1.0 (100x)",
        _CLASSIFIED,
        # Sigmoid/tanh gates cannot die: steps far too large make the loss jump around instead
        # (AutoTrainer's oscillating loss).
        expected=frozenset({"unstable_loss"}),
        tolerated=frozenset({"exploding_gradients", "saturation"}),
        twin_of="embedding_lstm",
    ),
    ZooModel(
        "lstm_low_lr",
        lambda: _with_learning_rate(embedding_lstm(), 1e-4),
        zdata.tokens,
        "embedding_lstm with Adam learning rate 1e-4 (100x too low)",
        _CLASSIFIED,
        expected=frozenset({"slow_convergence"}),
        twin_of="embedding_lstm",
    ),
)


HEALTHY: tuple[str, ...] = tuple(n for n, m in ZOO.items() if not m.sick)
SICK: tuple[str, ...] = tuple(n for n, m in ZOO.items() if m.sick)


@dataclass
class TrainedZoo:
    """A zoo model after :func:`fit_zoo`.

    Attributes:
        model: the trained model.
        run_dir: the GradScope run directory (None for a plain fit).
        findings: the callback's findings (empty for a plain fit).
        history: Keras's ``history.history``.
        error_before: held-out error of the untrained model.
        error_after: held-out error after training.
        seconds: wall time of ``model.fit``.
    """

    model: keras.Model
    run_dir: Path | None
    findings: list[Any]
    history: dict[str, list[float]]
    error_before: float
    error_after: float
    seconds: float

    def learned(self, entry: ZooModel) -> bool:
        """True if the fit met ``entry.learns``."""
        return entry.learns.met(self.error_before, self.error_after)


def fit_zoo(
    entry: ZooModel,
    log_dir: str | Path | None,
    seed: int = 0,
    epochs: int | None = None,
    **gradscope_options: Any,
) -> TrainedZoo:
    """Builds and trains a zoo model on its data, with ``GradScope`` unless ``log_dir`` is None.

    Args:
        entry: the zoo model.
        log_dir: the callback's ``log_dir`` (None: a plain fit without gradscope).
        seed: ``keras.utils.set_random_seed`` before building.
        epochs: overrides ``entry.epochs``.
        **gradscope_options: passed to :class:`~gradscope.GradScope` (default
            ``tensorboard=False, verbose=0``).

    Returns:
        The :class:`TrainedZoo`, with the held-out error before and after.

    Example:
        >>> done = fit_zoo(ZOO["tabular_mlp"], "runs/zoo")  # doctest: +SKIP
        >>> done.learned(ZOO["tabular_mlp"]), done.findings  # doctest: +SKIP
        (True, [])
    """
    from gradscope.collect.callback import GradScope

    keras.utils.set_random_seed(seed)
    model = entry.build()
    x, y = entry.train_data()
    x_test, y_test = entry.test_data()
    before = entry.learns.error(model, x_test, y_test)
    callbacks = []
    if log_dir is not None:
        options = {"tensorboard": False, "verbose": 0, **gradscope_options}
        callbacks.append(GradScope(log_dir, **options))
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=entry.batch_size,
        epochs=epochs or entry.epochs,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    after = entry.learns.error(model, x_test, y_test)
    run_dir = callbacks[0].run_dir if callbacks else None
    findings = list(callbacks[0].findings) if callbacks else []
    return TrainedZoo(model, run_dir, findings, history.history, before, after, seconds)
