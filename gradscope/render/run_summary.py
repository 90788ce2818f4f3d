"""The top of a run's section: verdict, summary numbers and one row per layer.

Shared by the HTML report, the terminal summary and the TensorBoard dashboard, so the three say
the same thing about a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gradscope.data.store import Run
from gradscope.findings import Finding, Severity, kind_title
from gradscope.render.fmt import num
from gradscope.render.matrix import SUMMARY_WINDOW_FRACTION
from gradscope.render.rundata import REPORT_STATS, RunData
from gradscope.render.view import LayerRow, Metric, SeverityCount, SummaryView


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


def final_loss(run: Run) -> float | None:
    """The last finite recorded batch loss, or None.

    Args:
        run: a loaded run.

    Returns:
        The loss of the last record that has a finite one.

    Example:
        >>> final_loss(load_run("runs/mlp"))  # doctest: +SKIP
        0.0412
    """
    for record in reversed(run.records):
        if record.loss is not None and math.isfinite(record.loss):
            return record.loss
    return None


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
        final_loss=final_loss(run),
        metrics=final_metrics(run),
        verdict=text,
        verdict_level=level,
        counts=counts,
        window_fraction=SUMMARY_WINDOW_FRACTION,
    )
