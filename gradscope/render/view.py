"""The typed view model between runs/findings and the report template.

Plain frozen dataclasses of strings and numbers: no HTML, no Keras objects, no live runs. The
template formats numbers and escapes every string; :mod:`gradscope.render.build` fills these from
a :class:`~gradscope.data.store.Run` and its findings.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Verdict levels, used as CSS classes: most to least severe.
VERDICT_LEVELS: tuple[str, ...] = ("error", "warning", "info", "ok")


@dataclass(frozen=True)
class FigureView:
    """One embedded figure.

    Attributes:
        title: short heading.
        caption: one sentence on how to read it.
        src: a ``data:image/png;base64,...`` URI (never an external URL).
        alt: text alternative.
        kind: what the figure is (``"heatmap"``, ``"fractions"``, ...), for ``data-figure``.
        facts: ``(name, value)`` pairs read from the drawn axes (colour-scale limits, axis
            ranges, colours), written as ``data-*`` attributes of the figure.
    """

    title: str
    caption: str
    src: str
    alt: str
    kind: str = ""
    facts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FixView:
    """A recommended fix (from :mod:`gradscope.remedies`).

    Attributes:
        id: stable fix id, e.g. ``"he_init"``.
        title: short imperative title.
        description: what it changes and why it helps.
    """

    id: str
    title: str
    description: str


@dataclass(frozen=True)
class EvidenceItem:
    """One line of a finding's evidence, already formatted as text.

    Attributes:
        name: evidence key.
        value: formatted value.
    """

    name: str
    value: str


@dataclass(frozen=True)
class FindingView:
    """A finding as shown in the report.

    Attributes:
        code: stable code, e.g. ``"GS101"``.
        kind: stable kind, e.g. ``"vanishing_gradients"``.
        title: human title of the kind, e.g. ``"Vanishing gradients"``.
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        layers: layers concerned, in forward order.
        message: the finding's plain-language message.
        evidence: formatted evidence lines.
        fixes: recommended fixes, most recommended first.
        figure: the picture behind the finding, when the run has the data.
    """

    code: str
    kind: str
    title: str
    severity: str
    layers: tuple[str, ...]
    message: str
    evidence: tuple[EvidenceItem, ...]
    fixes: tuple[FixView, ...]
    figure: FigureView | None


@dataclass(frozen=True)
class LayerRow:
    """One layer: its description and its recorded statistics (window medians).

    Attributes:
        name: layer path.
        class_name: Keras class name.
        activation: activation name, or None.
        initializer: kernel initializer class name, or None.
        units: units/filters, or None.
        params: number of weights.
        trainable: False for frozen layers.
        watched: True if its gradients were recorded.
        grad_norm: median gradient L2 norm over the summary window, or None.
        update_ratio: median ‖Δw‖/‖w‖ over the window, or None.
        dead_frac: median fraction of dead units over the window, or None.
        sat_frac: median fraction of saturated units over the window, or None.
        act_mean: median activation mean over the window, or None.
        act_std: median activation standard deviation over the window, or None.
        severity: the most severe finding naming this layer (``"error"``, ...), or None.
    """

    name: str
    class_name: str
    activation: str | None
    initializer: str | None
    units: int | None
    params: int
    trainable: bool
    watched: bool
    grad_norm: float | None
    update_ratio: float | None
    dead_frac: float | None
    sat_frac: float | None
    act_mean: float | None
    act_std: float | None
    severity: str | None


@dataclass(frozen=True)
class Metric:
    """A named number, e.g. the final ``val_accuracy``.

    Attributes:
        name: metric name.
        value: its value, or None when not finite.
    """

    name: str
    value: float | None


@dataclass(frozen=True)
class SeverityCount:
    """How many findings of one severity.

    Attributes:
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        count: number of findings.
    """

    severity: str
    count: int


@dataclass(frozen=True)
class RatioView:
    """The run's first/last gradient ratio, as the terminal's summary line writes it.

    Attributes:
        text: the number, e.g. ``"6.2e-07 (6.2 orders of magnitude)"``
            (:func:`gradscope.detect.summary.format_grad_ratio`).
        detail: what it divides, e.g. ``"per-weight gradient RMS of 'hidden_1' over 'output',
            medians of steps 285–565"``.
        line: the whole line, ``"first/last gradient ratio {text}: {detail}"``.
    """

    text: str
    detail: str
    line: str


@dataclass(frozen=True)
class SummaryView:
    """Top of a run's section: what was trained, for how long, and the verdict.

    Attributes:
        model_name: the Keras model name.
        status: ``"completed"``, ``"running"`` (interrupted without cleanup) or ``"interrupted"``.
        created: ISO-8601 creation time of the run.
        optimizer: optimizer class name.
        n_layers: layers in the model.
        n_params: total weights.
        n_records: recorded steps.
        first_step: first recorded step, or None.
        last_step: last recorded step, or None.
        n_epochs: epochs logged.
        final_loss: last finite recorded batch loss, or None.
        metrics: Keras logs of the last epoch.
        verdict: one-line verdict.
        verdict_level: one of :data:`VERDICT_LEVELS`.
        counts: findings per severity, most severe first.
        window_fraction: fraction of records the per-layer medians cover.
        grad_ratio: the first/last gradient ratio, or None when it cannot be measured.
        not_recorded: what GradScope could not record in this run, one plain sentence each
            (``meta.json``'s ``config.not_recorded``; custom ``train_step`` models).
    """

    model_name: str
    status: str
    created: str
    optimizer: str
    n_layers: int
    n_params: int
    n_records: int
    first_step: int | None
    last_step: int | None
    n_epochs: int
    final_loss: float | None
    metrics: tuple[Metric, ...]
    verdict: str
    verdict_level: str
    counts: tuple[SeverityCount, ...]
    window_fraction: float
    grad_ratio: RatioView | None
    not_recorded: tuple[str, ...]


@dataclass(frozen=True)
class RunView:
    """Everything the report shows about one run.

    Attributes:
        label: the run's label (``"before"``, ``"after"``, or its directory name).
        anchor: HTML id prefix for the run's sections (derived, safe characters only).
        path: the run directory as given.
        summary: the summary.
        findings: findings, most severe first.
        layers: one row per model layer, in forward order.
        heatmap: layers × steps gradient-norm heatmap, or None without gradient data.
        depth: gradient norm by depth at a few moments, or None.
        update_ratio: update ratio over steps against the 1e-3 band, or None.
        fractions: dead/saturated fractions per layer, or None when no bar would show (the
            notes then say why).
        act_stats: activation mean ± std per layer, or None.
        act_hist: recorded activation histograms (last snapshot), or None.
        loss: loss and learning rate over steps, or None.
        fraction_notes: sentences on the dead/saturated fractions that a chart cannot say
            (a statistic that does not apply, all zero, the output's confidence).
    """

    label: str
    anchor: str
    path: str
    summary: SummaryView
    findings: tuple[FindingView, ...]
    layers: tuple[LayerRow, ...]
    heatmap: FigureView | None
    depth: FigureView | None
    update_ratio: FigureView | None
    fractions: FigureView | None
    act_stats: FigureView | None
    act_hist: FigureView | None
    loss: FigureView | None
    fraction_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComparisonRow:
    """One run in the before/after overview.

    Attributes:
        label: run label.
        verdict: its verdict.
        verdict_level: one of :data:`VERDICT_LEVELS`.
        errors: number of error findings.
        warnings: number of warning findings.
        final_loss: last finite batch loss, or None.
        metrics: last epoch's Keras logs.
        grad_ratio: its first/last gradient ratio's text, :data:`~gradscope.render.fmt.MISSING`
            when it cannot be measured.
    """

    label: str
    verdict: str
    verdict_level: str
    errors: int
    warnings: int
    final_loss: float | None
    metrics: tuple[Metric, ...]
    grad_ratio: str


@dataclass(frozen=True)
class LayerComparisonRow:
    """Median gradient norm of one layer in each compared run.

    Attributes:
        name: layer name.
        values: one value per run (None where the run has no such layer or no data).
    """

    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class ComparisonView:
    """Before/after (or several-run) overview.

    Attributes:
        labels: run labels in order.
        rows: one row per run.
        layers: per-layer median gradient norm in each run.
        depth: gradient norm by depth, one line per run.
        loss: loss over steps, one line per run.
        grad_ratio_change: ``"first/last gradient ratio {before} → {after}"`` (every run in
            order), the way ``gradscope fix`` writes a trial's change.
    """

    labels: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    layers: tuple[LayerComparisonRow, ...]
    depth: FigureView | None
    loss: FigureView | None
    grad_ratio_change: str


@dataclass(frozen=True)
class ReportView:
    """The whole report.

    Attributes:
        title: report title.
        generated: ISO-8601 generation time.
        version: gradscope version.
        runs: one view per run.
        comparison: the overview when several runs are compared, else None.
    """

    title: str
    generated: str
    version: str
    runs: tuple[RunView, ...]
    comparison: ComparisonView | None
