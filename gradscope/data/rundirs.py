"""Where runs live: one timestamped run directory per recording session under a ``log_dir``.

``GradScope("runs/x")`` never writes into ``runs/x`` itself: every fit process (every recording
session) creates its own run directory, ``runs/x/20261126-094012`` (UTC), as TensorBoard users
lay out runs. Re-running a script, a notebook cell or a resumed fit therefore never mixes records
and is never refused. Readers accept either a run directory or the ``log_dir`` above it: on a
parent they take its newest run.

A run directory is any directory holding ``meta.json``; runs written by older gradscope versions
directly into the ``log_dir`` are still runs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path

META_FILE = "meta.json"
STATS_FILE = "stats.jsonl"
EPOCHS_FILE = "epochs.jsonl"
HIST_FILE = "hist.npz"

#: strftime format of run directory names (UTC, second resolution).
RUN_NAME_FORMAT = "%Y%m%d-%H%M%S"
#: Run directory names: the UTC timestamp, plus ``-N`` when that second was already taken.
RUN_NAME_PATTERN = re.compile(r"\d{8}-\d{6}(?:-\d+)?")
# Far more than any number of processes starting in one second; a bound so that a directory
# that refuses every name (it cannot, short of a bug) fails instead of looping forever.
_MAX_SUFFIX = 10_000


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a run directory (it holds ``meta.json``).

    Args:
        path: a directory.

    Returns:
        Whether ``path/meta.json`` is a file.

    Example:
        >>> is_run_dir("runs/x/20261126-094012")  # doctest: +SKIP
        True
    """
    return (Path(path) / META_FILE).is_file()


def is_run_name(name: str) -> bool:
    """True if ``name`` is a name :func:`new_run_dir` gives (``20261126-094012[-N]``).

    Args:
        name: a directory name.

    Returns:
        Whether it is a timestamped run name.

    Example:
        >>> is_run_name("20261126-094012-1"), is_run_name("sick")
        (True, False)
    """
    return RUN_NAME_PATTERN.fullmatch(name) is not None


def new_run_dir(log_dir: str | os.PathLike[str], now: _dt.datetime | None = None) -> Path:
    """Creates a new, empty run directory under ``log_dir`` and returns it.

    The name is the UTC time, ``YYYYMMDD-HHMMSS``; if that second is already taken (a re-run
    within the second, or two processes starting together) ``-1``, ``-2``, ... is appended.
    Each candidate is created with ``mkdir(exist_ok=False)``, so two concurrent processes never
    get the same directory.

    Args:
        log_dir: the parent directory (created if missing).
        now: the time to name the run after (converted to UTC; naive means UTC); the current
            time if None.

    Returns:
        The new run directory.

    Raises:
        OSError: if ``log_dir`` cannot be created or written.

    Example:
        >>> new_run_dir("runs/mlp")  # doctest: +SKIP
        PosixPath('runs/mlp/20261126-094012')
    """
    parent = Path(log_dir)
    parent.mkdir(parents=True, exist_ok=True)
    # Aware times are converted, naive ones taken as UTC: names sort the same on every machine.
    when = now or _dt.datetime.now(_dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    stamp = when.strftime(RUN_NAME_FORMAT)
    for suffix in range(_MAX_SUFFIX):
        path = parent / (stamp if suffix == 0 else f"{stamp}-{suffix}")
        try:
            path.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(
        f"No free run directory name under '{parent}' for {stamp}. Received: log_dir='{parent}'"
    )


def _created(path: Path) -> str:
    # Unreadable metadata sorts first (oldest): the newest readable run is the better guess.
    try:
        value = json.loads((path / META_FILE).read_text(encoding="utf-8")).get("created", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _natural(name: str) -> tuple[tuple[int, int, str], ...]:
    # "...-2" before "...-10": suffix numbers compare as numbers.
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", name)
        if part
    )


def _creation_key(path: Path) -> tuple[str, tuple[tuple[int, int, str], ...]]:
    return _created(path), _natural(path.name)


def list_runs(parent: str | os.PathLike[str]) -> list[Path]:
    """Returns the run directories directly under ``parent``, oldest first.

    Runs are ordered by ``meta.json``'s ``created`` stamp, then by name (so ``...-2`` comes
    before ``...-10`` within one second). Hidden folders are skipped.

    Args:
        parent: a ``log_dir`` given to GradScope or Scope.

    Returns:
        The run directories in creation order; empty if there are none (or ``parent`` is
        missing or unreadable).

    Example:
        >>> [p.name for p in list_runs("runs/mlp")]  # doctest: +SKIP
        ['20261126-094012', '20261126-101500']
    """
    root = Path(parent)
    try:
        children = list(root.iterdir()) if root.is_dir() else []
    except OSError:  # unreadable: nothing to list, as for a missing folder
        return []
    runs = [c for c in children if not c.name.startswith(".") and c.is_dir() and is_run_dir(c)]
    return sorted(runs, key=_creation_key)


def resolve_run(path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """Finds the run a path means: itself if it is a run, else the newest run under it.

    A run directory written by an older gradscope may hold newer runs below it (a script
    re-run into the same ``log_dir`` after upgrading); it then competes with them by age.

    Args:
        path: a run directory or a parent holding runs.

    Returns:
        ``(run, others)``: the chosen directory (``path`` itself when it holds no run, so that
        the caller reports what is missing) and the other runs there, oldest first.

    Example:
        >>> run, others = resolve_run("runs/mlp")  # doctest: +SKIP
        >>> run.name, [p.name for p in others]  # doctest: +SKIP
        ('20261126-101500', ['20261126-094012'])
    """
    root = Path(path)
    candidates = list_runs(root)
    if not candidates:
        return root, []
    if is_run_dir(root):
        candidates = sorted([root, *candidates], key=_creation_key)
    return candidates[-1], candidates[:-1]


__all__ = [
    "EPOCHS_FILE",
    "HIST_FILE",
    "META_FILE",
    "RUN_NAME_FORMAT",
    "RUN_NAME_PATTERN",
    "STATS_FILE",
    "is_run_dir",
    "is_run_name",
    "list_runs",
    "new_run_dir",
    "resolve_run",
]
