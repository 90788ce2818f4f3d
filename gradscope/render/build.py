"""Fills the view model (:mod:`gradscope.render.view`) from labelled runs and their findings.

Arranging and aggregating recorded values (window medians, last values, counts) happens here; the
template only formats. Figures come from :mod:`gradscope.render.figures`.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradscope._version import __version__
from gradscope.data.store import Run
from gradscope.findings import Finding, Severity
from gradscope.fix.catalog import CATALOG
from gradscope.render import figures
from gradscope.render.fmt import num, sci
from gradscope.render.matrix import (
    SUMMARY_WINDOW_FRACTION,
    StatMatrix,
    layers_with,
    moment_indices,
    stat_matrices,
    window_median,
)
from gradscope.render.sources import LabelledRun
from gradscope.render.view import (
    ComparisonRow,
    ComparisonView,
    EvidenceItem,
    FigureView,
    FindingView,
    FixView,
    LayerComparisonRow,
    LayerRow,
    Metric,
    ReportView,
    RunView,
    SeverityCount,
    SummaryView,
)

#: Statistics the report arranges as layers × records.
REPORT_STATS: tuple[str, ...] = (
    "grad_norm",
    "update_ratio",
    "dead_frac",
    "sat_frac",
    "act_mean",
    "act_std",
    "nonfinite",
)

#: Human titles of finding kinds; other kinds are titled from their id.
KIND_TITLES: Mapping[str, str] = {
    "vanishing_gradients": "Vanishing gradients",
    "exploding_gradients": "Exploding gradients",
    "dying_relu": "Dying ReLU units",
    "saturation": "Saturated activations",
    "nonfinite": "NaN/Inf values",
    "init_activation_mismatch": "Initializer does not match activation",
    "selu_misconfigured": "SELU network misconfigured",
    "deep_saturating_stack": "Deep stack of saturating activations",
    "missing_clipping": "No gradient clipping",
}

#: Evidence values longer than this are shortened in the report (the JSON keeps them whole).
MAX_EVIDENCE_CHARS = 240


def kind_title(kind: str) -> str:
    """Returns the human title of a finding kind.

    Args:
        kind: a finding kind, e.g. ``"dying_relu"``.

    Returns:
        The title, e.g. ``"Dying ReLU units"``; unknown kinds are titled from the id.

    Example:
        >>> kind_title("some_new_kind")
        'Some new kind'
    """
    return KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())


@dataclass(frozen=True)
class RunData:
    """A run with its statistics arranged once, shared by every figure and table of the run.

    Attributes:
        run: the run.
        matrices: :data:`REPORT_STATS` as layers × records.
        grad_layers: layers with recorded gradients, forward order.
        act_layers: layers with recorded activation statistics, forward order.
    """

    run: Run
    matrices: Mapping[str, StatMatrix]
    grad_layers: tuple[str, ...]
    act_layers: tuple[str, ...]

    @classmethod
    def of(cls, run: Run) -> RunData:
        """Arranges a run's statistics.

        Args:
            run: a loaded run.

        Returns:
            The arranged data.
        """
        matrices = stat_matrices(run, REPORT_STATS)
        grad = layers_with([matrices["grad_norm"]])
        acts = layers_with([matrices[s] for s in ("dead_frac", "sat_frac", "act_mean")])
        return cls(run, matrices, tuple(grad), tuple(acts))

    def sub(self, stat: str, layers: Sequence[str]) -> StatMatrix:
        """Returns the rows of ``layers`` of one statistic.

        Args:
            stat: one of :data:`REPORT_STATS`.
            layers: layer names.

        Returns:
            A matrix with those rows only.
        """
        m = self.matrices[stat]
        rows = [m.layers.index(x) for x in layers]
        return StatMatrix(stat, tuple(layers), m.steps, m.values[rows])

    def medians(self, stat: str) -> dict[str, float]:
        """Window median per layer of one statistic (finite values only).

        Args:
            stat: one of :data:`REPORT_STATS`.

        Returns:
            layer -> median, for layers that have one.
        """
        m = self.matrices[stat]
        return {
            name: float(v)
            for name, v in zip(m.layers, window_median(m), strict=True)
            if math.isfinite(v)
        }


def _fig(title: str, caption: str, src: str) -> FigureView:
    return FigureView(title=title, caption=caption, src=src, alt=f"{title}. {caption}")


# -- evidence figures, one builder per finding kind (a registry, not an isinstance chain) ------


def _depth_evidence(data: RunData, finding: Finding) -> FigureView | None:
    if not data.grad_layers:
        return None
    median = window_median(data.sub("grad_norm", data.grad_layers))
    src = figures.depth_profile(
        data.grad_layers,
        [("median gradient norm (summary window)", median)],
        highlight=finding.layers,
    )
    return _fig(
        "Gradient norm by depth",
        "Median gradient norm per layer, input on the left; shaded: layers named by the finding.",
        src,
    )


def _lines_evidence(stat: str, title: str) -> Callable[[RunData, Finding], FigureView | None]:
    def build(data: RunData, finding: Finding) -> FigureView | None:
        layers = [x for x in finding.layers if x in data.act_layers] or list(data.act_layers)
        m = data.sub(stat, layers)
        if not m.has_data():
            return None
        src = figures.layer_lines(m, title, log=False)
        return _fig(title, f"{title} of the layers named by the finding, over steps.", src)

    return build


def _nonfinite_evidence(data: RunData, finding: Finding) -> FigureView | None:
    del finding  # the picture is the whole run's loss, with the NaN/Inf gap visible
    steps, loss = data.run.series("loss")
    if not len(steps):
        return None
    src = figures.loss_and_lr([("batch loss", steps, loss)])
    return _fig("Loss", "Batch loss over steps; NaN/Inf values leave the curve.", src)


_EVIDENCE: Mapping[str, Callable[[RunData, Finding], FigureView | None]] = {
    "vanishing_gradients": _depth_evidence,
    "exploding_gradients": _depth_evidence,
    "dying_relu": _lines_evidence("dead_frac", "Fraction of dead units"),
    "saturation": _lines_evidence("sat_frac", "Fraction of saturated units"),
    "nonfinite": _nonfinite_evidence,
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


def _layer_severity(findings: Sequence[Finding]) -> dict[str, Severity]:
    worst: dict[str, Severity] = {}
    for f in findings:
        for name in f.layers:
            worst[name] = max(worst.get(name, f.severity), f.severity)
    return worst


def layer_rows(data: RunData, findings: Sequence[Finding]) -> tuple[LayerRow, ...]:
    """One row per model layer with its window-median statistics and worst finding severity.

    Args:
        data: the run's arranged data.
        findings: the run's findings.

    Returns:
        Rows in forward order.

    Example:
        >>> [r.name for r in layer_rows(RunData.of(run), [])]  # doctest: +SKIP
    """
    med = {s: data.medians(s) for s in REPORT_STATS}
    worst = _layer_severity(findings)
    rows = []
    for info in data.run.layers:
        sev = worst.get(info.name)
        rows.append(
            LayerRow(
                name=info.name,
                class_name=info.class_name,
                activation=info.activation,
                initializer=info.kernel_initializer,
                units=info.units,
                params=info.params,
                trainable=info.trainable,
                watched=info.watched,
                grad_norm=med["grad_norm"].get(info.name),
                update_ratio=med["update_ratio"].get(info.name),
                dead_frac=med["dead_frac"].get(info.name),
                sat_frac=med["sat_frac"].get(info.name),
                act_mean=med["act_mean"].get(info.name),
                act_std=med["act_std"].get(info.name),
                severity=None if sev is None else str(sev),
            )
        )
    return tuple(rows)


def verdict(findings: Sequence[Finding], n_records: int) -> tuple[str, str]:
    """Returns the one-line verdict and its level from the findings.

    Args:
        findings: the run's findings.
        n_records: recorded steps (a run without any cannot be judged).

    Returns:
        ``(text, level)`` with level in :data:`~gradscope.render.view.VERDICT_LEVELS`.

    Example:
        >>> verdict([], 10)
        ('No problems found.', 'ok')
    """
    for severity, word in ((Severity.ERROR, "Problems"), (Severity.WARNING, "Warnings")):
        hits = [f for f in findings if f.severity == severity]
        if hits:
            kinds = list(dict.fromkeys(kind_title(f.kind).lower() for f in hits))
            return f"{word}: {', '.join(kinds)}.", str(severity)
    if n_records == 0:
        return "No training steps recorded: nothing to judge yet.", "info"
    if findings:
        return "Notes only, no problems found.", "info"
    return "No problems found.", "ok"


def _final_loss(run: Run) -> float | None:
    for record in reversed(run.records):
        if record.loss is not None and math.isfinite(record.loss):
            return record.loss
    return None


def _metrics(run: Run) -> tuple[Metric, ...]:
    if not run.epochs:
        return ()
    logs = run.epochs[-1].logs
    return tuple(Metric(k, v if math.isfinite(v) else None) for k, v in logs.items())


def _optimizer_text(optimizer: Mapping[str, Any]) -> str:
    name = str(optimizer.get("class") or optimizer.get("class_name") or "")
    config = optimizer.get("config") or {}
    lr = config.get("learning_rate") if isinstance(config, Mapping) else None
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return f"{name} (learning rate {num(float(lr))})" if name else f"learning rate {num(lr)}"
    return name


def summary_view(data: RunData, findings: Sequence[Finding]) -> SummaryView:
    """Builds a run's summary.

    Args:
        data: the run's arranged data.
        findings: the run's findings.

    Returns:
        The summary.

    Example:
        >>> summary_view(RunData.of(run), []).verdict  # doctest: +SKIP
        'No problems found.'
    """
    run = data.run
    text, level = verdict(findings, len(run.records))
    counts = tuple(
        SeverityCount(str(s), sum(f.severity == s for f in findings))
        for s in sorted(Severity, reverse=True)
    )
    return SummaryView(
        model_name=run.meta.model_name,
        status=run.meta.status,
        created=run.meta.created,
        optimizer=_optimizer_text(run.meta.optimizer),
        n_layers=len(run.layers),
        n_params=sum(x.params for x in run.layers),
        n_records=len(run.records),
        first_step=run.records[0].step if run.records else None,
        last_step=run.records[-1].step if run.records else None,
        n_epochs=len(run.epochs),
        final_loss=_final_loss(run),
        metrics=_metrics(run),
        verdict=text,
        verdict_level=level,
        counts=counts,
        window_fraction=SUMMARY_WINDOW_FRACTION,
    )


def _depth_figure(data: RunData) -> FigureView | None:
    if not data.grad_layers:
        return None
    m = data.sub("grad_norm", data.grad_layers)
    profiles = [(f"step {int(m.steps[j])}", m.values[:, j]) for j in moment_indices(len(m.steps))]
    return _fig(
        "Gradient norm by depth",
        "Gradient L2 norm per layer (input on the left) at a few moments of training. Lines "
        "falling steeply towards the input are the vanishing-gradient picture.",
        figures.depth_profile(data.grad_layers, profiles),
    )


def _act_hist_figure(data: RunData) -> FigureView | None:
    hist = data.run.histograms
    names = [x for x in data.run.layer_names if f"act/{x}" in hist and f"edges/act/{x}" in hist]
    if not names:
        return None
    edges = [hist[f"edges/act/{x}"] for x in names]
    counts = [hist[f"act/{x}"][-1] for x in names]
    return _fig(
        "Activation distributions",
        "Recorded activation histograms per layer at the last histogram snapshot.",
        figures.histogram_ridges(names, edges, counts, "activation value"),
    )


def _loss_figure(run: Run) -> FigureView | None:
    steps, loss = run.series("loss")
    if not len(steps):
        return None
    series = [("batch loss", steps, loss)]
    val = [(e.step, e.logs["val_loss"]) for e in run.epochs if "val_loss" in e.logs]
    if val:
        series.append(
            ("val_loss (epoch end)", np.array([v[0] for v in val]), np.array([v[1] for v in val]))
        )
    lr_steps, lr = run.series("lr")
    return _fig(
        "Loss and learning rate",
        "Recorded batch loss (and validation loss at epoch ends) with the learning rate.",
        figures.loss_and_lr(series, (lr_steps, lr) if len(lr_steps) else None),
    )


def _anchor(label: str, index: int) -> str:
    # Ids must be unique and safe in HTML whatever the label; the label itself is shown escaped.
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"run{index}-{slug}" if slug else f"run{index}"


def run_view(item: LabelledRun, index: int = 0) -> RunView:
    """Builds everything the report shows about one run.

    Args:
        item: the labelled run with its findings.
        index: position of the run in the report (for unique anchors).

    Returns:
        The run's view.

    Example:
        >>> run_view(resolve("runs/mlp")[0]).summary.verdict  # doctest: +SKIP
    """
    data = RunData.of(item.run)
    findings = list(item.findings)
    grads = data.sub("grad_norm", data.grad_layers)
    heatmap = update = fractions = act_stats = None
    if data.grad_layers:
        heatmap = _fig(
            "Gradient norm per layer over steps",
            "Each row is a layer (input on top), each column a recorded step; colour is the "
            "gradient L2 norm on a log scale. Grey: not recorded or zero.",
            figures.grad_heatmap(grads),
        )
        ratio = data.sub("update_ratio", data.grad_layers)
        if ratio.has_data():
            update = _fig(
                "Update ratio ‖Δw‖/‖w‖",
                f"Per-step relative weight update per layer. The dashed line is "
                f"{figures.UPDATE_RATIO_TARGET:g} (CS231n's rule of thumb); the band spans one "
                "order of magnitude either side. Far below: the layer barely learns.",
                figures.layer_lines(
                    ratio,
                    "update ratio",
                    band=figures.UPDATE_RATIO_BAND,
                    target=figures.UPDATE_RATIO_TARGET,
                ),
            )
    if data.act_layers:
        dead = window_median(data.sub("dead_frac", data.act_layers))
        sat = window_median(data.sub("sat_frac", data.act_layers))
        fractions = _fig(
            "Dead and saturated units per layer",
            "Median over the summary window. Dead: ReLU-family unit off for the whole batch. "
            "Saturated: sigmoid/tanh unit in its flat tail.",
            figures.fraction_bars(
                data.act_layers, [("dead", dead), ("saturated", sat)], "fraction of units"
            ),
        )
        mean = window_median(data.sub("act_mean", data.act_layers))
        std = window_median(data.sub("act_std", data.act_layers))
        if np.isfinite(mean).any():
            act_stats = _fig(
                "Activation statistics per layer",
                "Median over the summary window of the recorded activation mean and standard "
                "deviation.",
                figures.activation_stats(data.act_layers, mean, std),
            )
    return RunView(
        label=item.label,
        anchor=_anchor(item.label, index),
        path=str(item.run.path),
        summary=summary_view(data, findings),
        findings=tuple(finding_view(f, data) for f in findings),
        layers=layer_rows(data, findings),
        heatmap=heatmap,
        depth=_depth_figure(data),
        update_ratio=update,
        fractions=fractions,
        act_stats=act_stats,
        act_hist=_act_hist_figure(data),
        loss=_loss_figure(item.run),
    )


def comparison_view(items: Sequence[LabelledRun]) -> ComparisonView:
    """Builds the overview of several runs (before/after a fix).

    Layers are matched by name; the depth figure uses the first run's layer order.

    Args:
        items: the labelled runs, at least two.

    Returns:
        The comparison.

    Example:
        >>> comparison_view(resolve(["runs/sick", "runs/fixed"])).labels  # doctest: +SKIP
        ('before', 'after')
    """
    datas = [RunData.of(x.run) for x in items]
    medians = [d.medians("grad_norm") for d in datas]
    names = list(dict.fromkeys(n for d in datas for n in d.grad_layers))
    rows = []
    for item, data in zip(items, datas, strict=True):
        text, level = verdict(item.findings, len(data.run.records))
        rows.append(
            ComparisonRow(
                label=item.label,
                verdict=text,
                verdict_level=level,
                errors=sum(f.severity == Severity.ERROR for f in item.findings),
                warnings=sum(f.severity == Severity.WARNING for f in item.findings),
                final_loss=_final_loss(data.run),
                metrics=_metrics(data.run),
            )
        )
    depth = None
    if names:
        profiles = [
            (x.label, np.array([m.get(n, np.nan) for n in names]))
            for x, m in zip(items, medians, strict=True)
        ]
        depth = _fig(
            "Gradient norm by depth, compared",
            "Median gradient norm per layer over each run's summary window, input on the left.",
            figures.depth_profile(names, profiles),
        )
    loss_series = []
    for x in items:
        steps, loss = x.run.series("loss")
        if len(steps):
            loss_series.append((x.label, steps, loss))
    loss = (
        _fig("Loss, compared", "Recorded batch loss of each run.", figures.loss_and_lr(loss_series))
        if loss_series
        else None
    )
    return ComparisonView(
        labels=tuple(x.label for x in items),
        rows=tuple(rows),
        layers=tuple(LayerComparisonRow(n, tuple(m.get(n) for m in medians)) for n in names),
        depth=depth,
        loss=loss,
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
    return ReportView(
        title=title,
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        runs=tuple(run_view(x, i) for i, x in enumerate(items)),
        comparison=comparison_view(items) if len(items) > 1 else None,
    )
