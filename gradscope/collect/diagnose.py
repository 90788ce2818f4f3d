"""End-of-fit diagnosis for the callback: detectors on the run, findings.json, a short summary."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from gradscope.collect.session import RecordingSession
from gradscope.data.store import load_run
from gradscope.detect import detect
from gradscope.findings import Finding, Severity, write_findings

#: Step records the callback's diagnoses read, evenly spaced (plus the last and the first
#: non-finite one; see :func:`gradscope.data.load_run`): host memory stays flat however long the
#: fit. About the spacing ``max_records`` decimation on disk leaves, which the detectors judge.
#: 1000, not more: the loss-trend test (Theil-Sen) holds n^2/2 pairs, ~90 MiB at n = 2000.
DIAGNOSIS_RECORDS = 1000

#: Finding kinds that stop training when ``on_finding="stop"``.
STOPPING_KINDS = frozenset({"nonfinite", "exploding_gradients"})


def diagnose(session: RecordingSession) -> list[Finding]:
    """Runs every detector on the session's run and stores the findings with it.

    Reads at most :data:`DIAGNOSIS_RECORDS` step records. Writes ``findings.json`` into the run
    directory and, when TensorBoard output is on, the findings as a text summary.

    Args:
        session: an open recording session (its files flushed).

    Returns:
        The findings, most severe first.

    Example:
        >>> findings = diagnose(callback.session)  # doctest: +SKIP
    """
    findings = detect(load_run(session.run_dir, max_records=DIAGNOSIS_RECORDS))
    write_findings(session.run_dir, findings)
    if session.tb is not None:
        step = session.last_record.step if session.last_record is not None else 0
        lines = [f"- **{f.severity}** `{f.code}` {f.kind}: {f.message}" for f in findings]
        session.tb.write_text("gradscope/findings", lines or ["No findings."], step=step)
    return findings


def warn_new_findings(
    run_dir: Path, warned: set[tuple[str, tuple[str, ...]]], kinds: tuple[str, ...] | None = None
) -> list[Finding]:
    """Diagnoses a run so far and warns once per new finding at warning level or above.

    Args:
        run_dir: the run directory.
        warned: ``(kind, layers)`` of findings already warned about; updated in place.
        kinds: only these detectors (None: all).

    Returns:
        The findings newly warned about.

    Example:
        >>> new = warn_new_findings(callback.run_dir, set())  # doctest: +SKIP
    """
    new = []
    for finding in detect(load_run(run_dir, max_records=DIAGNOSIS_RECORDS), kinds=kinds):
        key = (finding.kind, finding.layers)
        if finding.severity < Severity.WARNING or key in warned:
            continue
        warned.add(key)
        warnings.warn(f"gradscope [{finding.code}] {finding.message}", stacklevel=3)
        new.append(finding)
    return new


def print_findings(
    findings: list[Finding],
    run_dir: Path,
    console: Console | None = None,
    notes: Sequence[str] = (),
    recorded: bool = True,
) -> None:
    """Prints a short summary of findings (one line each) and where the run is.

    Args:
        findings: the findings.
        run_dir: the run directory (printed, so the user knows which run to open).
        console: where to print; a default rich console if None.
        notes: what could not be recorded, one line each (printed after the findings).
        recorded: False when the run holds no step record: then nothing was diagnosed, which
            is said instead of "no findings".
    """
    console = console or Console()
    _print_summary(findings, run_dir, console, recorded)
    for note in notes:
        console.print(f"  [yellow]not recorded[/]: {note}", soft_wrap=True, highlight=False)


def _print_summary(
    findings: list[Finding], run_dir: Path, console: Console, recorded: bool
) -> None:
    if not recorded:
        console.print(
            f"gradscope: nothing recorded, nothing diagnosed. Run: {run_dir}", soft_wrap=True
        )
        return
    if not findings:
        console.print(f"gradscope: no findings. Run: {run_dir}", soft_wrap=True)
        return
    console.print(f"gradscope: {len(findings)} finding(s). Run: {run_dir}", soft_wrap=True)
    styles = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for f in findings:
        style = styles.get(str(f.severity), "")
        console.print(f"  [{style}]{f.severity}[/] {f.code} {f.kind}: {f.message}")
        if f.fixes:
            console.print(f"      fixes: {', '.join(f.fixes)}")
