"""Sequence models of the zoo: recurrent, attention and 1-D convolutional classifiers, tiny.

The text models read the token sequences of :func:`gradscope.zoo.data.tokens` (binary
"sentiment"), the time-series model the sine waves of :func:`gradscope.zoo.data.series`.

Example:
    >>> model = embedding_lstm()  # doctest: +SKIP
    >>> model.output_shape  # doctest: +SKIP
    (None, 1)
"""

from __future__ import annotations

from typing import Any

import keras

from gradscope.zoo.data import SERIES_FREQUENCIES, VOCAB


def _binary(model: keras.Model, learning_rate: float = 3e-3) -> keras.Model:
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy", metrics=["accuracy"])
    return model


def embedding_lstm() -> keras.Model:
    """Embedding, one LSTM, a sigmoid output: the textbook sentiment model (Adam, no clipping).

    Returns:
        The compiled Sequential model.
    """
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 16, name="embedding"),
            keras.layers.LSTM(16, name="lstm"),
            keras.layers.Dense(1, activation="sigmoid", name="output"),
        ],
        name="embedding_lstm",
    )
    return _binary(model, 1e-2)


def bidirectional_gru() -> keras.Model:
    """Embedding and a bidirectional GRU (Functional), then a small ReLU head.

    Returns:
        The compiled Functional model.
    """
    inp = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 16, name="embedding")(inp)
    x = keras.layers.Bidirectional(keras.layers.GRU(12), name="bigru")(x)
    x = keras.layers.Dense(16, activation="relu", name="head")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="output")(x)
    return _binary(keras.Model(inp, out, name="bidirectional_gru"), 1e-2)


@keras.saving.register_keras_serializable(package="gradscope_zoo")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned embedding of each position to a sequence of vectors.

    Args:
        length: the longest sequence.
        dim: the vectors' width.
        **kwargs: passed to :class:`keras.layers.Layer`.
    """

    def __init__(self, length: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length = length
        self.dim = dim
        self.positions = keras.layers.Embedding(length, dim, name="positions")

    def build(self, input_shape: Any) -> None:
        """Creates the position table (so a loaded model restores its weights into it)."""
        self.positions.build((self.length,))

    def call(self, x: Any) -> Any:
        """``x`` plus the embedding of each position."""
        steps = keras.ops.arange(keras.ops.shape(x)[1])
        return x + self.positions(steps)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {**super().get_config(), "length": self.length, "dim": self.dim}


def transformer_encoder(length: int = 20) -> keras.Model:
    """Token and position embeddings, one post-norm transformer encoder block, average pooling.

    The block: MultiHeadAttention (2 heads) + residual + LayerNormalization, then a GELU
    feed-forward + residual + LayerNormalization, as in "Attention Is All You Need".

    Args:
        length: the sequence length (of the position embedding).

    Returns:
        The compiled Functional model.
    """
    dim = 16
    inp = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, dim, name="tokens")(inp)
    x = PositionEmbedding(length, dim, name="position")(x)
    att = keras.layers.MultiHeadAttention(2, dim // 2, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm_1")(keras.layers.Add(name="res_1")([x, att]))
    ff = keras.layers.Dense(32, activation="gelu", name="ffn_1")(x)
    ff = keras.layers.Dense(dim, name="ffn_2")(ff)
    x = keras.layers.LayerNormalization(name="norm_2")(keras.layers.Add(name="res_2")([x, ff]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="output")(x)
    return _binary(keras.Model(inp, out, name="transformer_encoder"))


def conv1d_series() -> keras.Model:
    """Conv1D/MaxPooling1D blocks and global average pooling: a time-series classifier.

    Returns:
        The compiled Sequential model.
    """
    model = keras.Sequential(
        [
            keras.Input((64, 1)),
            keras.layers.Conv1D(16, 5, activation="relu", name="conv_1"),
            keras.layers.MaxPooling1D(2, name="pool_1"),
            keras.layers.Conv1D(16, 5, activation="relu", name="conv_2"),
            keras.layers.GlobalAveragePooling1D(name="gap"),
            keras.layers.Dense(len(SERIES_FREQUENCIES), activation="softmax", name="output"),
        ],
        name="conv1d_series",
    )
    model.compile(
        keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model
