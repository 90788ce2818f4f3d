"""``gradscope audit``: the command's behaviour as a plain function (the CLI only parses options).

Exit codes: 0 no finding at warning or above, 1 such findings, 2 bad input (one line on stderr,
no traceback unless ``GRADSCOPE_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from rich.console import Console

from gradscope.errors import GradscopeInputError
from gradscope.findings import Severity, dumps_findings
from gradscope.render.terminal import findings_grid

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


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

    Returns:
        0 if no finding is a warning or worse, 1 if some are, 2 for bad input.

    Example:
        >>> audit_command(Path("model.h5"), as_json=True)  # doctest: +SKIP
        1
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        from gradscope.audit import audit
        from gradscope.audit.probe import load_npz_data

        if html is not None:
            from gradscope.render.html import check_html_path

            # Checked before the probe runs: a bad path should not cost the whole audit.
            check_html_path(html)
            if steps == 0:
                raise GradscopeInputError(
                    "--html shows the probe's statistics; drop --steps 0 or pass --steps N > 0."
                )
        arrays = load_npz_data(data) if data is not None else None
        result = audit(model, data=arrays, steps=steps, unsafe=unsafe)
    except GradscopeInputError as error:
        return _bad_input(error, err)
    if as_json:
        print(dumps_findings(result.findings), file=out)
    else:
        console = Console(file=out)
        for note in result.notes:
            console.print(f"note: {note}", soft_wrap=True)
        if result.findings:
            console.print(findings_grid(result.findings))
        else:
            console.print("gradscope: no findings.")
        if result.run_dir is not None:
            console.print(f"Probe run: {result.run_dir}", soft_wrap=True)
    if html is not None:
        from gradscope.audit.report import write_audit_report

        try:
            path = write_audit_report(result, html)
        except GradscopeInputError as error:
            return _bad_input(error, err)
        # stdout stays pure JSON with --json.
        print(f"HTML report written to {path}", file=err if as_json else out)
    worst = result.worst
    return EXIT_FINDINGS if worst is not None and worst >= Severity.WARNING else EXIT_OK
