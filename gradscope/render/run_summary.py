"""The top of a run's section: verdict, numbers, gradient ratio, what was not recorded, layer rows.

Shared by the HTML report, the terminal summary and the TensorBoard dashboard, so the three say
the same thing about a run: every number here is read from the run's
:class:`~gradscope.detect.summary.RunSummary` (``data.summary``), none is computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gradscope.data.store import Run
from gradscope.detect.summary import RunSummary
from gradscope.findings import Finding, Severity
from gradscope.render.fmt import grad_ratio, num
from gradscope.render.rundata import RunData
from gradscope.render.view import LayerRow, Metric, RatioView, SeverityCount, SummaryView

#: ``meta.json`` ``config`` key listing what a custom ``train_step`` run could not record.
NOT_RECORDED_KEY = "not_recorded"
#: How every view names the ratio (the terminal line, the report, the dashboard, fix outcomes).
RATIO_TERM = "first/last gradient ratio"


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
    summary = data.summary
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
                grad_norm=summary.median(info.name, "grad_norm"),
                update_ratio=summary.median(info.name, "update_ratio"),
                dead_frac=summary.median(info.name, "dead_frac"),
                sat_frac=summary.median(info.name, "sat_frac"),
                act_mean=summary.median(info.name, "act_mean"),
                act_std=summary.median(info.name, "act_std"),
                severity=None if sev is None else str(sev),
            )
        )
    return tuple(rows)


def final_metrics(run: Run) -> tuple[Metric, ...]:
    """The Keras logs of the last epoch (non-finite values as None).

    Args:
        run: a loaded run.

    Returns:
        One metric per logged name; empty without epochs.

    Example:
        >>> [m.name for m in final_metrics(load_run("runs/mlp"))]  # doctest: +SKIP
        ['accuracy', 'loss']
    """
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


def ratio_text(summary: RunSummary) -> str:
    """The run's first/last gradient ratio as :func:`~gradscope.render.fmt.grad_ratio` writes it.

    Args:
        summary: the run's summary.

    Returns:
        e.g. ``"6.2e-07 (6.2 orders of magnitude)"``; ``"–"`` when it cannot be measured.

    Example:
        >>> ratio_text(RunSummary.of(load_run("runs/mlp")))  # doctest: +SKIP
        '6.2e-07 (6.2 orders of magnitude)'
    """
    return grad_ratio(None if summary.grad_ratio is None else summary.grad_ratio.value)


def ratio_view(summary: RunSummary) -> RatioView | None:
    """The run's first/last gradient ratio in the words every view uses.

    The terminal prints :attr:`RatioView.line`; the HTML report and the dashboard show the same
    text, so the number reads identically everywhere.

    Args:
        summary: the run's summary (the ratio is read from it, never recomputed).

    Returns:
        The ratio's text and what it divides; None when the run has no measurable ratio (fewer
        than two weight layers or too few records).

    Example:
        >>> ratio_view(RunSummary.of(load_run("runs/mlp"))).text  # doctest: +SKIP
        '6.2e-07 (6.2 orders of magnitude)'
    """
    ratio = summary.grad_ratio
    if ratio is None:
        return None
    start, end = ratio.window_steps
    text = ratio_text(summary)
    detail = (
        f"per-weight gradient RMS of '{ratio.first_layer}' over '{ratio.last_layer}', "
        f"medians of steps {start}–{end}"
    )
    return RatioView(text, detail, f"{RATIO_TERM} {text}: {detail}")


def ratio_change(summaries: Sequence[RunSummary]) -> str:
    """The first/last gradient ratio of compared runs, ``before → after``.

    Written as ``gradscope fix`` writes a trial's change (:func:`gradscope.fix.trials.
    ratio_change`), from each run's own :class:`RunSummary`.

    Args:
        summaries: the compared runs' summaries, in order.

    Returns:
        e.g. ``"first/last gradient ratio 6.2e-07 (6.2 orders of magnitude) → 5.6e-01 (0.2
        orders of magnitude)"``; a run without a measurable ratio shows ``–``.

    Example:
        >>> ratio_change([RunSummary.of(sick), RunSummary.of(fixed)])  # doctest: +SKIP
    """
    return f"{RATIO_TERM} " + " → ".join(ratio_text(s) for s in summaries)


def not_recorded(run: Run) -> tuple[str, ...]:
    """What GradScope could not record in a run, as the collector noted it in ``meta.json``.

    A custom ``train_step`` can hide things from the recorder (a step that applies no
    optimizer, a loss computed without ``compute_loss``, ...); the callback keeps one plain
    sentence per such thing under ``config.not_recorded``.

    Args:
        run: a loaded run.

    Returns:
        The notes in order, empty when there are none. ``meta.json`` is a file on disk, so
        anything but strings there is ignored rather than shown.

    Example:
        >>> not_recorded(load_run("runs/vae"))  # doctest: +SKIP
        ("1 variable updated by 'optimizer' belongs to no layer ('temperature'): not recorded",)
    """
    raw = run.meta.config.get(NOT_RECORDED_KEY)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(note for note in raw if isinstance(note, str) and note.strip())


def summary_view(data: RunData) -> SummaryView:
    """Builds a run's summary section from its :class:`RunSummary` and metadata.

    Args:
        data: the run's arranged data (built with the run's findings, which the verdict reads).

    Returns:
        The summary.

    Example:
        >>> summary_view(RunData.of(run, findings)).verdict  # doctest: +SKIP
        'No problems found.'
    """
    run, summary = data.run, data.summary
    return SummaryView(
        model_name=run.meta.model_name,
        status=run.meta.status,
        created=run.meta.created,
        optimizer=_optimizer_text(run.meta.optimizer),
        n_layers=len(run.layers),
        n_params=sum(x.params for x in run.layers),
        n_records=summary.n_records,
        first_step=summary.first_step,
        last_step=summary.last_step,
        n_epochs=len(run.epochs),
        final_loss=summary.final_loss,
        metrics=final_metrics(run),
        verdict=summary.verdict,
        verdict_level=summary.verdict_level,
        counts=tuple(SeverityCount(s, n) for s, n in summary.counts.items()),
        window_fraction=summary.window_fraction,
        grad_ratio=ratio_view(summary),
        not_recorded=not_recorded(run),
    )
