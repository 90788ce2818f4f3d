"""The dashboard's list of runs: which run is which, in what order, and which are fix trials.

Runs are ordered by creation time (``meta.json``'s ``created``), so a sick run and the run after
its fix read before, then after; with exactly two such runs they are labelled ``before`` and
``after``, as in the HTML report. The short verification runs of ``gradscope fix`` (under a
``trials/`` folder, or ``auto_fix``'s ``original`` and ``step_<i>_<fix>/...`` runs) are listed
apart, so they do not crowd the runs a user trained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gradscope.data.store import META_FILE
from gradscope.render import palette
from gradscope.render.sources import PAIR_LABELS

#: Folder under which ``gradscope demo`` keeps the fix trials.
TRIALS_FOLDER = "trials"
#: ``auto_fix`` names the folder of the i-th fix's trial ``step_<i>_<fix id>``.
TRIAL_STEP = re.compile(r"step_\d+_\w+")
#: ``auto_fix`` names the trial of the unfixed model ``original``, beside the step folders.
TRIAL_ORIGINAL = "original"


@dataclass(frozen=True)
class RunEntry:
    """One run as the dashboard lists it.

    Attributes:
        run: the run's name under the log directory (the ``/data?run=`` key).
        created: ISO-8601 creation time from ``meta.json`` ("" when unknown).
        trial: True for a verification trial of ``gradscope fix``.
        label: what the run is: ``"before"``/``"after"`` for a pair, else its name; for
            trials ``"fix trial: <name>"``.
        colour: the run's palette colour (trials: none).

    Example:
        >>> RunEntry("sick", "2026-11-23T10:00:00+00:00", False, "before", "#D55E00").label
        'before'
    """

    run: str
    created: str
    trial: bool
    label: str
    colour: str | None


def _created(path: Path) -> str:
    # Only the creation time is needed: meta.json is small, the records are not read.
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    value = meta.get("created") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else ""


def is_trial(name: str, path: Path) -> bool:
    """True if a run is a verification trial of ``gradscope fix``.

    Args:
        name: the run's name under the log directory (POSIX style).
        path: its directory.

    Returns:
        Whether the run sits under ``trials/``, in a ``step_<i>_<fix>`` folder, or is an
        ``original`` run beside such folders.

    Example:
        >>> is_trial("trials/original", Path("runs/trials/original"))
        True
    """
    parts = name.split("/")
    if TRIALS_FOLDER in parts[:-1] or any(TRIAL_STEP.fullmatch(p) for p in parts):
        return True
    if TRIAL_ORIGINAL not in parts:
        return False
    # The "original" folder is the run directory or one above it (a per-process run folder);
    # a fix's step folders sit beside it.
    up = parts[::-1].index(TRIAL_ORIGINAL)
    original = path if up == 0 else path.parents[up - 1]
    siblings = original.parent.iterdir() if original.parent.is_dir() else iter(())
    return any(TRIAL_STEP.fullmatch(p.name) for p in siblings if p.is_dir())


def list_runs(runs: Mapping[str, Path]) -> list[RunEntry]:
    """Orders and labels the runs found under a log directory.

    Args:
        runs: run name -> directory (as :func:`~gradscope.render.tb_plugin.runs.discover_runs`
            returns them).

    Returns:
        The runs a user trained, oldest first, then the fix trials, oldest first.

    Example:
        >>> [e.label for e in list_runs(discover_runs("reports/demo"))][:2]  # doctest: +SKIP
        ['before', 'after']
    """
    info = [(name, _created(path), is_trial(name, path)) for name, path in runs.items()]
    info.sort(key=lambda x: (x[2], x[1], x[0]))
    main = [x for x in info if not x[2]]
    labels = list(PAIR_LABELS) if len(main) == len(PAIR_LABELS) else [x[0] for x in main]
    colours = palette.run_colours(len(main))
    entries = [
        RunEntry(name, created, False, label, colour)
        for (name, created, _), label, colour in zip(main, labels, colours, strict=True)
    ]
    entries += [
        RunEntry(name, created, True, f"fix trial: {name}", None)
        for name, created, trial in info
        if trial
    ]
    return entries


def listing_json(runs: Mapping[str, Path]) -> dict[str, Any]:
    """The ``/runs`` response: the ordered runs and the shared palette.

    Args:
        runs: run name -> directory.

    Returns:
        ``{"runs": [RunEntry as dict, ...], "palette": palette.as_json()}``.

    Example:
        >>> listing_json({})["runs"]
        []
    """
    return {"runs": [asdict(e) for e in list_runs(runs)], "palette": palette.as_json()}
