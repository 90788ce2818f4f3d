"""What a renderer is asked to show: labelled runs and their findings, resolved from user input.

Runs may be given as loaded :class:`Run` objects, as run directories, or as the ``log_dir`` a
run was recorded under (its newest run; :func:`choice_note` says which, and what else is
there); findings may be given, or read from the run's ``findings.json``, or (when neither)
computed with :func:`gradscope.detect.detect`, so a report is never silently empty of
diagnosis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gradscope.data.rundirs import is_run_name, resolve_run
from gradscope.data.store import Run, RunFormatError, load_run
from gradscope.errors import GradscopeInputError, first_line
from gradscope.findings import Finding, read_findings, sort_findings

#: A run, or the directory of one.
RunInput = Run | str | os.PathLike[str]

#: Default labels of two compared runs: ``gradscope fix`` and the demo compare before and after.
PAIR_LABELS: tuple[str, str] = ("before", "after")


@dataclass(frozen=True)
class LabelledRun:
    """A run to render, with its label and findings.

    Attributes:
        label: shown as the run's heading.
        run: the loaded run.
        findings: its findings, most severe first.
    """

    label: str
    run: Run
    findings: tuple[Finding, ...]


def as_run(item: RunInput) -> Run:
    """Returns a loaded run, loading a directory when needed.

    Args:
        item: a Run, a run directory, or a ``log_dir`` holding runs (its newest is loaded).

    Returns:
        The run.

    Raises:
        GradscopeInputError: if the directory is not a readable run.

    Example:
        >>> run = as_run("runs/mlp")  # doctest: +SKIP
    """
    if isinstance(item, Run):
        return item
    try:
        return load_run(item)
    except RunFormatError as err:
        raise GradscopeInputError(str(err)) from err


def findings_of(run: Run) -> list[Finding]:
    """Returns a run's findings: its ``findings.json`` if written, else a fresh detection.

    Args:
        run: a loaded run.

    Returns:
        Findings, most severe first.

    Raises:
        GradscopeInputError: if ``findings.json`` exists but is unreadable.

    Example:
        >>> [f.kind for f in findings_of(run)]  # doctest: +SKIP
        ['vanishing_gradients']
    """
    try:
        stored = read_findings(run.path)
    except ValueError as err:
        raise GradscopeInputError(
            f"'{run.path}/findings.json' is unreadable ({first_line(err)}); delete it and the "
            "detectors run again on the recorded statistics."
        ) from err
    if stored or (run.path / "findings.json").exists():
        return sort_findings(stored)
    # Imported here: the detectors are only needed when no findings were stored.
    from gradscope.detect import detect

    return detect(run)


def choice_note(path: str | os.PathLike[str]) -> str | None:
    """Says which run a parent directory stands for, when it holds several.

    Args:
        path: a run directory or a ``log_dir`` holding runs.

    Returns:
        One line naming the newest run (the one read) and the others, oldest first; None when
        ``path`` means exactly one run.

    Example:
        >>> choice_note("runs/mlp")  # doctest: +SKIP
        "'runs/mlp' holds 2 runs; reporting the newest, '20261126-101500'. The other: ..."
    """
    chosen, others = resolve_run(path)
    if not others:
        return None
    root = Path(path)
    names = ", ".join("'.' (the folder itself)" if p == root else f"'{p.name}'" for p in others)
    return (
        f"'{path}' holds {len(others) + 1} runs; reporting the newest, '{chosen.name}'. "
        f"{'The other' if len(others) == 1 else 'The others, oldest first'}: {names}. "
        "Pass one of them to report it, or several to compare them."
    )


def _label(path: Path, full: bool = False) -> str:
    # A timestamped run is named by its log_dir ("mlp"), or "mlp/20261126-094012" when two
    # runs of one log_dir are shown together.
    if is_run_name(path.name) and path.parent.name:
        return f"{path.parent.name}/{path.name}" if full else path.parent.name
    return path.name or str(path)


def _default_labels(runs: Sequence[Run]) -> list[str]:
    if len(runs) == 2:
        return list(PAIR_LABELS)
    for full in (False, True):
        labels = [_label(r.path, full) for r in runs]
        if len(set(labels)) == len(labels):
            return labels
    # Two runs with the same directory name must still be told apart.
    return [f"{i + 1}. {x}" for i, x in enumerate(labels)]


def resolve(
    runs: RunInput | Sequence[RunInput] | Mapping[str, RunInput],
    findings: Sequence[Finding] | Mapping[str, Sequence[Finding]] | None = None,
) -> list[LabelledRun]:
    """Resolves the runs and findings a caller passed into labelled runs.

    Args:
        runs: one run, a sequence of runs (two are labelled ``before``/``after``), or a mapping
            label -> run. Runs may be directories.
        findings: for a single run, its findings; for several, a mapping label -> findings.
            Runs without given findings use :func:`findings_of`.

    Returns:
        The labelled runs in the given order.

    Raises:
        GradscopeInputError: no runs, an unreadable run, or findings that match no run.

    Example:
        >>> [r.label for r in resolve(["runs/sick", "runs/fixed"])]  # doctest: +SKIP
        ['before', 'after']
    """
    if isinstance(runs, Mapping):
        labels = [str(k) for k in runs]
        loaded = [as_run(v) for v in runs.values()]
    else:
        items = [runs] if isinstance(runs, (Run, str, os.PathLike)) else list(runs)
        loaded = [as_run(v) for v in items]
        labels = _default_labels(loaded)
    if not loaded:
        raise GradscopeInputError("No run to show. Pass at least one run directory.")
    given: Mapping[str, Sequence[Finding]]
    if findings is None:
        given = {}
    elif isinstance(findings, Mapping):
        unknown = sorted(set(findings) - set(labels))
        if unknown:
            raise GradscopeInputError(
                f"Findings given for unknown run labels {unknown}; the runs are {labels}."
            )
        given = findings
    elif len(loaded) == 1:
        given = {labels[0]: findings}
    else:
        raise GradscopeInputError(
            f"Several runs need findings as a mapping label -> findings. Labels: {labels}."
        )
    return [
        LabelledRun(
            label,
            run,
            tuple(sort_findings(given[label]) if label in given else findings_of(run)),
        )
        for label, run in zip(labels, loaded, strict=True)
    ]
