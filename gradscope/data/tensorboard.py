"""TensorBoard event files written directly from records (no TensorFlow ops on the host).

Scalars are grouped per statistic so that TensorBoard shows one group of cards per statistic,
one card per layer. TensorBoard orders groups and cards by tag, so each statistic's tag starts
with its rank in :data:`SCALAR_ORDER` (``01_grad_norm/<layer>``, ``02_update_ratio/<layer>``,
..., ``11_act_mean/<layer>``): gradients come first, activations last, instead of alphabetically
(``act_mean`` before ``grad_norm``). Histograms use the fixed gradscope bins; findings go in as
text. Events are built as TensorBoard's protobufs, which costs microseconds per value instead of
an eager op per ``tf.summary`` call, and written by TensorFlow's C++ ``tf.io.TFRecordWriter``:
TensorBoard's own ``EventFileWriter`` checksums every record with a pure-Python CRC32C, about
0.6 ms for one step's 4 KB of scalars, more than the rest of a recorded step's host work.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from gradscope.data.schema import LayerInfo, StepRecord, is_finite

#: Per-layer statistics in the order their TensorBoard card groups appear: what the chapter
#: reads first (gradient norm by depth, update ratio) before the finer gradient statistics,
#: weights, and activations last.
SCALAR_ORDER: tuple[str, ...] = (
    "grad_norm",
    "update_ratio",
    "grad_max_abs",
    "grad_mean",
    "grad_std",
    "nonfinite",
    "weight_norm",
    "update_norm",
    "dead_frac",
    "sat_frac",
    "act_mean",
    "act_std",
)
#: Activations whose output mean is a constant, not a measurement: a softmax's outputs sum to
#: 1, so their mean is 1/classes at every step; its ``act_mean`` card would be pure noise.
CONSTANT_MEAN_ACTIVATIONS: frozenset[str] = frozenset({"softmax"})


def scalar_tag(stat: str, layer: str) -> str:
    """The TensorBoard tag of a per-layer statistic, ranked so cards sort gradients first.

    Args:
        stat: a statistic name (``"grad_norm"``, ``"act_mean"``, ...).
        layer: the layer name.

    Returns:
        ``"<rank>_<stat>/<layer>"``; statistics not in :data:`SCALAR_ORDER` rank last.

    Example:
        >>> scalar_tag("grad_norm", "dense"), scalar_tag("act_mean", "dense")
        ('01_grad_norm/dense', '11_act_mean/dense')
    """
    rank = SCALAR_ORDER.index(stat) + 1 if stat in SCALAR_ORDER else len(SCALAR_ORDER) + 1
    return f"{rank:02d}_{stat}/{layer}"


#: Distinguishes event files opened in the same second by the same process (TensorBoard's own
#: writer adds the same counter to its file names).
_FILE_COUNTER = itertools.count()


class EventFile:
    """An append-only TensorBoard event file: TFRecords of ``Event`` protos, as TensorBoard reads.

    The file is named as TensorBoard's writers name theirs
    (``events.out.tfevents.<time>.<host>.<pid>.<n><suffix>``) and starts with the
    ``brain.Event:2`` version event. Each event is written and flushed by synchronous C++ calls
    of a few microseconds (an event is one record's step, as a ``stats.jsonl`` line is), so an
    interrupted fit leaves every event written so far, however long the steps.

    Args:
        log_dir: the directory (created if missing).
        suffix: appended to the file name.

    Example:
        >>> events = EventFile(tempfile.mkdtemp())  # doctest: +SKIP
        >>> events.add(event_pb2.Event(step=0)); events.close()  # doctest: +SKIP
    """

    def __init__(self, log_dir: str | os.PathLike[str], suffix: str = "") -> None:
        # TensorFlow is loaded whenever a run is being recorded; importing it here keeps the
        # readers and renderers of this package free of it.
        import tensorflow as tf

        os.makedirs(log_dir, exist_ok=True)
        now = time.time()
        name = (
            f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}."
            f"{next(_FILE_COUNTER)}{suffix}"
        )
        self.path = os.path.join(os.fspath(log_dir), name)
        self._writer: Any = tf.io.TFRecordWriter(self.path)
        self.add(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))

    def add(self, event: event_pb2.Event) -> None:
        """Appends one event and flushes it to the file.

        Args:
            event: the event proto.
        """
        self._writer.write(event.SerializeToString())
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TensorBoardWriter:
    """Writes gradscope records as TensorBoard summaries into ``log_dir``.

    Args:
        log_dir: directory of the event file (the run directory).
        layers: the recorded model's layers; softmax layers get no ``act_mean`` scalar (see
            :data:`CONSTANT_MEAN_ACTIVATIONS`).

    Example:
        >>> writer = TensorBoardWriter(tempfile.mkdtemp())  # doctest: +SKIP
        >>> writer.write_record(record); writer.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        layers: Sequence[LayerInfo] = (),
    ) -> None:
        self._writer = EventFile(log_dir, suffix=".gradscope")
        self._skip = {
            (info.name, "act_mean")
            for info in layers
            if info.activation in CONSTANT_MEAN_ACTIVATIONS
        }
        # (layer, stat) -> tag, or None for a skipped pair: a record repeats the same pairs.
        self._tags: dict[tuple[str, str], str | None] = {}

    def _tag(self, layer: str, stat: str) -> str | None:
        key = (layer, stat)
        if key not in self._tags:
            self._tags[key] = None if key in self._skip else scalar_tag(stat, layer)
        return self._tags[key]

    def _emit(self, step: int, values: list[summary_pb2.Summary.Value]) -> None:
        if values:
            self._emit_summary(step, summary_pb2.Summary(value=values))

    def _emit_summary(self, step: int, summary: summary_pb2.Summary) -> None:
        if summary.value:
            event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
            self._writer.add(event)

    def write_record(self, record: StepRecord) -> None:
        """Writes a record's loss, learning rate and per-layer statistics as scalars.

        Tags are :func:`scalar_tag`'s. Non-finite values are skipped (TensorBoard cannot plot
        them; the ``nonfinite`` count and the run files keep the evidence).

        Args:
            record: the step record.
        """
        summary = summary_pb2.Summary()
        add = summary.value.add
        if is_finite(record.loss):
            add(tag="gradscope/loss", simple_value=float(record.loss))  # type: ignore[arg-type]
        if is_finite(record.lr):
            add(tag="gradscope/learning_rate", simple_value=float(record.lr))  # type: ignore[arg-type]
        for layer, layer_stats in record.layers.items():
            for stat, value in layer_stats.items():
                if is_finite(value):
                    tag = self._tag(layer, stat)
                    if tag is not None:
                        add(tag=tag, simple_value=float(value))
        self._emit_summary(record.step, summary)

    def write_histograms(
        self, step: int, histograms: dict[str, np.ndarray], edges: dict[str, np.ndarray]
    ) -> None:
        """Writes fixed-bin histograms (``"grad/<layer>"`` -> counts) at ``step``.

        Args:
            step: the step.
            histograms: name -> bin counts.
            edges: ``"grad"``/``"act/<layer>"`` -> bin edges (len = bins + 1).
        """
        values = []
        for name, counts in histograms.items():
            bin_edges = edges["grad"] if name.startswith("grad/") else edges[name]
            centers = (bin_edges[:-1] + bin_edges[1:]) / 2
            total = float(counts.sum())
            proto = summary_pb2.HistogramProto(
                min=float(bin_edges[0]),
                max=float(bin_edges[-1]),
                num=total,
                sum=float((counts * centers).sum()),
                sum_squares=float((counts * centers**2).sum()),
                bucket_limit=[float(x) for x in bin_edges[1:]],
                bucket=[float(x) for x in counts],
            )
            tag = f"log10_abs_{name}" if name.startswith("grad/") else name
            values.append(summary_pb2.Summary.Value(tag=tag, histo=proto))
        self._emit(step, values)

    def write_text(self, tag: str, lines: Iterable[str], step: int = 0) -> None:
        """Writes markdown text (e.g. the findings) for TensorBoard's text dashboard.

        Args:
            tag: summary tag.
            lines: markdown lines.
            step: the step.
        """
        text = "\n".join(lines).encode("utf-8")
        tensor = tensor_pb2.TensorProto(
            dtype=7,  # DT_STRING
            string_val=[text],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        )
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")
        )
        self._emit(step, [summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()
