"""HTML report of ``gradscope fix``: the verification trials of the original and fixed model.

The trials that decided which fixes to keep are real recorded runs (see
:func:`gradscope.fix.verify.run_trial`), so the report shows them with the same sections as any
run: before/after comparison first, then each trial in full.
"""

from __future__ import annotations

import os
from pathlib import Path

from gradscope.fix.auto import FixResult
from gradscope.fix.verify import TrialStats
from gradscope.render.html import render_report


def _title(result: FixResult, steps: int) -> str:
    applied = ", ".join(result.applied)
    if not applied:
        return f"gradscope fix: no fix kept ({steps}-step trial of the original)"
    status = "verified" if result.verified else "not verified"
    return f"gradscope fix: {applied} ({status} on a {steps}-step trial)"


def write_fix_report(result: FixResult, out_path: str | os.PathLike[str]) -> Path:
    """Writes the before/after HTML report of a fix from its verification trials.

    With at least one fix applied, the report compares the original's trial (``before``) with
    the final model's (``after: <fix ids>``); with none, it shows the original's trial alone.
    Each trial is shown with the findings it was judged by (run detectors and static rules).

    Args:
        result: what :func:`gradscope.fix.auto_fix` or :func:`gradscope.fix.fix_model` returned.
        out_path: the HTML file to write (atomically; parent folders are created).

    Returns:
        The path written.

    Raises:
        GradscopeInputError: a trial run directory is missing or unreadable.

    Example:
        >>> write_fix_report(auto_fix(model, x, y), "fix.html")  # doctest: +SKIP
        PosixPath('fix.html')
    """
    before, after = result.overall.before, result.overall.after
    steps = len(before.losses)
    if not result.applied or after.run_dir == before.run_dir:
        return write_trial_report(before, out_path, title=_title(result, steps))
    after_label = f"after: {', '.join(result.applied)}"
    return render_report(
        {"before": before.run_dir, after_label: after.run_dir},
        out_path,
        title=_title(result, steps),
        findings={"before": list(before.findings), after_label: list(after.findings)},
    )


def write_trial_report(
    trial: TrialStats, out_path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Writes the HTML report of one trial (``gradscope fix`` without ``--apply``/``--auto``).

    Args:
        trial: the trial of the original model.
        out_path: the HTML file to write.
        title: report title; default says it is the original's trial.

    Returns:
        The path written.

    Example:
        >>> write_trial_report(run_trial(model, x, y, "runs/t", 40, 0), "t.html")  # doctest: +SKIP
        PosixPath('t.html')
    """
    steps = len(trial.losses)
    return render_report(
        {"original": trial.run_dir},
        out_path,
        title=title or f"gradscope fix: {steps}-step trial of the original model",
        findings={"original": list(trial.findings)},
    )


__all__ = ["write_fix_report", "write_trial_report"]
