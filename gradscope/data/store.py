"""Run directory writing: atomic, append-only, bounded; reading lives in :mod:`reader`.

Writing rules (so that a crash or Ctrl-C never leaves an unreadable run):

* ``meta.json`` and ``hist.npz`` are replaced atomically (write a temp file, then ``os.replace``);
* ``stats.jsonl`` and ``epochs.jsonl`` are append-only, one JSON object per line, flushed after
  every record; a torn last line (killed mid-write) is skipped by the reader and reported;
* with ``max_records`` the stats log is decimated in place (every other record kept, atomically)
  whenever it would exceed the bound, and from then on only every ``stride``-th record is kept,
  so disk and memory stay bounded however long training runs.

:class:`Run`, :func:`load_run` and the file names are re-exported here, where callers have
always imported them from.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gradscope.data.reader import Run, RunFormatError, load_run
from gradscope.data.rundirs import EPOCHS_FILE, HIST_FILE, META_FILE, STATS_FILE
from gradscope.data.schema import EpochRecord, RunMeta, StepRecord


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
        expected_records: how many records the run is expected to offer, if known; with
            ``max_records`` it sets the starting stride so the log is never decimated.

    Example:
        >>> writer = RunWriter(Path(tempfile.mkdtemp()), RunMeta(layers=()))
        >>> writer.append(StepRecord(step=0, epoch=0, loss=1.0, lr=0.1, layers={}))
        >>> writer.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: RunMeta,
        max_records: int | None = None,
        expected_records: int | None = None,
    ) -> None:
        if max_records is not None and max_records < 2:
            raise ValueError(
                f"`max_records` must be None or >= 2. Received: max_records={max_records}"
            )
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self.max_records = max_records
        # When the run's length is known (a fit's epochs x steps), start on the stride that fits
        # it into max_records: no decimation (no rewrite of the log), and append-only outputs
        # that follow the kept stride (TensorBoard) stay within max_records too.
        self._stride = 1
        if max_records is not None and expected_records:
            self._stride = max(1, math.ceil(expected_records / max_records))
        self._offered = 0
        self._kept = 0
        self.write_meta(meta)
        self._stats = self._open(STATS_FILE)
        self._epochs = self._open(EPOCHS_FILE)

    def _open(self, name: str) -> io.TextIOWrapper:
        return open(self.path / name, "a", encoding="utf-8")

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

    def reopen(self, meta: RunMeta) -> None:
        """Continues a closed run (the same callback fitting again): new metadata, same logs.

        The decimation stride and counts carry over, so ``max_records`` bounds the whole run.

        Args:
            meta: the metadata to write (e.g. status ``"running"`` again).
        """
        self.write_meta(meta)
        if self._stats.closed:
            self._stats = self._open(STATS_FILE)
        if self._epochs.closed:
            self._epochs = self._open(EPOCHS_FILE)

    def append(self, record: StepRecord) -> bool:
        """Appends one step record (or drops it when decimating), flushed to disk.

        Args:
            record: the record to write.

        Returns:
            True if the record was written: it is on the stride the bounded log keeps now.
            Other outputs (TensorBoard) follow this to stay bounded as well.
        """
        offered = self._offered
        self._offered += 1
        if offered % self._stride:
            return False
        self._stats.write(_dumps(record.to_json()) + "\n")
        self._stats.flush()
        self._kept += 1
        if self.max_records is not None and self._kept > self.max_records:
            self._decimate()
        return True

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
        self._stats = self._open(STATS_FILE)

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


__all__ = [
    "EPOCHS_FILE",
    "HIST_FILE",
    "META_FILE",
    "STATS_FILE",
    "Run",
    "RunFormatError",
    "RunWriter",
    "atomic_write_bytes",
    "load_run",
]
