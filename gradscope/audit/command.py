"""``gradscope audit``: the command's behaviour as a plain function (the CLI only parses options).

Exit codes: 0 no finding at warning or above, 1 such findings, 2 bad input (one line on stderr,
no traceback unless ``GRADSCOPE_DEBUG=1``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from gradscope.detect.summary import RunSummary
from gradscope.errors import GradscopeInputError
from gradscope.findings import Severity, findings_to_json
from gradscope.render.terminal import findings_grid, ratio_line

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
        0 if no finding is a warning or worse, 1 if some are, 2 for bad input.

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
        doc = findings_to_json(result.findings) | {"summary": summary_json(summary)}
        print(json.dumps(doc, indent=1, allow_nan=False), file=out)
    else:
        console = Console(file=out)
        for note in result.notes:
            console.print(f"note: {note}", soft_wrap=True)
        if result.findings:
            console.print(findings_grid(result.findings))
        else:
            console.print("gradscope: no findings.")
        line = None if summary is None else ratio_line(summary)
        if line is not None:
            console.print(line, soft_wrap=True)
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
