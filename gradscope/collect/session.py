"""Host side of one recording: recorder + run files + TensorBoard, shared by GradScope and Scope."""

from __future__ import annotations

import datetime as _dt
import json
import math
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gradscope._version import __version__
from gradscope.collect.engine import Recorder
from gradscope.collect.histograms import act_range
from gradscope.collect.layers import WatchPlan
from gradscope.config import HISTOGRAM_BINS
from gradscope.data.rundirs import new_run_dir
from gradscope.data.schema import EpochRecord, RunMeta, StepRecord
from gradscope.data.store import RunWriter
from gradscope.data.tensorboard import TensorBoardWriter

#: Histogram snapshots kept per run; older ones are thinned evenly (every other dropped).
MAX_HISTOGRAM_SNAPSHOTS = 64


@dataclass
class HistogramLog:
    """Bounded, evenly thinned history of histogram snapshots.

    Attributes:
        limit: maximum number of snapshots kept.
        steps: steps of kept snapshots.
        snapshots: kept snapshots, name -> counts.
    """

    limit: int = MAX_HISTOGRAM_SNAPSHOTS
    steps: list[int] = field(default_factory=list)
    snapshots: list[dict[str, np.ndarray]] = field(default_factory=list)
    _stride: int = 1
    _offered: int = 0

    def add(self, step: int, histograms: dict[str, np.ndarray]) -> None:
        """Offers one snapshot; keeps every ``stride``-th, halving the history when full.

        Args:
            step: the step of the snapshot.
            histograms: name -> counts.
        """
        offered = self._offered
        self._offered += 1
        if offered % self._stride:
            return
        self.steps.append(step)
        self.snapshots.append(histograms)
        if len(self.steps) > self.limit:
            self.steps = self.steps[::2]
            self.snapshots = self.snapshots[::2]
            self._stride *= 2

    def to_arrays(self, edges: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Returns the npz payload: ``<name>`` -> counts [snapshots × bins], ``<name>/steps``.

        Args:
            edges: bin edges to store alongside (``"grad"`` and ``"act/<layer>"``).

        Returns:
            name -> array.
        """
        out: dict[str, np.ndarray] = {f"edges/{k}": v for k, v in edges.items()}
        names = sorted({n for snap in self.snapshots for n in snap})
        for name in names:
            rows = [
                (s, snap[name])
                for s, snap in zip(self.steps, self.snapshots, strict=False)
                if name in snap
            ]
            out[name] = np.stack([r[1] for r in rows]).astype(np.float32)
            out[f"{name}/steps"] = np.array([r[0] for r in rows], dtype=np.int64)
        return out


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def optimizer_description(optimizer: keras.optimizers.Optimizer | None) -> dict[str, Any]:
    """JSON-safe class name and config of an optimizer.

    Args:
        optimizer: a Keras optimizer or None.

    Returns:
        ``{"class": ..., "config": {...}}`` (empty dict for None).

    Example:
        >>> optimizer_description(keras.optimizers.SGD(0.1))["class"]
        'SGD'
    """
    if optimizer is None:
        return {}
    try:
        config = optimizer.get_config()
    except (NotImplementedError, TypeError, ValueError):
        config = {}
    return {"class": type(optimizer).__name__, "config": _json_safe(config)}


def check_writable(log_dir: Path) -> None:
    """Fails early, with a clear message, if ``log_dir`` cannot be written.

    Args:
        log_dir: the directory the run directories go under (created if missing).

    Raises:
        OSError: the same kind as the underlying error, saying which directory and what to do.
    """
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        # A probe of its own: processes started together into one log_dir must not remove
        # each other's (a shared name made one of them fail, now and then).
        with tempfile.TemporaryFile(dir=log_dir, prefix=".gradscope-write-test-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as err:
        raise type(err)(
            f"GradScope cannot write its run to log_dir '{log_dir}' ({err.strerror or err}). "
            "Pass a writable directory with free space."
        ) from err


def expected_records(params: dict[str, Any] | None, freq: int) -> int | None:
    """Records a fit will offer: epochs x steps per epoch / freq.

    Args:
        params: Keras's callback ``params`` (``epochs``, ``steps``; ``steps`` is None for a
            dataset of unknown length).
        freq: record every ``freq``-th step.

    Returns:
        The count, or None when the fit's length is unknown.

    Example:
        >>> expected_records({"epochs": 3, "steps": 100}, freq=10)
        30
    """
    epochs, steps = (params or {}).get("epochs"), (params or {}).get("steps")
    if not epochs or not steps:
        return None
    return math.ceil(int(epochs) * int(steps) / freq)


class RecordingSession:
    """Writes what a :class:`Recorder` collects into a new run directory (and TensorBoard).

    Each session creates its own run directory under ``log_dir`` (see
    :func:`gradscope.data.rundirs.new_run_dir`), so sessions never share one.

    With ``max_records``, TensorBoard gets a step only if ``stats.jsonl`` kept it when it was
    written: event files are append-only and cannot be thinned afterwards, but when the store
    halves its records its write rate halves, and TensorBoard's does with it. The last record
    is written to TensorBoard at :meth:`close` in any case, so the curves reach the end.

    Args:
        log_dir: the parent directory; the run directory is created under it.
        model: the model being recorded.
        plan: what is watched.
        recorder: the in-graph recorder.
        config: collection options to store in ``meta.json``.
        optimizer: the optimizer, described in ``meta.json`` (or its description, a dict).
        tensorboard: also write TensorBoard event files.
        max_records: bound on step records kept on disk.
        expected_records: records the run is expected to offer (a fit's length), if known.

    Attributes:
        run_dir: the run directory this session writes.
    """

    def __init__(
        self,
        log_dir: Path,
        model: keras.Model,
        plan: WatchPlan,
        recorder: Recorder,
        config: dict[str, Any],
        optimizer: keras.optimizers.Optimizer | dict[str, Any] | None,
        tensorboard: bool,
        max_records: int | None,
        expected_records: int | None = None,
    ) -> None:
        check_writable(log_dir)
        self.run_dir = new_run_dir(log_dir)
        self.recorder = recorder
        meta = RunMeta(
            layers=plan.infos,
            model_name=model.name,
            optimizer=(
                optimizer if isinstance(optimizer, dict) else optimizer_description(optimizer)
            ),
            config=config,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            gradscope_version=__version__,
        )
        self.writer = RunWriter(
            self.run_dir, meta, max_records=max_records, expected_records=expected_records
        )
        self.tensorboard = tensorboard
        self.hist = HistogramLog()
        self._tb_pending: StepRecord | None = None
        self._open_outputs(plan)
        self.last_record: StepRecord | None = None
        self.closed = False

    def _open_outputs(self, plan: WatchPlan) -> None:
        self.tb = TensorBoardWriter(self.run_dir, layers=plan.infos) if self.tensorboard else None
        lo, hi = HISTOGRAM_BINS.grad_log10_range
        # Kept across fits: snapshots of a layer watched only in an earlier fit need theirs.
        self.edges: dict[str, np.ndarray] = getattr(self, "edges", {})
        self.edges["grad"] = np.linspace(lo, hi, HISTOGRAM_BINS.grad_bins + 1)
        for name, _, kind in plan.act_layers:
            a, b = act_range(kind)
            self.edges[f"act/{name}"] = np.linspace(a, b, HISTOGRAM_BINS.act_bins + 1)

    def reopen(self, model: keras.Model, plan: WatchPlan, recorder: Recorder) -> None:
        """Continues this closed run for another fit of the same callback in the same process.

        The metadata takes the new fit's layers (a layer may have been unfrozen) and goes back
        to ``"running"``; records append to the same logs with the same ``max_records`` bound,
        and TensorBoard gets a new event file in the same run directory.

        Args:
            model: the model being recorded.
            plan: what is watched now.
            recorder: the in-graph recorder of this fit.
        """
        self.recorder = recorder
        meta = self.writer.meta
        self.writer.reopen(
            replace(meta, layers=plan.infos, model_name=model.name, status="running")
        )
        self._open_outputs(plan)
        self.closed = False

    def note(self, notes: list[str]) -> None:
        """Marks the run with what could not be recorded: ``meta.json``'s ``config.not_recorded``.

        Args:
            notes: one line each; lines already there are not repeated.
        """
        meta = self.writer.meta
        known = list(meta.config.get("not_recorded", []))
        fresh = [n for n in notes if n not in known]
        if fresh:
            config = {**meta.config, "not_recorded": known + fresh}
            self.writer.write_meta(replace(meta, config=config))

    def poll(self, epoch: int | None, loss_fallback: float | None = None) -> list[StepRecord]:
        """Reads new records from the recorder and writes them.

        Args:
            epoch: the current epoch, or None.
            loss_fallback: loss to record when the step's loss was not captured in-graph.

        Returns:
            The records written.
        """
        records, hists = self.recorder.read(epoch=epoch, loss_fallback=loss_fallback)
        dropped: set[int] = set()
        for record in records:
            if self.writer.append(record):
                if self.tb is not None:
                    self.tb.write_record(record)
                self._tb_pending = None
            else:
                dropped.add(record.step)
                self._tb_pending = record
        for step, snapshot in hists:
            self.hist.add(step, snapshot)
            if self.tb is not None and step not in dropped:
                self.tb.write_histograms(step, snapshot, self.edges)
        if records:
            self.last_record = records[-1]
        return records

    def epoch_end(self, epoch: int, step: int, logs: dict[str, Any] | None) -> None:
        """Appends the epoch's Keras logs and saves the histograms.

        Args:
            epoch: the epoch index.
            step: optimizer steps so far.
            logs: Keras epoch logs.
        """
        clean = {}
        for key, value in (logs or {}).items():
            try:
                clean[str(key)] = float(value)
            except (TypeError, ValueError):
                continue
        self.writer.append_epoch(EpochRecord(epoch=epoch, step=step, logs=clean))
        self.save_histograms()

    def save_histograms(self) -> None:
        """Atomically rewrites ``hist.npz`` when histograms were recorded."""
        if self.hist.steps:
            self.writer.write_histograms(self.hist.to_arrays(self.edges))

    def close(self, status: str = "completed") -> None:
        """Saves everything and marks the run's status (idempotent).

        Args:
            status: ``"completed"``, ``"interrupted"`` or ``"failed"`` (the disk stopped taking
                writes).
        """
        if self.closed:
            return
        self.closed = True
        # Every file is closed even if a write fails (disk full); the first error propagates.
        try:
            self.save_histograms()
            self.writer.set_status(status)
        finally:
            try:
                self.writer.close()
            finally:
                if self.tb is not None:
                    if self._tb_pending is not None:
                        # The last record, even off the kept stride: curves reach the end.
                        self.tb.write_record(self._tb_pending)
                        self._tb_pending = None
                    self.tb.close()


def log_float(value: Any) -> float | None:
    """Converts a Keras log value to float; None if missing or not a number.

    Args:
        value: a Python/NumPy/TF scalar or None.

    Returns:
        The float value (NaN and Inf kept: they are evidence), or None.

    Example:
        >>> log_float(np.float32(2.5))
        2.5
    """
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
