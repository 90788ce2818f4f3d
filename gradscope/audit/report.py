"""The HTML report of ``gradscope audit``: the probe run with every finding (static and probe)."""

from __future__ import annotations

import os
from pathlib import Path

from gradscope.audit import AuditResult
from gradscope.errors import GradscopeInputError
from gradscope.render.html import render_report


def write_audit_report(
    result: AuditResult, out_path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Writes the HTML report of an audit from its probe run.

    The findings shown are the audit's (static rules and detectors together), not only those
    the run alone would give.

    Args:
        result: what :func:`gradscope.audit.audit` returned.
        out_path: the HTML file to write (atomically; parent folders are created).
        title: report title; default names the model.

    Returns:
        The path written.

    Raises:
        GradscopeInputError: the audit has no probe run (``steps=0``, or the model could not be
            rebuilt), so there are no statistics to show.

    Example:
        >>> write_audit_report(audit("model.keras", steps=30), "audit.html")  # doctest: +SKIP
        PosixPath('audit.html')
    """
    if result.run is None:
        raise GradscopeInputError(
            "No HTML report: the audit ran no probe, so nothing was recorded to show. Run it "
            "with --steps > 0 (and a model that loads)."
        )
    name = result.run.meta.model_name or "model"
    return render_report(
        result.run,
        out_path,
        title=title or f"gradscope audit: {name}",
        findings=list(result.findings),
    )


__all__ = ["write_audit_report"]
