"""Report figures as one story with the dashboard: notes instead of empty charts, the output's
saturation in grey, one pair of run colours, a shared heatmap scale, a sane learning-rate axis,
activation histograms over the range the activation lives in.

The facts checked here are read back from the drawn matplotlib axes (``Plot.facts``); the browser
tests check the same facts and pixels in the rendered page.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from report_html import Page, section
from synthetic_runs import relu_run, sigmoid_run

from gradscope import load_run
from gradscope.collect.histograms import act_range
from gradscope.render import figures, palette
from gradscope.render.build import report_view, shared_grad_scale
from gradscope.render.html import render_report
from gradscope.render.matrix import StatMatrix
from gradscope.render.run_figures import fraction_notes, fractions_figure
from gradscope.render.rundata import RunData
from gradscope.render.sources import resolve


def _facts(plot: figures.Plot) -> dict[str, str]:
    return dict(plot.facts)


# ------------------------------------------------------------------ dead / saturated fractions


def test_all_sigmoid_run_says_why_instead_of_an_empty_chart(tmp_path: Path) -> None:
    figure, notes = fractions_figure(RunData.of(sigmoid_run(tmp_path / "r")))
    assert figure is None  # every judged bar would be 0 %: no empty frame
    assert notes == (
        "No ReLU-family layers: the dead fraction does not apply.",
        "Saturation: 0 % in all 3 sigmoid/tanh hidden layers.",
        "Output layer 'out': 97 % of its outputs saturated, i.e. confident predictions; the "
        "output layer is never judged (grey bar).",
    )
    html = render_report(tmp_path / "r", tmp_path / "r.html").read_text(encoding="utf-8")
    part = section(html, "activations")
    assert 'data-figure="fractions"' not in part
    assert "No ReLU-family layers: the dead fraction does not apply." in part


def test_output_saturation_bar_is_grey_and_not_a_saturated_series(tmp_path: Path) -> None:
    figure, notes = fractions_figure(RunData.of(relu_run(tmp_path / "r")))
    assert figure is not None
    facts = dict(figure.facts)
    assert facts["confidence-layer"] == "out"
    assert facts["confidence-colour"] == palette.CONFIDENCE.lower()
    assert facts["series"] == "dead,saturated"
    assert "No sigmoid/tanh hidden layers: saturation does not apply." in notes
    # In the layer table, the output's saturation cell is the grey "confidence" one.
    html = render_report(tmp_path / "r", tmp_path / "r.html").read_text(encoding="utf-8")
    cells = [a for a in Page(section(html, "activations")).tags("td") if "confidence" in a.get(
        "class", "")]  # fmt: skip
    assert len(cells) == 1


def test_relu_run_with_no_dead_units_says_so(tmp_path: Path) -> None:
    figure, notes = fractions_figure(RunData.of(relu_run(tmp_path / "r", dead=0.0)))
    assert figure is None
    assert notes[0] == "Dead units: 0 % in all 2 ReLU-family layers."


def test_fraction_notes_for_a_tanh_net_with_saturation() -> None:
    nan = np.nan
    notes = fraction_notes(["t1", "t2", "o"], np.array([nan] * 3), np.array([0.4, 0.0, 0.0]), "o")
    # Saturation does apply and is not 0 % everywhere: only the dead fraction gets a note.
    assert notes == ("No ReLU-family layers: the dead fraction does not apply.",)


# --------------------------------------------------------------------------- colours and scale


def test_compared_runs_keep_the_palette_pair_in_every_figure(logdir: Path) -> None:
    view = report_view(resolve([logdir / "sick", logdir / "healthy"]), "t")
    pair = f"{palette.BEFORE.lower()},{palette.AFTER.lower()}"
    assert view.comparison is not None
    assert view.comparison.depth is not None and view.comparison.loss is not None
    assert dict(view.comparison.depth.facts)["colours"] == pair
    assert dict(view.comparison.loss.facts)["colours"] == pair
    assert palette.run_colours(2) == (palette.BEFORE, palette.AFTER)


def _contrast(hex_colour: str) -> float:
    # WCAG 2 contrast ratio against white.
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 1.05 / (lum + 0.05)


def test_run_colours_are_visible_on_white() -> None:
    # The old after-colour (viridis's yellow-green end) was faint: 1.6:1.
    assert _contrast("#bddf26") < 2
    for colour in palette.run_colours(5):
        assert _contrast(colour) >= 3.0, colour


def test_compared_heatmaps_share_the_joint_colour_scale(logdir: Path) -> None:
    view = report_view(resolve([logdir / "sick", logdir / "healthy"]), "t")
    scales = [(dict(r.heatmap.facts)["vmin"], dict(r.heatmap.facts)["vmax"]) for r in view.runs]
    assert scales[0] == scales[1]
    norms = [
        v["grad_norm"]
        for name in ("sick", "healthy")
        for line in (load_run(logdir / name).path / "stats.jsonl").read_text().splitlines()
        for v in json.loads(line)["layers"].values()
        if v.get("grad_norm", 0) > 0
    ]
    assert float(scales[0][0]) == pytest.approx(min(norms), rel=1e-5)
    assert float(scales[0][1]) == pytest.approx(max(norms), rel=1e-5)
    datas = [RunData.of(load_run(logdir / n)) for n in ("sick", "healthy")]
    assert shared_grad_scale(datas) == pytest.approx((min(norms), max(norms)))


def test_heatmap_x_axis_is_step_with_round_even_ticks() -> None:
    steps = np.array([0, 7, 13, 20, 26, 33, 40, 47, 53, 60, 66, 73, 80, 87, 93, 99])
    m = StatMatrix("grad_norm", ("a", "b"), steps, np.full((2, len(steps)), 0.1))
    facts = _facts(figures.grad_heatmap(m))
    assert facts["xlabel"] == "step"
    ticks = [int(t) for t in facts["xticks"].split(",")]
    assert len(ticks) >= 4 and len(set(np.diff(ticks))) == 1  # evenly spaced ...
    assert all(t % 10 == 0 for t in ticks)  # ... and round, although records are not


# ------------------------------------------------------------------ learning rate, histograms


def test_constant_learning_rate_is_a_flat_line_on_an_axis_from_zero() -> None:
    steps = np.arange(50)
    plot = figures.loss_and_lr([("loss", steps, np.linspace(2, 1, 50))], (steps, np.full(50, 0.05)))
    facts = _facts(plot)
    lo, hi = (float(v) for v in facts["lr-ylim"].split(","))
    assert facts["lr-constant"] == "True"
    # Not 0.048-0.052: the axis starts at 0 and the rate sits halfway up.
    assert lo == 0.0 and hi == pytest.approx(0.1)
    decay = _facts(figures.loss_and_lr([("l", steps, steps + 1.0)], (steps, 0.1 * 0.9**steps)))
    assert decay["lr-constant"] == "False" and decay["lr-ylim"].startswith("0,")


def test_activation_histogram_ranges_fit_the_activation(logdir: Path) -> None:
    # Chosen at record time by gradscope.collect.histograms.act_range.
    assert act_range("relu") == (0.0, 12.0)
    assert act_range("leaky")[0] == -2.0
    assert act_range("sigmoid") == (0.0, 1.0) and act_range("tanh") == (-1.0, 1.0)
    hist = load_run(logdir / "healthy").histograms
    for i in range(1, 6):
        edges, counts = hist[f"edges/act/hidden_{i}"], hist[f"act/hidden_{i}"][-1]
        assert edges[0] == 0.0 and edges[-1] == 12.0  # no bins spent below zero
        # Few values past the range pile into the last bin (at ±6 it held up to 12 %).
        assert counts[-1] / counts.sum() < 0.02, (i, counts[-1] / counts.sum())
    view = report_view(resolve(logdir / "healthy"), "t")
    assert view.runs[0].act_hist is not None
    lo, hi = (float(v) for v in dict(view.runs[0].act_hist.facts)["xlim"].split(","))
    assert lo >= 0.0 and hi <= 12.0  # drawn over the bins that hold values
