"""Shared helpers of the benchmark scripts: machine description, machine load, markdown tables.

The scripts run as ``python benchmarks/<name>.py``, so this module is importable as ``benchutil``
(the script's folder is first on ``sys.path``). It imports neither TensorFlow nor Keras, so a
parent process that only orchestrates child processes stays light.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo reports it ('unknown' elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram_gib() -> float:
    """Physical memory in GiB (NaN where /proc/meminfo is missing)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return math.nan


def os_name() -> str:
    """PRETTY_NAME from /etc/os-release, else platform's description."""
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def package_version(name: str) -> str:
    """Installed version of a distribution, read from its metadata (no import), or '?'."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def machine_line(with_frameworks: bool = True) -> str:
    """One line describing the machine and the software versions (without importing TF)."""
    parts = [
        f"CPU {cpu_model()}",
        f"{os.cpu_count()} cores",
        f"{total_ram_gib():.0f} GiB RAM",
        os_name(),
        f"Python {platform.python_version()}",
    ]
    if with_frameworks:
        parts += [
            f"TensorFlow {package_version('tensorflow')}",
            f"Keras {package_version('keras')}",
        ]
    return "machine: " + ", ".join(parts)


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu_ticks() -> tuple[int, int] | None:
    """(total, idle+iowait) jiffies of all cores since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass
class LoadWindow:
    """How busy the machine was over a span of time, and how much of that was someone else.

    ``others`` is the fraction of all cores used by other processes while the span ran: the
    machine's busy fraction (/proc/stat) minus this process's own CPU time. On a shared machine it
    tells how much the wall-clock numbers of the span can be trusted.
    """

    wall: float
    machine_busy: float | None
    others: float | None
    loadavg: str

    def describe(self) -> str:
        """E.g. 'machine busy 63% (others 12% of 2 cores), loadavg 1.10 0.90 0.80'."""
        if self.machine_busy is None or self.others is None:
            return f"machine busy unknown, loadavg {self.loadavg}"
        return (
            f"machine busy {100 * self.machine_busy:.0f}% (others {100 * self.others:.0f}% "
            f"of {os.cpu_count()} cores), loadavg {self.loadavg}"
        )


class LoadMeter:
    """Measures the machine load over a ``with`` block (see :class:`LoadWindow`)."""

    def __enter__(self) -> LoadMeter:
        self._ticks = _cpu_ticks()
        self._own = _own_cpu_seconds()
        self._wall = time.perf_counter()
        self.window: LoadWindow | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.window = self.read()

    def read(self) -> LoadWindow:
        """The window from ``__enter__`` until now."""
        wall = time.perf_counter() - self._wall
        own = _own_cpu_seconds() - self._own
        end = _cpu_ticks()
        busy = others = None
        if self._ticks is not None and end is not None and end[0] > self._ticks[0]:
            total = end[0] - self._ticks[0]
            idle = end[1] - self._ticks[1]
            busy = 1.0 - idle / total
            cores = os.cpu_count() or 1
            others = max(0.0, busy - own / (wall * cores)) if wall > 0 else None
        return LoadWindow(wall, busy, others, load_average())


def machine_busy(seconds: float = 1.0) -> float | None:
    """Fraction of all cores busy for ``seconds`` while this process sleeps (None: unknown)."""
    a = _cpu_ticks()
    time.sleep(seconds)
    b = _cpu_ticks()
    if a is None or b is None or b[0] == a[0]:
        return None
    return 1.0 - (b[1] - a[1]) / (b[0] - a[0])


def wait_for_quiet(max_wait: float, threshold: float = 0.25) -> float | None:
    """Waits (at most ``max_wait`` s) until other processes use < ``threshold`` of the cores.

    Returns the last busy fraction seen (None if unknown). On a machine shared with test suites
    this keeps the rounds from starting in the middle of someone else's burst, without ever
    blocking for long.
    """
    deadline = time.monotonic() + max_wait
    busy = machine_busy(0.5)
    while busy is not None and busy >= threshold and time.monotonic() < deadline:
        busy = machine_busy(2.0)
    return busy


class EpochClock:
    """Remembers when a fit's epochs end, in wall and CPU seconds (this process, all threads).

    Keras is imported when one is made, so this module stays light for parents that only
    orchestrate child processes. Place :attr:`callback` after every other callback, so an epoch's
    mark includes their epoch-end work.

    Attributes:
        marks: ``(perf_counter, process_time)`` at the end of each epoch.
        callback: the Keras callback that records them.

    Example:
        >>> clock = EpochClock()  # doctest: +SKIP
        >>> model.fit(x, y, epochs=3, callbacks=[clock.callback])  # doctest: +SKIP
        >>> len(clock.marks)  # doctest: +SKIP
        3
    """

    def __init__(self) -> None:
        import keras

        marks: list[tuple[float, float]] = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, object] | None = None) -> None:
                marks.append((time.perf_counter(), time.process_time()))

        self.marks = marks
        self.callback = Clock()


def fmt_ratio(value: float, base: float) -> str:
    """``value / base`` as '1.23x' ('nan' when the base is zero or either is not finite)."""
    if not (math.isfinite(value) and math.isfinite(base)) or base == 0:
        return "nan"
    return f"{value / base:.2f}x"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; the first column is left-aligned, the others right-aligned."""
    align = ["---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def header(title: str, argv: Sequence[str] | None = None, with_frameworks: bool = True) -> str:
    """The first lines every benchmark prints: title, command, machine, load before."""
    args = sys.argv if argv is None else [sys.argv[0], *argv]
    command = " ".join(["python", *args])
    return "\n".join(
        [
            f"# {title}",
            f"command: {command}",
            machine_line(with_frameworks),
            f"load before: loadavg {load_average()}",
        ]
    )


def publish(text: str, out: Path | None) -> None:
    """Prints a benchmark's markdown and, when asked, writes it to a file too.

    Args:
        text: the markdown.
        out: the file (its folder is created), or None to print only.
    """
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
