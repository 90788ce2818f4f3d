"""Self-contained HTML report: one file, inline CSS, figures as data URIs, no external URLs.

The report is a Jinja2 template in ``gradscope/render/templates`` rendered with autoescape on from
the typed view model (:mod:`gradscope.render.view`); no HTML is assembled in Python.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2

from gradscope.data.store import atomic_write_bytes
from gradscope.errors import GradscopeInputError
from gradscope.findings import Finding
from gradscope.render.build import report_view
from gradscope.render.fmt import num, pct, sci
from gradscope.render.sources import RunInput, resolve
from gradscope.render.view import ReportView

TEMPLATE = "report.html.j2"


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gradscope.render", "templates"),
        # Always on, whatever the file extension: every run, layer and finding string is user data.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(sci=sci, pct=pct, num=num)
    return env


def render_html(view: ReportView) -> str:
    """Renders a report view to HTML text.

    Args:
        view: the report's view model.

    Returns:
        The complete HTML document.

    Example:
        >>> html = render_html(report_view(resolve("runs/mlp"), "mlp"))  # doctest: +SKIP
    """
    return _environment().get_template(TEMPLATE).render(report=view)


def _default_title(labels: Sequence[str]) -> str:
    return "gradscope report: " + " vs ".join(labels)


#: File suffixes accepted for HTML report paths.
HTML_SUFFIXES: tuple[str, ...] = (".html", ".htm")


def check_html_path(path: str | os.PathLike[str], option: str = "--html") -> Path:
    """Checks, before any work is done, that a report path names an ``.html`` file.

    Args:
        path: where the report will go.
        option: how the user passed it, for the message.

    Returns:
        The path.

    Raises:
        GradscopeInputError: the path does not end in ``.html``/``.htm`` or is a directory.

    Example:
        >>> check_html_path("out/report.html")
        PosixPath('out/report.html')
    """
    out = Path(path)
    if out.suffix.lower() not in HTML_SUFFIXES or out.is_dir():
        raise GradscopeInputError(
            f"{option} must be the path of an .html file to write. Received: '{out}'"
        )
    return out


def render_report(
    runs: RunInput | Sequence[RunInput] | Mapping[str, RunInput],
    out_path: str | os.PathLike[str],
    title: str | None = None,
    findings: Sequence[Finding] | Mapping[str, Sequence[Finding]] | None = None,
) -> Path:
    """Writes the HTML report of one run, or a before/after comparison of several.

    Args:
        runs: one run (a :class:`~gradscope.data.store.Run` or its directory), a sequence of
            runs (two are labelled ``"before"`` and ``"after"``), or a mapping label -> run.
        out_path: the HTML file to write (atomically; parent folders are created).
        title: report title; default names the runs.
        findings: findings of a single run, or a mapping label -> findings. Runs without given
            findings show their ``findings.json``, or a fresh :func:`gradscope.detect.detect`.

    Returns:
        The path written.

    Raises:
        GradscopeInputError: a run directory is missing or unreadable, or findings match no run.

    Example:
        >>> render_report(["runs/sick", "runs/fixed"], "report.html")  # doctest: +SKIP
        PosixPath('report.html')
    """
    path = Path(out_path)
    if path.is_dir():
        raise GradscopeInputError(
            f"'{path}' is a directory; pass the path of the HTML file to write, e.g. "
            f"'{path / 'report.html'}'."
        )
    items = resolve(runs, findings)
    view = report_view(items, title or _default_title([x.label for x in items]))
    try:
        atomic_write_bytes(path, render_html(view).encode("utf-8"))
    except OSError as err:
        raise GradscopeInputError(
            f"Cannot write the report to '{path}' ({err.strerror or err}); pass a writable path."
        ) from err
    return path
