"""Rich terminal summary: values are the window medians of stats.jsonl, names print verbatim."""

from __future__ import annotations

import json

import numpy as np
from rich.console import Console
from synthetic_runs import dense, make_run

from gradscope.findings import Finding, Severity
from gradscope.render.terminal import findings_grid, print_summary, summary_renderable

MARKUP = "[red]not_markup[/red]"


def _console() -> Console:
    return Console(record=True, width=200, color_system="truecolor", force_terminal=True)


def _run(tmp_path):
    names = ["hidden_1", MARKUP, "output"]
    layers = [dense("hidden_1"), dense(MARKUP), dense("output", kind="softmax")]
    rng = np.random.default_rng(0)
    return make_run(
        tmp_path / "run",
        layers,
        lambda s: {
            n: {
                "grad_norm": float(rng.lognormal(-3 - 2 * i, 0.3)),
                "update_ratio": 1e-3,
                "dead_frac": 0.1 * i,
                "sat_frac": 0.9,
            }
            for i, n in enumerate(names)
        },
        steps=20,
    )


def test_table_shows_window_medians_and_verbatim_names(tmp_path) -> None:
    run = _run(tmp_path)
    console = _console()
    print_summary(run, findings=[], console=console)
    text = console.export_text()
    rows = [json.loads(x) for x in (run.path / "stats.jsonl").read_text().splitlines()]
    for name in ("hidden_1", MARKUP, "output"):
        values = [r["layers"][name]["grad_norm"] for r in rows][10:]  # last 50 % of 20 records
        line = next(x for x in text.splitlines() if x.startswith("│ " + name + " "))
        assert f"{np.median(values):.2e}" in line
    assert "No problems found." in text
    assert "not_markup" in text and MARKUP in text  # printed as text, not parsed as markup


def test_findings_colour_their_layers(tmp_path) -> None:
    run = _run(tmp_path)
    finding = Finding(
        "GS101", "vanishing_gradients", Severity.ERROR, ("hidden_1",), "tiny", {}, ("he_init",)
    )
    console = _console()
    console.print(summary_renderable(run, [finding], title="my title"))
    text = console.export_text(clear=False)
    ansi = console.export_text(styles=True).splitlines()
    assert "my title" in text and "GS101" in text and "(he_init)" in text
    # The erroring layer's row is bold red (SGR 1;31); the other rows are not.
    assert "\x1b[1;31m" in next(x for x in ansi if "hidden_1" in x)
    assert "31m" not in next(x for x in ansi if "not_markup" in x)
    # The output layer's saturation is dimmed (SGR 2): confidence, not a problem.
    assert "\x1b[2m" in next(x for x in ansi if "softmax" in x)


def test_findings_grid_lists_layers_and_keeps_markup_as_text() -> None:
    layers = tuple(f"l{i}" for i in range(6))
    finding = Finding(
        "GS103", "dying_relu", Severity.WARNING, layers, f"{MARKUP} died", {}, ("he_init",)
    )
    console = _console()
    console.print(findings_grid([finding]))
    text = console.export_text()
    assert "WARNING" in text and "GS103" in text
    assert "l0, l1, l2, l3 (+2)" in text and "l4" not in text
    assert f"{MARKUP} died" in text
    assert "(he_init)" in text
