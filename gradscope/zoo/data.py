"""Synthetic data sets the zoo's models can learn in a few epochs, each a rule fixed in advance.

Every generator is seeded and cheap (NumPy only), and its label or target is a simple function of
the input, so "the model learned" is a fact one can check without gradscope: accuracy far above
chance, or an error well below the untrained model's.

Example:
    >>> x, y = images(8, seed=0)
    >>> x.shape, y.shape
    ((8, 16, 16, 1), (8,))
"""

from __future__ import annotations

import numpy as np

#: Classes of :func:`images` (the quadrant holding the bright patch).
IMAGE_CLASSES = 4
#: Token ids of :func:`tokens`: 0 is padding, 1-8 "positive", 9-16 "negative", the rest neutral.
VOCAB = 32
#: Classes of :func:`series` (cycles per window).
SERIES_FREQUENCIES = (2, 5, 9)
#: Features of :func:`tabular` and :func:`manifold`.
TABULAR_FEATURES = 16
MANIFOLD_FEATURES = 32
#: The mean the GAN's generator must learn to reach (:func:`gan_points`).
GAN_FEATURES = 8


def images(n: int, seed: int = 0, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Noisy ``size`` x ``size`` grey images; the class is the quadrant of a bright 4x4 patch.

    Args:
        n: examples.
        seed: NumPy seed.
        size: image side (even).

    Returns:
        ``x`` float32 (n, size, size, 1), ``y`` int32 labels in 0-3.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, size, size, 1)).astype("float32")
    y = rng.integers(0, IMAGE_CLASSES, n).astype("int32")
    half = size // 2
    for i, c in enumerate(y):
        top = (c // 2) * half + rng.integers(0, half - 4 + 1)
        left = (c % 2) * half + rng.integers(0, half - 4 + 1)
        x[i, top : top + 4, left : left + 4, 0] += 1.5
    return x, y


def tokens(n: int, seed: int = 0, length: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences labelled like sentiment: 1 if "positive" tokens outnumber "negative" ones.

    Args:
        n: examples.
        seed: NumPy seed.
        length: tokens per sequence.

    Returns:
        ``x`` int32 (n, length) in 1..VOCAB-1, ``y`` int32 labels 0/1.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, (n, length)).astype("int32")
    positive = ((x >= 1) & (x <= 8)).sum(1)
    negative = ((x >= 9) & (x <= 16)).sum(1)
    # Ties get a deciding token at the end, so the rule has no unlearnable cases.
    tie = positive == negative
    x[tie, -1] = rng.integers(1, 17, int(tie.sum()))
    positive = ((x >= 1) & (x <= 8)).sum(1)
    negative = ((x >= 9) & (x <= 16)).sum(1)
    return x, (positive > negative).astype("int32")


def series(n: int, seed: int = 0, length: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves; the class is the frequency (one of :data:`SERIES_FREQUENCIES`).

    Args:
        n: examples.
        seed: NumPy seed.
        length: time steps.

    Returns:
        ``x`` float32 (n, length, 1), ``y`` int32 labels.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(SERIES_FREQUENCIES), n).astype("int32")
    t = np.arange(length) / length
    freq = np.asarray(SERIES_FREQUENCIES)[y][:, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 0.3, (n, length))
    return x[..., None].astype("float32"), y


def tabular(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal features; the class is the argmax of three fixed linear scores.

    The scores read the first four features only (the rest is noise the model must ignore), so
    a small MLP generalizes from 512 examples.

    Args:
        n: examples.
        seed: NumPy seed of the features (the scoring rule is the same for every seed).

    Returns:
        ``x`` float32 (n, 16), ``y`` int32 labels 0-2.
    """
    w = np.zeros((TABULAR_FEATURES, 3))
    w[:4] = np.random.default_rng(1).normal(size=(4, 3))
    x = np.random.default_rng(seed).normal(size=(n, TABULAR_FEATURES)).astype("float32")
    return x, np.argmax(x @ w, 1).astype("int32")


def smooth_regression(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth nonlinear target of standard-normal features, scaled to unit variance.

    Args:
        n: examples.
        seed: NumPy seed.

    Returns:
        ``x`` float32 (n, 16), ``y`` float32 (n, 1).
    """
    x = np.random.default_rng(seed).normal(size=(n, TABULAR_FEATURES)).astype("float32")
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3]
    return x, (y / 0.95)[:, None].astype("float32")


def manifold(n: int, seed: int = 0, latent: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Points on a smooth ``latent``-dimensional surface in 32 dimensions (for autoencoders).

    Args:
        n: examples.
        seed: NumPy seed of the latent codes (the surface is the same for every seed).
        latent: the surface's dimension.

    Returns:
        ``x`` float32 (n, 32) and ``x`` again as the target.
    """
    mix = np.random.default_rng(2).normal(size=(latent, MANIFOLD_FEATURES)) / np.sqrt(latent)
    z = np.random.default_rng(seed).normal(size=(n, latent))
    x = np.tanh(z @ mix).astype("float32") * 2.0
    return x, x


#: Where the GAN's real points are centred.
GAN_CENTER = np.linspace(-1.5, 1.5, GAN_FEATURES).astype("float32")


def gan_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real samples for the GAN: Gaussian points around :data:`GAN_CENTER` (std 0.5).

    Args:
        n: examples.
        seed: NumPy seed.

    Returns:
        ``x`` float32 (n, 8) and a dummy all-zero ``y`` (the GAN's step ignores it).
    """
    rng = np.random.default_rng(seed)
    x = (GAN_CENTER + 0.5 * rng.normal(size=(n, GAN_FEATURES))).astype("float32")
    return x, np.zeros((n, 1), "float32")
