"""End-of-fit diagnosis for the callback: detectors on the run, findings.json, a short summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gradscope.collect.session import RecordingSession
from gradscope.data.store import load_run
from gradscope.detect import detect
from gradscope.findings import Finding, write_findings


def diagnose(session: RecordingSession) -> list[Finding]:
    """Runs every detector on the session's run and stores the findings with it.

    Writes ``findings.json`` into the run directory and, when TensorBoard output is on, the
    findings as a text summary.

    Args:
        session: an open recording session (its files flushed).

    Returns:
        The findings, most severe first.

    Example:
        >>> findings = diagnose(callback.session)  # doctest: +SKIP
    """
    findings = detect(load_run(session.log_dir))
    write_findings(session.log_dir, findings)
    if session.tb is not None:
        step = session.last_record.step if session.last_record is not None else 0
        lines = [f"- **{f.severity}** `{f.code}` {f.kind}: {f.message}" for f in findings]
        session.tb.write_text("gradscope/findings", lines or ["No findings."], step=step)
    return findings


def print_findings(findings: list[Finding], log_dir: Path, console: Console | None = None) -> None:
    """Prints a short summary of findings (one line each) and where the run is.

    Args:
        findings: the findings.
        log_dir: the run directory.
        console: where to print; a default rich console if None.
    """
    console = console or Console()
    if not findings:
        console.print(f"gradscope: no findings. Run: {log_dir}", soft_wrap=True)
        return
    console.print(f"gradscope: {len(findings)} finding(s). Run: {log_dir}", soft_wrap=True)
    styles = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for f in findings:
        style = styles.get(str(f.severity), "")
        console.print(f"  [{style}]{f.severity}[/] {f.code} {f.kind}: {f.message}")
        if f.fixes:
            console.print(f"      fixes: {', '.join(f.fixes)}")
