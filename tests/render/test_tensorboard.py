"""TensorBoard event files written by GradScope are read back with TensorBoard's own reader."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers import toy_data
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradscope import GradScope, load_run
from gradscope.render.tensorboard import TensorBoardWriter


def _accumulator(path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_equal_stats_jsonl(tmp_path) -> None:
    x, y = toy_data(64)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    # Keras's own TensorBoard callback on the same log_dir must coexist.
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[
            GradScope(tmp_path, freq=2, histogram_freq=4),
            keras.callbacks.TensorBoard(tmp_path, histogram_freq=1),
        ],
    )
    run = load_run(tmp_path)
    acc = _accumulator(tmp_path)
    tags = acc.Tags()["scalars"]
    first = model.layers[0].name
    for stat in ("grad_norm", "update_ratio", "dead_frac", "weight_norm"):
        events = acc.Scalars(f"{stat}/{first}")
        steps, values = run.series(stat, first)
        assert [e.step for e in events] == steps.tolist()
        np.testing.assert_allclose([e.value for e in events], values, rtol=1e-6)
    assert "gradscope/loss" in tags
    hist = acc.Histograms(f"log10_abs_grad/{first}")
    assert [h.step for h in hist] == [0, 4]
    assert hist[0].histogram_value.num == model.layers[0].count_params()
    assert (tmp_path / "train").is_dir()  # Keras's callback wrote beside us


def test_nonfinite_values_are_skipped_and_text_is_readable(tmp_path) -> None:
    from gradscope.data.schema import StepRecord

    writer = TensorBoardWriter(tmp_path)
    writer.write_record(
        StepRecord(
            step=3,
            epoch=0,
            loss=math.nan,
            lr=0.1,
            layers={"d": {"grad_norm": math.inf, "act_mean": 0.5}},
        )
    )
    writer.write_text("gradscope/findings", ["**vanishing gradients** in `d`"], step=3)
    writer.close()
    acc = _accumulator(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"gradscope/learning_rate", "act_mean/d"}
    text = acc.Tensors("gradscope/findings")[0].tensor_proto.string_val[0].decode()
    assert "vanishing gradients" in text
    assert acc.Scalars("act_mean/d")[0].value == pytest.approx(0.5)
