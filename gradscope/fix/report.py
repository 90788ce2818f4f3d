"""HTML report of ``gradscope fix``: the verification trials of the original and fixed model.

The trials that decided which fixes to keep are real recorded runs (see
:func:`gradscope.fix.verify.run_trial`), so the report shows them with the same sections as any
run: before/after comparison first, then each trial in full. A "Fix verification" section comes
first: how the trials trained, each candidate's verdict, and the learning curves (loss and
accuracy on held-out examples, epoch by epoch) of the original and the fixed model.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from gradscope.fix.auto import FixResult
from gradscope.fix.verify import TrialStats
from gradscope.render.html import render_report
from gradscope.trial.curve import LearningCurve

_SVG_W, _SVG_H, _PAD = 360, 160, 28


def _num(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _polyline(values: list[float | None], lo: float, hi: float, n: int, color: str) -> str:
    points = []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            continue
        x = _PAD + i * (_SVG_W - 2 * _PAD) / max(n - 1, 1)
        y = _SVG_H - _PAD - (v - lo) / ((hi - lo) or 1.0) * (_SVG_H - 2 * _PAD)
        points.append(f"{x:.1f},{y:.1f}")
    return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>'


def _chart(title: str, before: list[float | None], after: list[float | None]) -> str:
    finite = [v for v in before + after if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi, n = min(finite), max(finite), max(len(before), len(after))
    return (
        f'<figure class="fix-curve"><svg width="{_SVG_W}" height="{_SVG_H}" role="img" '
        f'aria-label="{html.escape(title)}">'
        f'<text x="{_PAD}" y="14" font-size="12">{html.escape(title)} '
        f"(grey: original, blue: fixed; {lo:.3g} to {hi:.3g})</text>"
        f"{_polyline(before, lo, hi, n, '#888')}{_polyline(after, lo, hi, n, '#1f6fd1')}"
        "</svg></figure>"
    )


def curves_html(before: LearningCurve, after: LearningCurve) -> str:
    """The learning curves of two trials as a table and two inline SVG charts.

    Args:
        before: the original's curve.
        after: the fixed model's curve.

    Returns:
        An HTML fragment.

    Example:
        >>> curves_html(v.before.curve, v.after.curve)[:8]  # doctest: +SKIP
        '<table>'
    """
    acc = before.has_accuracy and after.has_accuracy
    head = "<th>epoch</th><th>loss original</th><th>loss fixed</th>"
    head += "<th>accuracy original</th><th>accuracy fixed</th>" if acc else ""
    rows = []
    for p, q in zip(before.points, after.points, strict=False):
        cells = [f"{p.epoch:g}", _num(p.loss), _num(q.loss)]
        cells += [_num(p.accuracy), _num(q.accuracy)] if acc else []
        rows.append("<tr>" + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    charts = _chart("loss", [p.loss for p in before.points], [p.loss for p in after.points])
    if acc:
        charts += _chart(
            "accuracy",
            [p.accuracy for p in before.points],
            [p.accuracy for p in after.points],
        )
    return (
        f"<table data-fix-curves><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f"</table>{charts}"
    )


def verification_html(result: FixResult) -> str:
    """The "Fix verification" section: setup, each candidate's verdict, learning curves.

    Args:
        result: the fix result.

    Returns:
        An HTML ``<section>``.

    Example:
        >>> verification_html(result).startswith("<section")  # doctest: +SKIP
        True
    """
    parts = ['<section id="fix-verification" data-section="fix-verification">']
    parts.append("<h2>Fix verification: does the fixed model learn better?</h2>")
    if result.setup is not None:
        parts.append(f"<p>Trials train with: {html.escape(result.setup.describe())}.</p>")
    if result.outcomes:
        rows = "".join(
            f"<tr><td>{html.escape(o.fix_id)}</td><td>{'yes' if o.kept else 'no'}</td>"
            f"<td>{html.escape(o.reason)}</td></tr>"
            for o in result.outcomes
        )
        parts.append(
            "<table><thead><tr><th>fix</th><th>kept</th><th>why</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    if result.search is not None:
        parts.append(f"<p data-fix-search>{html.escape(result.search.describe())}</p>")
    b, a = result.overall.before.curve, result.overall.after.curve
    if b is not None and a is not None:
        parts.append(f"<h3>Learning, scored on {html.escape(b.scored_on)}, by epoch</h3>")
        parts.append(curves_html(b, a))
    parts.append("</section>")
    return "".join(parts)


def _insert_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    text = text.replace("<main>", "<main>\n" + section, 1)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
        path = write_trial_report(before, out_path, title=_title(result, steps))
    else:
        after_label = f"after: {', '.join(result.applied)}"
        path = render_report(
            {"before": before.run_dir, after_label: after.run_dir},
            out_path,
            title=_title(result, steps),
            findings={"before": list(before.findings), after_label: list(after.findings)},
        )
    _insert_section(path, verification_html(result))
    return path


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


__all__ = ["curves_html", "verification_html", "write_fix_report", "write_trial_report"]
