"""Before/after tables of a fix result for the terminal (rich), from computed results only."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from gradscope.fix.auto import FixResult
from gradscope.fix.plan import FixPlan
from gradscope.fix.trials import TrialStats, ratio_change
from gradscope.render.fmt import grad_ratio
from gradscope.trial.curve import LearningCurve
from gradscope.trial.setup import TrainingSetup


def _num(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _max(values: dict[str, float]) -> float | None:
    return max(values.values()) if values else None


def _kinds(stats: TrialStats) -> str:
    return ", ".join(sorted(stats.kinds())) or "none"


def comparison_table(result: FixResult) -> Table:
    """Builds the before/after table of the original and the fixed model's trials.

    Args:
        result: a fix result.

    Returns:
        A rich Table with one row per quantity.

    Example:
        >>> Console().print(comparison_table(result))  # doctest: +SKIP
    """
    b, a = result.overall.before, result.overall.after
    table = Table(title="Trial training: original vs fixed (same batches, same seed)")
    table.add_column("quantity")
    table.add_column("original", justify="right")
    table.add_column("fixed", justify="right")
    rows = [
        (
            "first/last gradient ratio",
            grad_ratio(b.first_last_grad_ratio),
            grad_ratio(a.first_last_grad_ratio),
        ),
        ("gradient RMS max/min over layers", _num(b.max_min_ratio), _num(a.max_min_ratio)),
        ("final trial loss (last window)", _num(b.final_loss), _num(a.final_loss)),
        ("scored loss after the trial", _num(b.learned_loss), _num(a.learned_loss)),
        ("scored accuracy after the trial", _num(b.learned_accuracy), _num(a.learned_accuracy)),
        ("max dead fraction", _num(_max(b.dead_frac)), _num(_max(a.dead_frac))),
        ("max saturated fraction", _num(_max(b.sat_frac)), _num(_max(a.sat_frac))),
        ("findings (warning+)", _kinds(b), _kinds(a)),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def curve_table(before: LearningCurve, after: LearningCurve) -> Table:
    """Builds the learning-curve table: the scored examples after each pass, before/after.

    Args:
        before: the original's curve.
        after: the fixed model's curve (same examples, batches and seed).

    Returns:
        A rich Table with one row per scoring (epoch 0 is the untrained start).

    Example:
        >>> Console().print(curve_table(v.before.curve, v.after.curve))  # doctest: +SKIP
    """
    accuracy = before.has_accuracy and after.has_accuracy
    table = Table(title=f"Learning, scored on {before.scored_on}, by epoch")
    table.add_column("epoch", justify="right")
    table.add_column("loss original", justify="right")
    table.add_column("loss fixed", justify="right")
    if accuracy:
        table.add_column("accuracy original", justify="right")
        table.add_column("accuracy fixed", justify="right")
    for p, q in zip(before.points, after.points, strict=False):
        row = [f"{p.epoch:g}", _num(p.loss), _num(q.loss)]
        if accuracy:
            row += [_num(p.accuracy), _num(q.accuracy)]
        table.add_row(*row)
    return table


def print_setup(setup: TrainingSetup, console: Console) -> None:
    """Prints how the trials train and which settings are defaults.

    Args:
        setup: the training setup.
        console: where to print.
    """
    console.print(f"Trials train with: {setup.describe()}.", soft_wrap=True)
    if setup.defaults:
        console.print(
            f"Defaults used for {', '.join(setup.defaults)} (the model has none; pass "
            "--optimizer, --learning-rate or --batch-size to set them).",
            soft_wrap=True,
        )


def outcome_table(result: FixResult) -> Table:
    """Builds the table of fixes tried, kept or dropped, and why.

    Args:
        result: a fix result.

    Returns:
        A rich Table with one row per fix.
    """
    table = Table(title="Fixes")
    table.add_column("fix")
    table.add_column("kept")
    table.add_column("why")
    for o in result.outcomes:
        table.add_row(o.fix_id, "yes" if o.kept else "no", o.reason)
    return table


def print_plan(plan: FixPlan, console: Console) -> None:
    """Prints a plan: steps with reasons, skipped fixes, manual advice.

    Args:
        plan: the plan.
        console: where to print.
    """
    if not plan.steps:
        console.print("No automatic fix applies.")
    for i, step in enumerate(plan.steps, 1):
        console.print(f"{i}. [bold]{step.fix_id}[/bold]: {step.reason}", soft_wrap=True)
        if step.why:
            console.print(f"   why here: {step.why}", soft_wrap=True)
        if step.advice:
            console.print(f"   {step.advice}", soft_wrap=True)
    for fix_id, why in plan.skipped:
        console.print(f"skipped {fix_id}: {why}", soft_wrap=True)
    for fix_id, text in plan.manual:
        console.print(f"by hand {fix_id}: {text}", soft_wrap=True)


def print_result(result: FixResult, console: Console) -> None:
    """Prints the outcome and comparison tables and a one-line verdict.

    Args:
        result: a fix result.
        console: where to print.
    """
    if result.setup is not None:
        print_setup(result.setup, console)
    if result.outcomes:
        console.print(outcome_table(result))
    console.print(comparison_table(result))
    b, a = result.overall.before.curve, result.overall.after.curve
    if b is not None and a is not None and result.applied:
        console.print(curve_table(b, a))
    if result.search is not None:
        console.print(result.search.describe(), soft_wrap=True)
    verdict = "verified" if result.verified else "NOT verified"
    learning = f"{result.overall.learning}; " if result.overall.learning else ""
    console.print(
        f"Fixed model {verdict}: applied {result.applied or 'nothing'}; "
        f"{learning}{ratio_change(result.overall)}.",
        soft_wrap=True,
    )
