"""Fills the report's view model (:mod:`gradscope.render.view`) from labelled runs.

The pieces live one job a module: :mod:`~gradscope.render.rundata` arranges a run's statistics,
:mod:`~gradscope.render.run_summary` the verdict and layer rows,
:mod:`~gradscope.render.findings_view` the findings, :mod:`~gradscope.render.run_figures` one
run's figures. This module assembles a run's section, the comparison of several runs and the
report; compared runs share one gradient colour scale and the palette's run colours.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence

import numpy as np

from gradscope._version import __version__
from gradscope.findings import kind_title
from gradscope.render import figures, palette
from gradscope.render.findings_view import figure_view, finding_view
from gradscope.render.matrix import positive_range
from gradscope.render.run_figures import (
    act_hist_figure,
    act_stats_figure,
    depth_figure,
    fractions_figure,
    heatmap_figure,
    loss_figure,
    update_ratio_figure,
)
from gradscope.render.run_summary import (
    final_metrics,
    layer_rows,
    ratio_change,
    ratio_text,
    summary_view,
)
from gradscope.render.rundata import REPORT_STATS, RunData
from gradscope.render.sources import LabelledRun
from gradscope.render.view import (
    ComparisonRow,
    ComparisonView,
    LayerComparisonRow,
    ReportView,
    RunView,
)

# Re-exported: the terminal summary and the dashboard build on the same pieces.
__all__ = [
    "REPORT_STATS",
    "RunData",
    "comparison_view",
    "finding_view",
    "kind_title",
    "layer_rows",
    "report_view",
    "run_view",
    "shared_grad_scale",
    "summary_view",
]


def _anchor(label: str, index: int) -> str:
    # Ids must be unique and safe in HTML whatever the label; the label itself is shown escaped.
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"run{index}-{slug}" if slug else f"run{index}"


def shared_grad_scale(datas: Sequence[RunData]) -> tuple[float, float] | None:
    """The gradient-norm colour scale of compared runs: their joint positive range.

    Args:
        datas: the compared runs' data.

    Returns:
        ``(low, high)``, or None without any positive recorded gradient norm.

    Example:
        >>> shared_grad_scale([RunData.of(sick), RunData.of(fixed)])  # doctest: +SKIP
        (2.1e-09, 3.4)
    """
    return positive_range(d.sub("grad_norm", d.grad_layers) for d in datas)


def run_view(
    item: LabelledRun,
    index: int = 0,
    data: RunData | None = None,
    scale: tuple[float, float] | None = None,
) -> RunView:
    """Builds everything the report shows about one run.

    Args:
        item: the labelled run with its findings.
        index: position of the run in the report (for unique anchors).
        data: the run's arranged data, when already built.
        scale: gradient colour scale shared with compared runs; default the run's own.

    Returns:
        The run's view.

    Example:
        >>> run_view(resolve("runs/mlp")[0]).summary.verdict  # doctest: +SKIP
    """
    data = data or RunData.of(item.run, item.findings)
    findings = list(item.findings)
    fractions, notes = fractions_figure(data)
    return RunView(
        label=item.label,
        anchor=_anchor(item.label, index),
        path=str(item.run.path),
        summary=summary_view(data),
        findings=tuple(finding_view(f, data) for f in findings),
        layers=layer_rows(data, findings),
        heatmap=heatmap_figure(data, scale),
        depth=depth_figure(data),
        update_ratio=update_ratio_figure(data),
        fractions=fractions,
        act_stats=act_stats_figure(data),
        act_hist=act_hist_figure(data),
        loss=loss_figure(item.run),
        fraction_notes=notes,
    )


def comparison_view(
    items: Sequence[LabelledRun], datas: Sequence[RunData] | None = None
) -> ComparisonView:
    """Builds the overview of several runs (before/after a fix).

    Layers are matched by name; the depth figure uses the first run's layer order. Each run
    keeps its palette colour (:func:`gradscope.render.palette.run_colours`) in every figure.

    Args:
        items: the labelled runs, at least two.
        datas: their arranged data, when already built.

    Returns:
        The comparison.

    Example:
        >>> comparison_view(resolve(["runs/sick", "runs/fixed"])).labels  # doctest: +SKIP
        ('before', 'after')
    """
    datas = list(datas) if datas is not None else [RunData.of(x.run, x.findings) for x in items]
    colours = palette.run_colours(len(items))
    medians = [d.medians("grad_norm") for d in datas]
    names = list(dict.fromkeys(n for d in datas for n in d.grad_layers))
    rows = []
    for item, data in zip(items, datas, strict=True):
        summary = data.summary
        rows.append(
            ComparisonRow(
                label=item.label,
                verdict=summary.verdict,
                verdict_level=summary.verdict_level,
                errors=summary.counts["error"],
                warnings=summary.counts["warning"],
                final_loss=summary.final_loss,
                metrics=final_metrics(data.run),
                grad_ratio=ratio_text(summary),
            )
        )
    depth = None
    if names:
        profiles = [
            (x.label, np.array([m.get(n, np.nan) for n in names]))
            for x, m in zip(items, medians, strict=True)
        ]
        depth = figure_view(
            "Gradient norm by depth, compared",
            "Median gradient norm per layer over each run's summary window, input on the left.",
            figures.depth_profile(names, profiles, colours=colours),
            "compare-depth",
        )
    loss_series, loss_colours = [], []
    for x, colour in zip(items, colours, strict=True):
        steps, loss = x.run.series("loss")
        if len(steps):
            loss_series.append((x.label, steps, loss))
            loss_colours.append(colour)
    loss = (
        figure_view(
            "Loss, compared",
            "Recorded batch loss of each run.",
            figures.loss_and_lr(loss_series, colours=loss_colours),
            "compare-loss",
        )
        if loss_series
        else None
    )
    return ComparisonView(
        labels=tuple(x.label for x in items),
        rows=tuple(rows),
        layers=tuple(LayerComparisonRow(n, tuple(m.get(n) for m in medians)) for n in names),
        depth=depth,
        loss=loss,
        grad_ratio_change=ratio_change([d.summary for d in datas]),
    )


def report_view(items: Sequence[LabelledRun], title: str) -> ReportView:
    """Builds the whole report's view.

    Args:
        items: the labelled runs (one, or several to compare).
        title: the report title.

    Returns:
        The report's view.

    Example:
        >>> report_view(resolve("runs/mlp"), "mlp").runs[0].label  # doctest: +SKIP
        'mlp'
    """
    datas = [RunData.of(x.run, x.findings) for x in items]
    scale = shared_grad_scale(datas) if len(items) > 1 else None
    return ReportView(
        title=title,
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        runs=tuple(
            run_view(x, i, d, scale) for i, (x, d) in enumerate(zip(items, datas, strict=True))
        ),
        comparison=comparison_view(items, datas) if len(items) > 1 else None,
    )
