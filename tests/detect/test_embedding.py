"""Embedding layers: a sparse gradient is not a vanishing one (issue 15, item 6).

A step's gradient on an embedding table reaches only the rows of the batch's tokens, so the
table's per-weight gradient RMS is tiny even when it learns well. gradscope leaves lookup tables
out of the first/last gradient ratio and of the vanishing judgement
(:func:`gradscope.detect.window.gradient_flow_layers`).
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest
from synthetic_runs import dense, make_run

from gradscope import GradScope, load_run
from gradscope.config import DETECT_THRESHOLDS
from gradscope.data import LayerInfo
from gradscope.detect import detect
from gradscope.detect.summary import gradient_ratio
from gradscope.detect.window import (
    gradient_flow_layers,
    gradient_rms,
    last_window,
    sparse_gradient,
    usable_records,
    weight_layers,
)
from gradscope.findings import Severity

GRADIENT_KINDS = {"vanishing_gradients", "dying_relu", "saturation"}


def _embedding(params: int = 3_200_000) -> LayerInfo:
    return LayerInfo(
        name="embedding", class_name="Embedding", params=params, variables=("embeddings",)
    )


def test_lookup_tables_are_weight_layers_but_not_gradient_flow_layers(tmp_path) -> None:
    layers = [_embedding(), dense("lstm", kind="tanh"), dense("out", kind="sigmoid")]
    # The embedding's per-weight RMS is 1e-6 of the output layer's: the old definition's
    # ratio, which started at the embedding, called this vanishing.
    norms = {"embedding": 1e-6 * math.sqrt(3_200_000), "lstm": 0.5, "out": 1.0}

    def stats(step: int) -> dict[str, dict[str, float]]:
        return {
            n: {"grad_norm": v * 10, "weight_norm": 1.0, "update_ratio": 1e-3, "nonfinite": 0.0}
            for n, v in norms.items()
        } | {"embedding": {"grad_norm": norms["embedding"], "update_ratio": 1e-7}}

    run = make_run(tmp_path / "run", layers, stats)
    assert [x.name for x in weight_layers(run)] == ["embedding", "lstm", "out"]
    assert [x.name for x in gradient_flow_layers(run)] == ["lstm", "out"]
    assert sparse_gradient(run.layers[0]) and not sparse_gradient(run.layers[1])
    ratio = gradient_ratio(run)
    assert ratio is not None and ratio.first_layer == "lstm"
    assert ratio.value == pytest.approx(0.5)
    assert not GRADIENT_KINDS & {f.kind for f in detect(run)}
    # A lookup table recognised by its variable alone (another library's embedding class).
    custom = LayerInfo("tok", "TokenAndPositionEmbedding", params=10, variables=("embeddings",))
    assert sparse_gradient(custom)


def _token_task(vocab: int, length: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # Label: two or more "keyword" tokens (5 % of the vocabulary) in the sequence, about half
    # positive. Every token id is in [1, vocab).
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, (n, length))
    keywords = rng.choice(np.arange(1, vocab), vocab // 20, replace=False)
    y = (np.isin(x, keywords).sum(axis=1) >= 2).astype("float32")
    return x.astype("int32"), y


def test_embedding_lstm_that_learns_gets_no_gradient_warning(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    vocab, length = 100_000, 30
    x, y = _token_task(vocab, length, 2048)
    assert 0.3 < y.mean() < 0.7
    model = keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(vocab, 32, name="embedding"),
            keras.layers.Bidirectional(keras.layers.LSTM(16), name="bilstm"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    callback = GradScope(tmp_path / "runs", on_finding="warn", verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=4, batch_size=32, callbacks=[callback], verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses  # it learns
    said = [str(w.message) for w in caught if "gradscope [" in str(w.message)]
    assert not [m for m in said if any(k in m.lower() for k in ("vanish", "dying", "saturat"))]

    run = load_run(callback.run_dir)
    findings = detect(run)
    assert not GRADIENT_KINDS & {f.kind for f in findings}, [f.message for f in findings]
    assert all(f.severity < Severity.WARNING for f in findings), [f.message for f in findings]
    ratio = gradient_ratio(run)
    assert ratio is not None and ratio.first_layer == "bilstm"
    assert ratio.value > DETECT_THRESHOLDS.vanishing.warning_ratio

    # Control: judged by its whole table, the embedding looks vanishing (what the ratio showed
    # before it skipped lookup tables), although the model learns.
    window = last_window(usable_records(run.records), DETECT_THRESHOLDS.window)
    embedding, out = weight_layers(run)[0], weight_layers(run)[-1]
    assert embedding.class_name == "Embedding"
    table_ratio = gradient_rms(window, embedding) / gradient_rms(window, out)
    assert table_ratio < DETECT_THRESHOLDS.vanishing.warning_ratio
