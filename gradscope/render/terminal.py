"""Rich terminal summary: a table of layers coloured by finding, and the findings list.

Uses the same view model rows as the HTML report, read from the run's one
:class:`~gradscope.detect.summary.RunSummary` (window medians, first/last gradient ratio,
verdict), so the terminal and the report never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from gradscope.detect.summary import RunSummary
from gradscope.findings import Finding
from gradscope.render.build import RunData, finding_view, layer_rows
from gradscope.render.fmt import pct, sci
from gradscope.render.run_summary import not_recorded, ratio_view
from gradscope.render.sources import RunInput, as_run, findings_of

#: Layer names listed per finding before "(+N)".
MAX_LAYERS_SHOWN = 4

#: Rich style per severity / verdict level.
STYLES: dict[str, str] = {
    "error": "bold red",
    "warning": "yellow",
    "info": "cyan",
    "ok": "green",
}


def _layers_table(data: RunData, findings: Sequence[Finding], title: str) -> Table:
    fraction = data.summary.window_fraction
    table = Table(
        title=title,
        caption=f"medians over the last {100 * fraction:.0f} % of recorded steps;"
        " output saturation (dim) is confidence, never judged",
    )
    table.add_column("layer")
    table.add_column("activation")
    table.add_column("grad norm", justify="right")
    table.add_column("update ratio", justify="right")
    table.add_column("dead", justify="right")
    table.add_column("saturated", justify="right")
    rows = layer_rows(data, findings)
    for i, row in enumerate(rows):
        style = STYLES.get(row.severity or "", "")
        # A confident softmax/sigmoid output is the goal, not a problem: show it, dimmed.
        sat = Text(pct(row.sat_frac), style="dim" if i == len(rows) - 1 else "")
        table.add_row(
            # Text objects, not markup strings: a layer name like "[red]x" must print verbatim.
            Text(row.name),
            Text(row.activation or "–"),
            sci(row.grad_norm),
            sci(row.update_ratio),
            pct(row.dead_frac),
            sat,
            style=style,
        )
    return table


def ratio_line(summary: RunSummary) -> Text | None:
    """The run's first/last gradient ratio as one line, in the words every view uses.

    Args:
        summary: the run's summary.

    Returns:
        e.g. ``first/last gradient ratio 6.2e-07 (6.2 orders of magnitude): per-weight gradient
        RMS of 'hidden_1' over 'output', medians of steps 285–565``; None when the run has no
        measurable ratio (fewer than two weight layers or too few records).

    Example:
        >>> Console().print(ratio_line(RunSummary.of(load_run("runs/mlp"))))  # doctest: +SKIP
    """
    view = ratio_view(summary)
    # Text, not markup: layer names are user strings.
    return None if view is None else Text(view.line)


def findings_grid(findings: Sequence[Finding]) -> Table:
    """Builds the terminal list of findings: severity, code and title, layers, message, fixes.

    Every user-controlled string (layer names, messages) is a rich ``Text``, never markup.

    Args:
        findings: the findings, in display order.

    Returns:
        A rich grid (print it with any :class:`rich.console.Console`).

    Example:
        >>> Console().print(findings_grid(result.findings))  # doctest: +SKIP
    """
    # A grid keeps wrapped messages indented under their finding instead of at column 0.
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    # No figures in a terminal: finding_view(..., None) skips building them.
    for view in (finding_view(f, None) for f in findings):
        body = Text()
        body.append(f"{view.code} {view.title}", style="bold")
        if view.layers:
            more = len(view.layers) - MAX_LAYERS_SHOWN
            names = ", ".join(view.layers[:MAX_LAYERS_SHOWN]) + (f" (+{more})" if more > 0 else "")
            body.append(f"  {names}", style="dim")
        body.append(f"\n{view.message}")
        if view.fixes:
            body.append("\nfixes: ", style="dim")
            body.append(", ".join(f"{f.title} ({f.id})" for f in view.fixes))
        grid.add_row(Text(view.severity.upper(), style=STYLES.get(view.severity, "")), body)
    return grid


def summary_renderable(
    run: RunInput, findings: Sequence[Finding] | None = None, title: str | None = None
) -> RenderableType:
    """Builds the terminal summary of a run: verdict, layer table, ratio, findings, not recorded.

    Args:
        run: a run or its directory.
        findings: the run's findings; default its ``findings.json`` or a fresh detection.
        title: table title; default the model name.

    Returns:
        A rich renderable (print it with any :class:`rich.console.Console`).

    Raises:
        GradscopeInputError: if the run directory is unreadable.

    Example:
        >>> Console().print(summary_renderable("runs/mlp"))  # doctest: +SKIP
    """
    loaded = as_run(run)
    found = list(findings) if findings is not None else findings_of(loaded)
    data = RunData.of(loaded, found)
    summary = data.summary
    parts: list[RenderableType] = [
        Text(summary.verdict, style=STYLES.get(summary.verdict_level, "")),
        _layers_table(data, found, title or f"gradscope: {loaded.meta.model_name}"),
    ]
    line = ratio_line(summary)
    if line is not None:
        parts.append(line)
    if found:
        parts.append(findings_grid(found))
    # The same words as the callback's end-of-fit summary (collect/diagnose.py).
    for note in not_recorded(loaded):
        parts.append(Text.assemble(("  not recorded", "yellow"), f": {note}"))
    return Group(*parts)


def print_summary(
    run: RunInput,
    findings: Sequence[Finding] | None = None,
    console: Console | None = None,
    title: str | None = None,
) -> None:
    """Prints the terminal summary of a run.

    Args:
        run: a run or its directory.
        findings: the run's findings; default its ``findings.json`` or a fresh detection.
        console: where to print; default a new :class:`rich.console.Console` (stdout).
        title: table title; default the model name.

    Example:
        >>> print_summary("runs/mlp")  # doctest: +SKIP
    """
    (console or Console()).print(summary_renderable(run, findings, title))
