"""TensorBoard event files written directly from records (no TensorFlow ops on the host).

Scalars are grouped per statistic (``grad_norm/<layer>``, ``update_ratio/<layer>``, ...) so that
TensorBoard's scalar dashboard shows one card per statistic with one line per layer; histograms use
the fixed gradscope bins; findings go in as text. Writing uses TensorBoard's own event-file writer
and protobufs, which costs microseconds per value instead of an eager op per ``tf.summary`` call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from gradscope.data.schema import StepRecord, is_finite


def _scalar(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=float(value))


class TensorBoardWriter:
    """Writes gradscope records as TensorBoard summaries into ``log_dir``.

    Args:
        log_dir: directory of the event file (the run directory).
        flush_secs: how often the background writer flushes; small so that an interrupted fit
            still leaves recent data on disk.

    Example:
        >>> writer = TensorBoardWriter(tempfile.mkdtemp())  # doctest: +SKIP
        >>> writer.write_record(record); writer.close()  # doctest: +SKIP
    """

    def __init__(self, log_dir: str | os.PathLike[str], flush_secs: int = 5) -> None:
        self._writer = EventFileWriter(
            str(log_dir), flush_secs=flush_secs, filename_suffix=".gradscope"
        )

    def _emit(self, step: int, values: list[summary_pb2.Summary.Value]) -> None:
        if values:
            event = event_pb2.Event(
                wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values)
            )
            self._writer.add_event(event)

    def write_record(self, record: StepRecord) -> None:
        """Writes a record's loss, learning rate and per-layer statistics as scalars.

        Non-finite values are skipped (TensorBoard cannot plot them; the ``nonfinite`` count and
        the run files keep the evidence).

        Args:
            record: the step record.
        """
        values: list[summary_pb2.Summary.Value] = []
        if is_finite(record.loss):
            values.append(_scalar("gradscope/loss", record.loss))  # type: ignore[arg-type]
        if is_finite(record.lr):
            values.append(_scalar("gradscope/learning_rate", record.lr))  # type: ignore[arg-type]
        for layer, layer_stats in record.layers.items():
            for stat, value in layer_stats.items():
                if is_finite(value):
                    values.append(_scalar(f"{stat}/{layer}", value))
        self._emit(record.step, values)

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

    def flush(self) -> None:
        """Flushes pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()
