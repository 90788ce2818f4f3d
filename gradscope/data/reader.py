"""Run directory -> :class:`Run`: tolerant, streaming reading of what :mod:`store` writes.

A torn last line (a process killed mid-write) or a corrupt one is skipped and counted, never
fatal; a run written by a newer schema is refused with a message saying to upgrade. Paths may
name a run directory or the ``log_dir`` above it (its newest run is read).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gradscope.data.rundirs import EPOCHS_FILE, HIST_FILE, META_FILE, STATS_FILE, resolve_run
from gradscope.data.schema import (
    SCHEMA_VERSION,
    EpochRecord,
    LayerInfo,
    RunMeta,
    StepRecord,
    check_schema_version,
    has_nonfinite,
)


class RunFormatError(ValueError):
    """A run directory is missing, unreadable or written by a newer gradscope."""


_T = TypeVar("_T", StepRecord, EpochRecord)


def _parse_jsonl(
    path: Path,
    factory: Callable[[dict[str, Any]], _T],
    keep: Callable[[int, str], bool] | None = None,
) -> tuple[list[_T], int]:
    """Parses a ``.jsonl`` log into records; returns them and how many lines were skipped.

    ``keep(index, line)`` picks the lines to parse (None: all), so a thinned read costs a scan.
    """
    # Streams line by line: only the records stay in memory, not the file's text and every
    # parsed dict at once (a 20k-record log peaked at ~4x more that way).
    out: list[_T] = []
    skipped = 0
    if not path.exists():
        return out, skipped
    with open(path, encoding="utf-8", errors="replace") as fh:
        for index, line in enumerate(fh):
            if not line.strip() or (keep is not None and not keep(index, line)):
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError("not a JSON object")
                out.append(factory(obj))
            except (KeyError, TypeError, ValueError, AttributeError):
                skipped += 1
    return out, skipped


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    count = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _thinned_steps(path: Path, max_records: int) -> tuple[list[StepRecord], int]:
    """At most about ``max_records`` evenly spaced step records, the last and first non-finite.

    Like ``max_records`` decimation on disk (every ``stride``-th record), decided per line
    index before parsing, so memory holds only the kept records. The last record is kept (the
    end of training) and so is the first non-finite one, where the detectors cut the run:
    lines holding ``NaN``/``Infinity`` (how JSON writes them) are parsed until it is found.
    """
    total = _count_lines(path)
    stride = max(1, math.ceil(total / max_records))
    found = False

    def keep(index: int, line: str) -> bool:
        nonlocal found
        if index % stride == 0 or index >= total - 1:
            return True
        if not found and ("NaN" in line or "Infinity" in line):
            try:
                found = has_nonfinite(StepRecord.from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError, AttributeError):
                return False
            return found
        return False

    return _parse_jsonl(path, StepRecord.from_json, keep)


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


def load_run(path: str | os.PathLike[str], max_records: int | None = None) -> Run:
    """Loads a run directory written by :class:`RunWriter` (or the GradScope callback).

    ``path`` may be the run directory itself (``callback.run_dir``) or the ``log_dir`` given to
    GradScope, which holds one run directory per fit process: then its newest run is loaded
    (by ``meta.json``'s ``created``, then name; see
    :func:`gradscope.data.rundirs.list_runs` for all of them).

    Args:
        path: a run directory, or a parent holding runs.
        max_records: read at most about this many step records, evenly spaced (plus the last
            one and the first non-finite one), scanning the rest without parsing it: memory
            stays flat however long the run. None reads every record.

    Returns:
        The loaded :class:`Run`; ``run.path`` is the run directory read. Torn or corrupt lines
        are skipped and counted in ``run.skipped_lines``.

    Raises:
        RunFormatError: if ``path`` is neither a run directory nor holds one, ``meta.json`` is
            unreadable, or the run was written with a newer schema version.

    Example:
        >>> run = load_run("runs/x")  # doctest: +SKIP
        >>> steps, norms = run.series("grad_norm", run.layer_names[0])  # doctest: +SKIP
    """
    if max_records is not None and max_records < 1:
        raise ValueError(f"`max_records` must be None or >= 1. Received: max_records={max_records}")
    root, _ = resolve_run(path)
    meta_path = root / META_FILE
    if not root.is_dir():
        raise RunFormatError(
            f"No run directory at '{root}'. Pass the log_dir given to GradScope or one of its "
            f"runs. Received: path='{root}'"
        )
    if not meta_path.is_file():
        raise RunFormatError(
            f"'{root}' is not a gradscope run: it has no {META_FILE} and no run directories "
            f"under it. Pass the log_dir given to GradScope or one of its runs. "
            f"Received: path='{root}'"
        )
    try:
        meta_json = json.loads(meta_path.read_text(encoding="utf-8"))
        version = int(meta_json["schema_version"])
    except (ValueError, KeyError, TypeError) as err:
        raise RunFormatError(
            f"'{meta_path}' is corrupt ({err}); the run cannot be read, record the run again."
        ) from err
    check_schema_version(version, SCHEMA_VERSION, f"The run '{root}'", RunFormatError)
    meta = RunMeta.from_json(meta_json)
    if max_records is None:
        records, bad_stats = _parse_jsonl(root / STATS_FILE, StepRecord.from_json)
    else:
        records, bad_stats = _thinned_steps(root / STATS_FILE, max_records)
    epochs, bad_epochs = _parse_jsonl(root / EPOCHS_FILE, EpochRecord.from_json)
    return Run(
        path=root, meta=meta, records=records, epochs=epochs, skipped_lines=bad_stats + bad_epochs
    )


__all__ = ["Run", "RunFormatError", "load_run"]
