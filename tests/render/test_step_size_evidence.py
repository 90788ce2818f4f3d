"""The learning-rate findings (GS106, GS107) show the update ratios they judged, in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lr_runs import fit
from report_html import Page

from gradscope.detect.step_size import UPDATE_RATIO_KEY
from gradscope.render.findings_view import finding_view
from gradscope.render.html import render_report
from gradscope.render.rundata import RunData


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [("sgd_100x_high", "unstable_loss", "GS106"), ("sgd_too_low", "slow_convergence", "GS107")],
)
def test_the_figure_draws_the_ratios_the_finding_judged(name, kind, code, tmp_path: Path) -> None:
    run = fit(name)
    finding = run.serious()[kind]
    ratios = finding.evidence["update_ratio"]
    # The evidence's median is the median of its own per-layer ratios (numpy, not gradscope).
    assert finding.evidence[UPDATE_RATIO_KEY] == pytest.approx(np.median(list(ratios.values())))
    view = finding_view(finding, RunData.of(run.run))
    assert view.code == code and view.figure is not None and view.figure.kind == "evidence"
    # One number, one definition: the caption quotes the median exactly as the evidence list.
    shown = {item.name: item.value for item in view.evidence}[UPDATE_RATIO_KEY]
    quoted = (f"their median, {shown};", f"their median, {shown}.")
    assert any(q in view.figure.caption for q in quoted)
    assert view.figure.src.startswith("data:image/png;base64,")

    out = render_report(run.run.path, tmp_path / "report.html", findings=run.findings)
    html = out.read_text(encoding="utf-8")
    findings_part = html.split('data-section="findings"')[1].split("</section>")[0]
    figures = [f for f in Page(findings_part).tags("figure") if f.get("data-figure") == "evidence"]
    assert figures, "no evidence figure in the report's findings"
    assert any(q in findings_part for q in quoted)
