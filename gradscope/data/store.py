"""Run directory <-> :class:`Run`: atomic, append-only writing and tolerant reading.

Writing rules (so that a crash or Ctrl-C never leaves an unreadable run):

* ``meta.json`` and ``hist.npz`` are replaced atomically (write a temp file, then ``os.replace``);
* ``stats.jsonl`` and ``epochs.jsonl`` are append-only, one JSON object per line, flushed after
  every record; a torn last line (killed mid-write) is skipped by the reader and reported;
* with ``max_records`` the stats log is decimated in place (every other record kept, atomically)
  whenever it would exceed the bound, and from then on only every ``stride``-th record is kept,
  so disk and memory stay bounded however long training runs.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gradscope.data.schema import (
    SCHEMA_VERSION,
    EpochRecord,
    LayerInfo,
    RunMeta,
    StepRecord,
)

META_FILE = "meta.json"
STATS_FILE = "stats.jsonl"
EPOCHS_FILE = "epochs.jsonl"
HIST_FILE = "hist.npz"


class RunFormatError(ValueError):
    """A run directory is missing, unreadable or written by a newer gradscope."""


def _umask() -> int:
    # The only portable way to read the umask is to set it; restore it at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically: a temp file in the same folder, then rename.

    Args:
        path: destination file.
        data: bytes to write.

    Example:
        >>> atomic_write_bytes(Path(tempfile.mkdtemp()) / "a.txt", b"hi")
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; the result should have the permissions open() would give it.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dumps(obj: Any) -> str:
    # NaN/Inf are kept (Python's json writes NaN/Infinity): a NaN loss is evidence, not an error.
    return json.dumps(obj, separators=(",", ":"))


class RunWriter:
    """Writes one run directory.

    Args:
        path: the run directory; created if missing.
        meta: the run's metadata, written immediately.
        max_records: bound on the number of step records kept on disk (None: unbounded).

    Example:
        >>> writer = RunWriter(Path(tempfile.mkdtemp()), RunMeta(layers=()))
        >>> writer.append(StepRecord(step=0, epoch=0, loss=1.0, lr=0.1, layers={}))
        >>> writer.close()
    """

    def __init__(
        self, path: str | os.PathLike[str], meta: RunMeta, max_records: int | None = None
    ) -> None:
        if max_records is not None and max_records < 2:
            raise ValueError(
                f"`max_records` must be None or >= 2. Received: max_records={max_records}"
            )
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self.max_records = max_records
        self._stride = 1
        self._offered = 0
        self._kept = 0
        self.write_meta(meta)
        self._stats = open(self.path / STATS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._epochs = open(self.path / EPOCHS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    @property
    def records_kept(self) -> int:
        """Number of step records currently in ``stats.jsonl`` written by this writer."""
        return self._kept

    def write_meta(self, meta: RunMeta) -> None:
        """Atomically replaces ``meta.json``.

        Args:
            meta: the new metadata.
        """
        self.meta = meta
        atomic_write_bytes(self.path / META_FILE, json.dumps(meta.to_json(), indent=1).encode())

    def set_status(self, status: str) -> None:
        """Records the run's status (``"running"``, ``"completed"``, ``"interrupted"``).

        Args:
            status: the new status.
        """
        self.write_meta(replace(self.meta, status=status))

    def append(self, record: StepRecord) -> None:
        """Appends one step record (or drops it when decimating), flushed to disk.

        Args:
            record: the record to write.
        """
        offered = self._offered
        self._offered += 1
        if offered % self._stride:
            return
        self._stats.write(_dumps(record.to_json()) + "\n")
        self._stats.flush()
        self._kept += 1
        if self.max_records is not None and self._kept > self.max_records:
            self._decimate()

    def append_epoch(self, record: EpochRecord) -> None:
        """Appends one epoch record, flushed to disk.

        Args:
            record: the record to write.
        """
        self._epochs.write(_dumps(record.to_json()) + "\n")
        self._epochs.flush()

    def _decimate(self) -> None:
        # Keep every other record (the first included) and double the stride, so records stay
        # evenly spaced in steps and the file never exceeds max_records lines.
        self._stats.close()
        rows, _ = _read_jsonl(self.path / STATS_FILE)
        kept = [line for line, _ in rows[::2]]
        atomic_write_bytes(self.path / STATS_FILE, "".join(x + "\n" for x in kept).encode())
        self._kept = len(kept)
        self._stride *= 2
        self._stats = open(self.path / STATS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    def write_histograms(self, histograms: dict[str, np.ndarray]) -> None:
        """Atomically replaces ``hist.npz`` with the given arrays.

        Args:
            histograms: array name -> array, e.g. ``"grad/dense"`` -> counts (records × bins),
                ``"grad/dense/steps"`` -> steps, ``"grad/edges"`` -> bin edges.
        """
        buf = io.BytesIO()
        np.savez_compressed(buf, **histograms)
        atomic_write_bytes(self.path / HIST_FILE, buf.getvalue())

    def close(self) -> None:
        """Closes the log files (idempotent)."""
        for fh in (self._stats, self._epochs):
            if not fh.closed:
                try:
                    fh.flush()
                    os.fsync(fh.fileno())
                finally:
                    # Closed even when the flush fails (disk full): no handle left to fail again
                    # at garbage collection.
                    fh.close()


def _read_jsonl(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Returns the complete JSON-object lines of ``path`` (text and parsed) and the bad count."""
    if not path.exists():
        return [], 0
    raw = path.read_bytes().decode("utf-8", errors="replace")
    good: list[tuple[str, dict[str, Any]]] = []
    bad = 0
    for line in raw.split("\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(obj, dict):
            good.append((line, obj))
        else:
            bad += 1
    return good, bad


_T = TypeVar("_T", StepRecord, EpochRecord)


def _parse_jsonl(path: Path, factory: Callable[[dict[str, Any]], _T]) -> tuple[list[_T], int]:
    """Parses a ``.jsonl`` log into records; returns them and how many lines were skipped."""
    # Streams line by line: only the records stay in memory, not the file's text and every
    # parsed dict at once (a 20k-record log peaked at ~4x more that way).
    out: list[_T] = []
    skipped = 0
    if not path.exists():
        return out, skipped
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError("not a JSON object")
                out.append(factory(obj))
            except (KeyError, TypeError, ValueError, AttributeError):
                skipped += 1
    return out, skipped


@dataclass
class Run:
    """A loaded run directory.

    Attributes:
        path: the run directory.
        meta: contents of ``meta.json``.
        records: step records in order.
        epochs: epoch records in order.
        skipped_lines: number of torn or corrupt lines skipped while reading.
    """

    path: Path
    meta: RunMeta
    records: list[StepRecord]
    epochs: list[EpochRecord] = field(default_factory=list)
    skipped_lines: int = 0
    _hist: dict[str, np.ndarray] | None = None

    @property
    def layers(self) -> list[LayerInfo]:
        """The model's layers in forward order."""
        return list(self.meta.layers)

    @property
    def layer_names(self) -> list[str]:
        """Names of the model's layers in forward order."""
        return [x.name for x in self.meta.layers]

    def layer(self, name: str) -> LayerInfo:
        """Returns the LayerInfo called ``name``.

        Args:
            name: a layer name from :attr:`layer_names`.

        Returns:
            The layer's description.

        Raises:
            KeyError: with the known names, if there is no such layer.
        """
        for info in self.meta.layers:
            if info.name == name:
                return info
        raise KeyError(f"No layer named {name!r} in this run. Known layers: {self.layer_names}")

    @property
    def steps(self) -> np.ndarray:
        """Steps of all records as an int64 array."""
        return np.array([r.step for r in self.records], dtype=np.int64)

    def series(self, stat: str, layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Returns the steps and values of one statistic over the run.

        Args:
            stat: a per-layer statistic (``"grad_norm"``, ``"dead_frac"``, ...) or a step-level
                one (``"loss"``, ``"lr"``).
            layer: the layer name; required for per-layer statistics.

        Returns:
            ``(steps, values)``, int64 and float64 arrays of records that have the statistic.

        Example:
            >>> steps, norms = run.series("grad_norm", "dense")  # doctest: +SKIP
        """
        steps: list[int] = []
        values: list[float] = []
        for r in self.records:
            if layer is None:
                value = getattr(r, stat, None) if stat in ("loss", "lr") else None
                if value is None and stat not in ("loss", "lr"):
                    raise ValueError(
                        f"Statistic {stat!r} is per layer: pass `layer`. Received: layer=None"
                    )
            else:
                value = r.layers.get(layer, {}).get(stat)
            if value is not None:
                steps.append(r.step)
                values.append(value)
        return np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64)

    @property
    def histograms(self) -> dict[str, np.ndarray]:
        """Arrays of ``hist.npz`` (empty when histograms were not recorded)."""
        if self._hist is None:
            path = self.path / HIST_FILE
            if path.exists():
                with np.load(path) as data:
                    self._hist = {k: data[k] for k in data.files}
            else:
                self._hist = {}
        return self._hist


def load_run(path: str | os.PathLike[str]) -> Run:
    """Loads a run directory written by :class:`RunWriter` (or the GradScope callback).

    Args:
        path: the run directory.

    Returns:
        The loaded :class:`Run`. Torn or corrupt lines are skipped and counted in
        ``run.skipped_lines``.

    Raises:
        RunFormatError: if ``path`` is not a run directory, ``meta.json`` is unreadable, or the run
            was written with a newer schema version.

    Example:
        >>> run = load_run("runs/x")  # doctest: +SKIP
        >>> steps, norms = run.series("grad_norm", run.layer_names[0])  # doctest: +SKIP
    """
    root = Path(path)
    meta_path = root / META_FILE
    if not root.is_dir():
        raise RunFormatError(f"No run directory at '{root}'. Pass the log_dir given to GradScope.")
    if not meta_path.is_file():
        raise RunFormatError(
            f"'{root}' is not a gradscope run: it has no {META_FILE}. "
            "Pass the log_dir given to GradScope."
        )
    try:
        meta_json = json.loads(meta_path.read_text(encoding="utf-8"))
        version = int(meta_json["schema_version"])
    except (ValueError, KeyError, TypeError) as err:
        raise RunFormatError(
            f"'{meta_path}' is corrupt ({err}); the run cannot be read, record the run again."
        ) from err
    if version > SCHEMA_VERSION:
        raise RunFormatError(
            f"'{root}' was written with run schema version {version}, newer than this gradscope "
            f"understands ({SCHEMA_VERSION}). Upgrade gradscope to read it."
        )
    meta = RunMeta.from_json(meta_json)
    records, bad_stats = _parse_jsonl(root / STATS_FILE, StepRecord.from_json)
    epochs, bad_epochs = _parse_jsonl(root / EPOCHS_FILE, EpochRecord.from_json)
    return Run(
        path=root, meta=meta, records=records, epochs=epochs, skipped_lines=bad_stats + bad_epochs
    )
