"""``gradscope audit``: the command's behaviour as a plain function (the CLI only parses options).

Exit codes (:data:`EXIT_CODES`): 0 examined and no finding at warning or above, 1 findings at
warning or above, 2 bad input (one line on stderr, no traceback unless ``GRADSCOPE_DEBUG=1``),
3 not examined: the probe could not run (or nothing could be read) and no finding at warning or
above came from what did run. An audit that examined nothing is never a pass.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console

from gradscope.detect.summary import RunSummary
from gradscope.errors import GradscopeInputError
from gradscope.findings import Severity, findings_to_json
from gradscope.render.terminal import findings_grid, ratio_line

if TYPE_CHECKING:
    from gradscope.audit import AuditResult

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_EXAMINED = 3
#: What each exit code means (README's table says the same).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "examined; no finding at warning or above",
    EXIT_FINDINGS: "findings at warning or above (also when the probe did not run)",
    EXIT_BAD_INPUT: "bad input: one line on stderr",
    EXIT_NOT_EXAMINED: "not examined: the probe could not run; no finding at warning or above",
}


def _bad_input(error: GradscopeInputError, err: TextIO) -> int:
    if os.environ.get("GRADSCOPE_DEBUG") == "1":
        raise error
    message = " ".join(str(error).split())  # exactly one line, whatever the message held
    print(f"gradscope audit: {message}", file=err)
    return EXIT_BAD_INPUT


def audit_command(
    model: Path,
    data: Path | None = None,
    steps: int | None = None,
    as_json: bool = False,
    unsafe: bool = False,
    html: Path | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    custom_objects: Sequence[str] = (),
) -> int:
    """Runs ``gradscope audit`` and returns its exit code.

    Args:
        model: the ``.keras`` or ``.h5`` file.
        data: optional ``.npz`` with arrays ``x`` and ``y``.
        steps: probe training steps (None: the default; 0: static rules only).
        as_json: print the findings document (strict JSON) to stdout instead of a table.
        unsafe: allow Lambda layers and unknown custom objects (runs code from the file).
        html: also write the HTML report of the probe run (with every finding) to this file.
        stdout: where results go (default ``sys.stdout``).
        stderr: where the one-line error goes (default ``sys.stderr``).
        custom_objects: ``"module:name"`` of custom classes/functions the file needs; each
            module is imported (see :func:`gradscope.model.custom.import_custom_objects`).

    Returns:
        1 if some finding is a warning or worse; else 0 if everything asked for was examined,
        3 if not (the probe could not run); 2 for bad input.

    Example:
        >>> audit_command(Path("model.h5"), as_json=True)  # doctest: +SKIP
        1
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        from gradscope.audit import audit
        from gradscope.model.custom import import_custom_objects
        from gradscope.trial.data import load_npz_data

        if html is not None:
            from gradscope.render.html import check_html_path

            # Checked before the probe runs: a bad path should not cost the whole audit.
            check_html_path(html)
            if steps == 0:
                raise GradscopeInputError(
                    "--html shows the probe's statistics; drop --steps 0 or pass --steps N > 0."
                )
        custom = import_custom_objects(custom_objects)
        arrays = load_npz_data(data) if data is not None else None
        result = audit(model, data=arrays, steps=steps, unsafe=unsafe, custom_objects=custom)
    except GradscopeInputError as error:
        return _bad_input(error, err)
    # The probe run's derived numbers, computed once for whichever view prints them.
    summary = None if result.run is None else RunSummary.of(result.run, result.findings)
    if as_json:
        print(json.dumps(audit_json(result, summary), indent=1, allow_nan=False), file=out)
    else:
        print_text(result, summary, out)
    if html is not None:
        from gradscope.audit.report import write_audit_report

        if result.run is None:
            # No statistics to show; the status and exit code already say why.
            print("gradscope audit: no HTML report: the probe did not run.", file=err)
        else:
            try:
                path = write_audit_report(result, html)
            except GradscopeInputError as error:
                return _bad_input(error, err)
            # stdout stays pure JSON with --json.
            print(f"HTML report written to {path}", file=err if as_json else out)
    return exit_code(result)


def exit_code(result: AuditResult) -> int:
    """The exit code of an audit's result (see :data:`EXIT_CODES`).

    Findings outrank completeness: what was found is true whether or not the probe ran, and the
    JSON ``status`` tells the rest. Without such findings, only a complete audit passes.

    Args:
        result: what :func:`gradscope.audit.audit` returned.

    Returns:
        :data:`EXIT_FINDINGS`, :data:`EXIT_OK` or :data:`EXIT_NOT_EXAMINED`.

    Example:
        >>> exit_code(audit("custom.keras", unsafe=True))  # doctest: +SKIP
        3
    """
    worst = result.worst
    if worst is not None and worst >= Severity.WARNING:
        return EXIT_FINDINGS
    return EXIT_OK if result.coverage.complete else EXIT_NOT_EXAMINED


def audit_json(result: AuditResult, summary: RunSummary | None) -> dict[str, Any]:
    """The ``--json`` document: findings, status, what was and was not examined, notes.

    Args:
        result: what :func:`gradscope.audit.audit` returned.
        summary: the probe run's summary, or None without a probe.

    Returns:
        ``{"schema_version", "findings", "status", "examined", "not_examined", "notes",
        "summary"}`` (see README, "audit --json").

    Example:
        >>> audit_json(audit("custom.keras", unsafe=True), None)["status"]  # doctest: +SKIP
        'probe_not_run'
    """
    return (
        findings_to_json(result.findings)
        | result.coverage.to_json()
        | {"notes": list(result.notes), "summary": summary_json(summary)}
    )


def print_text(result: AuditResult, summary: RunSummary | None, out: TextIO) -> None:
    """The text output: notes (whole), findings, what was examined, the ratio line, the run.

    Args:
        result: what :func:`gradscope.audit.audit` returned.
        summary: the probe run's summary, or None without a probe.
        out: where to print.

    Example:
        >>> print_text(audit("model.keras"), None, sys.stdout)  # doctest: +SKIP
    """
    console = Console(file=out)

    def say(text: str) -> None:
        # Whole, as written: no wrapping, and brackets in Keras's messages are not markup.
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    for note in result.notes:
        say(f"note: {note}")
    coverage = result.coverage
    if result.findings:
        console.print(findings_grid(result.findings))
    elif coverage.complete:
        console.print("gradscope: no findings.")
    else:
        say("gradscope: no findings from what ran, but the model was not examined in training.")
    say(coverage.summary_line())
    line = None if summary is None else ratio_line(summary)
    if line is not None:
        say(line)
    if result.run_dir is not None:
        say(f"Probe run: {result.run_dir}")


def summary_json(summary: RunSummary | None) -> dict[str, Any] | None:
    """The probe run's derived numbers for ``--json``, under the keys every view uses.

    Args:
        summary: the probe run's summary, or None when no probe ran.

    Returns:
        :meth:`gradscope.detect.summary.RunSummary.to_json`: the first/last gradient ratio's
        fields (only ``first_last_grad_ratio: null`` of them when not measurable), the verdict and
        the window medians per layer; None without a probe.

    Example:
        >>> summary_json(RunSummary.of(audit("model.keras").run))["first_last_grad_ratio"]
        ... # doctest: +SKIP
        6.2e-07
    """
    return None if summary is None else summary.to_json()
