"""A finding as the report and the dashboard show it: title, evidence lines, fixes, figure.

Titles come from the kind registry (:func:`gradscope.findings.kind_title`); evidence figures are
built by one function per finding kind (a registry, not an isinstance chain) from the run's
arranged data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradscope.detect.step_size import UPDATE_RATIO_KEY
from gradscope.findings import Finding, kind_title
from gradscope.remedies import CATALOG
from gradscope.render import figures
from gradscope.render.fmt import num, sci
from gradscope.render.plotting import Plot
from gradscope.render.rundata import RunData
from gradscope.render.view import EvidenceItem, FigureView, FindingView, FixView

#: Evidence values longer than this are shortened in the report (the JSON keeps them whole).
MAX_EVIDENCE_CHARS = 240


def figure_view(title: str, caption: str, plot: Plot, kind: str = "") -> FigureView:
    """Wraps a drawn plot for the template.

    Args:
        title: short heading.
        caption: how to read it.
        plot: the drawn figure.
        kind: what the figure is (``"heatmap"``, ...), written as ``data-figure``.

    Returns:
        The figure's view; its facts become ``data-*`` attributes.

    Example:
        >>> figure_view("Loss", "Batch loss.", Plot("data:image/png;base64,")).alt
        'Loss. Batch loss.'
    """
    return FigureView(
        title=title,
        caption=caption,
        src=plot.src,
        alt=f"{title}. {caption}",
        kind=kind,
        facts=plot.facts,
    )


# -- evidence figures, one builder per finding kind (a registry, not an isinstance chain) ------


def _depth_evidence(data: RunData, finding: Finding) -> FigureView | None:
    if not data.grad_layers:
        return None
    median = data.median_array("grad_norm", data.grad_layers)
    plot = figures.depth_profile(
        data.grad_layers,
        [("median gradient norm (summary window)", median)],
        highlight=finding.layers,
    )
    return figure_view(
        "Gradient norm by depth",
        "Median gradient norm per layer, input on the left; shaded: layers named by the finding.",
        plot,
        "evidence",
    )


def _lines_evidence(stat: str, title: str) -> Callable[[RunData, Finding], FigureView | None]:
    def build(data: RunData, finding: Finding) -> FigureView | None:
        layers = [x for x in finding.layers if x in data.act_layers] or list(data.act_layers)
        m = data.sub(stat, layers)
        if not m.has_data():
            return None
        plot = figures.layer_lines(m, title, log=False)
        caption = f"{title} of the layers named by the finding, over steps."
        return figure_view(title, caption, plot, "evidence")

    return build


def _nonfinite_evidence(data: RunData, finding: Finding) -> FigureView | None:
    del finding  # the picture is the whole run's loss, with the NaN/Inf gap visible
    steps, loss = data.run.series("loss")
    if not len(steps):
        return None
    plot = figures.loss_and_lr([("batch loss", steps, loss)])
    caption = "Batch loss over steps; NaN/Inf values leave the curve."
    return figure_view("Loss", caption, plot, "evidence")


def _step_size_evidence(data: RunData, finding: Finding) -> FigureView | None:
    del data  # drawn from the finding's own per-layer ratios: the numbers it judged
    ratios = finding.evidence.get("update_ratio")
    if not isinstance(ratios, Mapping) or not ratios:
        return None
    layers = list(ratios)
    values = np.array([float(ratios[x]) for x in layers])
    # Shading every layer would only tint the band: shade the named ones when they are a few.
    named = tuple(finding.layers) if set(finding.layers) < set(layers) else ()
    plot = figures.depth_profile(
        layers,
        [("median update ratio (summary window)", values)],
        ylabel="update ratio ‖Δw‖/‖w‖",
        highlight=named,
        band=figures.UPDATE_RATIO_BAND,
        target=figures.UPDATE_RATIO_TARGET,
    )
    median = _format_evidence(finding.evidence.get(UPDATE_RATIO_KEY))
    caption = (
        "Median update ratio per weight layer, input on the left; the dashed line is "
        f"{figures.UPDATE_RATIO_TARGET:g} (CS231n's rule of thumb), the band one order of "
        f"magnitude either side. The finding judges their median, {median}"
        + ("; shaded: the layers it names." if named else ".")
    )
    return figure_view("Update ratio by depth", caption, plot, "evidence")


_EVIDENCE: Mapping[str, Callable[[RunData, Finding], FigureView | None]] = {
    "vanishing_gradients": _depth_evidence,
    "exploding_gradients": _depth_evidence,
    "dying_relu": _lines_evidence("dead_frac", "Fraction of dead units"),
    "saturation": _lines_evidence("sat_frac", "Fraction of saturated units"),
    "nonfinite": _nonfinite_evidence,
    "unstable_loss": _step_size_evidence,
    "slow_convergence": _step_size_evidence,
}


def _format_evidence(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = str(value)
    elif isinstance(value, int):
        text = num(value)
    elif isinstance(value, float):
        text = sci(value) if value != 0 and not 1e-2 <= abs(value) < 1e4 else num(value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {_format_evidence(v)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_format_evidence(v) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= MAX_EVIDENCE_CHARS else text[: MAX_EVIDENCE_CHARS - 1] + "…"


def finding_view(finding: Finding, data: RunData | None) -> FindingView:
    """Builds the view of one finding, with its evidence figure when the run has the data.

    Args:
        finding: the finding.
        data: the run's arranged data, or None for findings without a run (static audit).

    Returns:
        The finding's view.

    Example:
        >>> finding_view(finding, RunData.of(run)).title  # doctest: +SKIP
        'Vanishing gradients'
    """
    builder = _EVIDENCE.get(finding.kind)
    figure = builder(data, finding) if builder is not None and data is not None else None
    fixes = tuple(
        FixView(f.id, f.title, f.description) if (f := CATALOG.get(fid)) else FixView(fid, fid, "")
        for fid in finding.fixes
    )
    return FindingView(
        code=finding.code,
        kind=finding.kind,
        title=kind_title(finding.kind),
        severity=str(finding.severity),
        layers=finding.layers,
        message=finding.message,
        evidence=tuple(
            EvidenceItem(str(k), _format_evidence(v)) for k, v in finding.evidence.items()
        ),
        fixes=fixes,
        figure=figure,
    )
