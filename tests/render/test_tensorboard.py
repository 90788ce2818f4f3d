"""TensorBoard event files written by GradScope are read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import toy_data
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradscope import GradScope, load_run
from gradscope.data.store import STATS_FILE
from gradscope.data.tensorboard import SCALAR_ORDER, TensorBoardWriter, scalar_tag


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
    scope = GradScope(tmp_path, freq=2, histogram_freq=4)
    # Keras's own TensorBoard callback on the same log_dir must coexist.
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[scope, keras.callbacks.TensorBoard(tmp_path, histogram_freq=1)],
    )
    run = load_run(tmp_path)
    assert run.path == scope.run_dir  # the log_dir's only gradscope run
    acc = _accumulator(scope.run_dir)
    tags = acc.Tags()["scalars"]
    first = model.layers[0].name
    for stat in ("grad_norm", "update_ratio", "dead_frac", "weight_norm"):
        events = acc.Scalars(scalar_tag(stat, first))
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
    assert set(acc.Tags()["scalars"]) == {"gradscope/learning_rate", "11_act_mean/d"}
    text = acc.Tensors("gradscope/findings")[0].tensor_proto.string_val[0].decode()
    assert "vanishing gradients" in text
    assert acc.Scalars("11_act_mean/d")[0].value == pytest.approx(0.5)


def _mlp_softmax() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(3, activation="softmax", name="output"),
        ]
    )


def test_gradient_cards_sort_first_and_softmax_has_no_act_mean(tmp_path) -> None:
    x, y = toy_data(64)
    model = _mlp_softmax()
    model.compile("sgd", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path, freq=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[scope])
    tags = sorted(_accumulator(scope.run_dir).Tags()["scalars"])  # TensorBoard's card order
    grad = [i for i, t in enumerate(tags) if t.split("/")[0].endswith("_grad_norm")]
    act = [i for i, t in enumerate(tags) if t.split("/")[0].endswith("_act_mean")]
    assert grad and act and max(grad) < min(act)
    assert tags[0] == scalar_tag("grad_norm", "hidden") == "01_grad_norm/hidden"
    # Per-layer groups sort in SCALAR_ORDER, whatever the statistics' names.
    groups = [t.split("/")[0] for t in tags if t[:2].isdigit()]
    assert groups == sorted(groups, key=lambda g: SCALAR_ORDER.index(g[3:]))
    # The softmax output's mean is 1/3 at every step: not written. The hidden layer's is.
    assert scalar_tag("act_mean", "output") not in tags
    assert scalar_tag("act_mean", "hidden") in tags
    assert scalar_tag("act_std", "output") in tags  # its spread is still a measurement
    # The run files keep the statistic (it is TensorBoard-only noise).
    assert load_run(scope.run_dir).records[0].layers["output"]["act_mean"] == pytest.approx(
        1 / 3, rel=1e-4
    )


def _fit_bounded(tmp_path, max_records: int, steps: int, known_length: bool):
    x, y = toy_data(steps * 4)
    model = _mlp_softmax()
    model.compile("sgd", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path, freq=1, histogram_freq=1, max_records=max_records, verbose=0)
    if known_length:
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[scope])
    else:
        # A generator has no cardinality: Keras's params carry steps=None.
        data = tf.data.Dataset.from_generator(
            lambda: ((x[i : i + 4], y[i : i + 4]) for i in range(0, len(x), 4)),
            output_signature=(
                tf.TensorSpec((None, x.shape[1]), tf.float32),
                tf.TensorSpec((None,), tf.int32),
            ),
        )
        model.fit(data, epochs=1, verbose=0, callbacks=[scope])
    kept = [json.loads(line)["step"] for line in (scope.run_dir / STATS_FILE).open()]
    # The optimizer's last step: what the recorded steps count.
    return _accumulator(scope.run_dir), kept, int(model.optimizer.iterations.numpy()) - 1


def _written(acc: EventAccumulator, tag: str) -> list[int]:
    events = acc.Histograms(tag) if tag.startswith("log10") else acc.Scalars(tag)
    return [e.step for e in events]


TAGS = (scalar_tag("grad_norm", "hidden"), "gradscope/loss", "log10_abs_grad/hidden")


def test_max_records_bounds_the_event_file_of_a_fit_of_known_length(tmp_path) -> None:
    max_records, steps = 8, 128
    acc, kept, _ = _fit_bounded(tmp_path, max_records, steps, known_length=True)
    # The fit's length is known: the log starts on the stride that fits it (128 / 8 = 16), is
    # never decimated, and TensorBoard gets exactly its steps, plus the last one for scalars.
    stride = math.ceil(steps / max_records)
    assert kept == list(range(0, steps, stride))
    for tag in TAGS[:2]:
        assert _written(acc, tag) == [*kept, steps - 1], tag
    assert _written(acc, TAGS[2]) == kept


def test_max_records_bounds_the_event_file_of_a_fit_of_unknown_length(tmp_path) -> None:
    max_records, steps = 8, 128  # 16x max_records: the store halves its records 4 times
    acc, kept, last_step = _fit_bounded(tmp_path, max_records, steps, known_length=False)
    assert len(kept) <= max_records
    halvings = 4
    # Append-only event files cannot be thinned: max_records + 1 entries until the first
    # halving, then max_records/2 + 1 per halving, and the last step: logarithmic in the run's
    # length (128 unbounded), never one per record.
    bound = max_records + 1 + halvings * (max_records // 2 + 1) + 1
    for tag in TAGS:
        written = _written(acc, tag)
        assert len(written) <= bound < steps // 4, tag
        assert written == sorted(set(written)), tag  # each step once, in order
    written = _written(acc, scalar_tag("grad_norm", "hidden"))
    # The last step, off the kept stride, is there: the optimizer's last one. (Keras 3 counts
    # one optimizer iteration more than there are batches when the length is unknown, with or
    # without GradScope; the recorded steps follow Keras's count.)
    assert last_step in (steps - 1, steps)
    assert written[-1] == last_step
    assert set(kept) <= set(written)  # everything stats.jsonl kept is in TensorBoard too


def test_event_file_is_tensorboards_format_and_flushes_without_close(tmp_path) -> None:
    """EventFile (TFRecordWriter underneath) writes what TensorBoard's reader and
    ``tf.compat.v1.train.summary_iterator`` read, before it is closed: an interrupted run."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from gradscope.data.tensorboard import EventFile

    first = EventFile(tmp_path, suffix=".gradscope")
    second = EventFile(tmp_path, suffix=".gradscope")  # same second: the counter tells apart
    assert first.path != second.path
    second.close()
    for step in range(3):
        summary = summary_pb2.Summary()
        summary.value.add(tag="loss", simple_value=0.5 * step)
        first.add(event_pb2.Event(wall_time=1.0, step=step, summary=summary))
    # Not closed: every event is flushed as it is written.
    events = list(tf.compat.v1.train.summary_iterator(first.path))
    assert events[0].file_version == "brain.Event:2"
    assert [(e.step, e.summary.value[0].simple_value) for e in events[1:]] == [
        (0, 0.0),
        (1, 0.5),
        (2, 1.0),
    ]
    acc = EventAccumulator(first.path)
    acc.Reload()
    assert [s.value for s in acc.Scalars("loss")] == [0.0, 0.5, 1.0]
    first.close()
    first.close()  # idempotent
    name = first.path.rsplit("/", 1)[-1]
    assert name.startswith("events.out.tfevents.") and name.endswith(".gradscope")
