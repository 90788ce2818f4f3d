"""The HTML report in headless Chromium, measured: figure width against the page, the notes that
replace an empty dead/saturated chart, the output layer's grey bar, one pair of run colours,
one heatmap colour scale for compared runs, a flat constant learning rate.

Every check is a function of what the page showed. Each is also run on a control page, the same
report deliberately broken the way it used to be (narrow figures, no notes, an orange output bar,
viridis run colours, per-run colour scales, a zoomed learning-rate axis), and must fail there:
the checks can see what they claim to check.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import colour_counts, open_page
from synthetic_runs import relu_run, sigmoid_run

from gradscope import load_run
from gradscope.render import act_figures, figures, palette
from gradscope.render.html import render_report
from gradscope.render.rundata import RunData

READY = "document.readyState === 'complete' && [...document.images].every(i => i.complete)"
PROBE = """(() => ({
  page: document.documentElement.clientWidth,
  figures: [...document.querySelectorAll('figure')].map((f) => ({
    ...f.dataset,
    width: f.querySelector('img').getBoundingClientRect().width,
    section: f.closest('section').id,
  })),
  notes: [...document.querySelectorAll('ul[data-notes=fractions]')].map((u) => ({
    text: u.innerText, height: u.getBoundingClientRect().height,
  })),
}))()"""
NOTE_NO_RELU = "No ReLU-family layers: the dead fraction does not apply."


def _look(browser, html: Path) -> dict[str, Any]:
    # One page load: the probe, and pixel counts of the figures whose colours matter.
    opened = open_page(browser, html.as_uri(), ready=READY, width=1400, height=1000)
    try:
        look = opened.page.evaluate(PROBE)
        pair = [palette.BEFORE, palette.AFTER]
        look["compare_pixels"] = colour_counts(
            opened.page, "figure[data-figure^=compare] img", pair
        )
        look["fraction_pixels"] = colour_counts(
            opened.page,
            "figure[data-figure=fractions] img",
            [palette.CONFIDENCE, palette.SATURATED, palette.DEAD],
        )
        look["errors"] = list(opened.errors)
    finally:
        opened.close()
    return look


def _figures(look: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in look["figures"] if f.get("figure") == kind]


# --------------------------------------------------------------------------------- the checks


def check_width(look: dict[str, Any]) -> None:
    # Section padding leaves ~93 % of a 1400 px window; figures used ~800 px (57 %) before.
    ratios = [f["width"] / look["page"] for f in look["figures"]]
    assert ratios and min(ratios) >= 0.85, f"figure widths / page width: {min(ratios):.2f}"


def check_no_relu_note(look: dict[str, Any], run: int) -> None:
    note = look["notes"][run]
    assert NOTE_NO_RELU in note["text"] and note["height"] > 0, note


def check_grey_output_bar(look: dict[str, Any]) -> None:
    (grey, orange, dead) = look["fraction_pixels"][0]
    # A 97 % bar of the output in grey, some dead bars, and nothing orange (no hidden layer
    # saturates and the output's saturation is not drawn as a saturated series).
    assert grey > 2000 and dead > 100, (grey, dead)
    assert orange == 0, f"{orange} orange pixels: the output's saturation is drawn as judged"
    (fractions,) = _figures(look, "fractions")
    assert fractions["confidenceColour"] == palette.CONFIDENCE.lower()


def check_run_colours(look: dict[str, Any]) -> None:
    pair = f"{palette.BEFORE.lower()},{palette.AFTER.lower()}"
    assert [f["colours"] for f in _figures(look, "compare-depth")] == [pair]
    assert [f["colours"] for f in _figures(look, "compare-loss")] == [pair]
    # Both runs' lines are there, in those colours, in every compared figure.
    for before, after in look["compare_pixels"]:
        assert before > 300 and after > 300, (before, after)


def check_shared_scale(look: dict[str, Any], lo: float, hi: float) -> None:
    heatmaps = _figures(look, "heatmap")
    assert len(heatmaps) == 2
    for h in heatmaps:
        assert float(h["vmin"]) == pytest.approx(lo, rel=1e-5), h["vmin"]
        assert float(h["vmax"]) == pytest.approx(hi, rel=1e-5), h["vmax"]
        assert h["xlabel"] == "step"
        ticks = [int(t) for t in h["xticks"].split(",")]
        assert len(set(np.diff(ticks))) == 1, ticks


def check_constant_lr(look: dict[str, Any], lr: float) -> None:
    for loss in _figures(look, "loss"):
        lo, hi = (float(v) for v in loss["lrYlim"].split(","))
        assert loss["lrConstant"] == "True"
        assert lo == 0.0 and hi == pytest.approx(2 * lr), (lo, hi)


# ---------------------------------------------------------------------- the page and its control


@pytest.fixture(scope="module")
def pages(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("story")
    pair = render_report({"before": logdir / "sick", "after": logdir / "healthy"}, root / "p.html")
    relu = render_report(relu_run(root / "relu"), root / "relu.html")
    # The control: the same reports, broken the way they used to look.
    html = pair.read_text(encoding="utf-8")
    html = html.replace("figure img { width: 100%;", "figure img { max-width: 800px;")
    html = html.replace('data-notes="fractions"', 'data-notes="fractions" hidden')
    html = _swap_img(html, "compare-depth", _old_depth_figure(logdir))
    html = re.sub(r'data-vmin="[^"]*"', 'data-vmin="0.01"', html, count=1)
    html = re.sub(r'data-lr-ylim="[^"]*"', 'data-lr-ylim="0.048,0.052"', html)
    (root / "pair_broken.html").write_text(html, encoding="utf-8")
    relu_html = _swap_img(relu.read_text(encoding="utf-8"), "fractions", _orange_bars(root))
    (root / "relu_broken.html").write_text(relu_html, encoding="utf-8")
    return {
        "pair": pair,
        "relu": relu,
        "pair_broken": root / "pair_broken.html",
        "relu_broken": root / "relu_broken.html",
    }


def _swap_img(html: str, kind: str, src: str) -> str:
    head, tail = html.split(f'data-figure="{kind}"', 1)
    before, after = tail.split('src="', 1)
    return head + f'data-figure="{kind}"' + before + f'src="{src}"' + after.split('"', 1)[1]


def _old_depth_figure(logdir: Path) -> str:
    # Before the palette: compared runs took viridis's ends, purple and a faint yellow-green.
    datas = [RunData.of(load_run(logdir / n)) for n in ("sick", "healthy")]
    names = list(datas[0].grad_layers)
    profiles = [(n, np.array([d.medians("grad_norm")[x] for x in names])) for n, d in
                zip(("before", "after"), datas, strict=True)]  # fmt: skip
    return figures.depth_profile(names, profiles).src


def _orange_bars(root: Path) -> str:
    # Before the grey: the output's saturation drawn as a judged, orange bar.
    data = RunData.of(load_run(root / "relu"))
    dead = np.array([data.medians("dead_frac").get(n, np.nan) for n in data.act_layers])
    sat = np.array([data.medians("sat_frac").get(n, np.nan) for n in data.act_layers])
    series = [("dead", dead), ("saturated", sat)]
    return act_figures.fraction_bars(data.act_layers, series, "fraction of units").src


@pytest.fixture(scope="module")
def looks(browser, pages: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {name: _look(browser, path) for name, path in pages.items()}


@pytest.fixture(scope="module")
def grad_range(logdir: Path) -> tuple[float, float]:
    # Read with json alone, independently of the report's code.
    norms = [
        v["grad_norm"]
        for name in ("sick", "healthy")
        for line in (load_run(logdir / name).path / "stats.jsonl").read_text().splitlines()
        for v in json.loads(line)["layers"].values()
        if v.get("grad_norm", 0) > 0
    ]
    return min(norms), max(norms)


def test_pages_load_without_errors(looks) -> None:
    for name, look in looks.items():
        assert look["errors"] == [], name


def test_figures_use_the_page_width(looks) -> None:
    check_width(looks["pair"])
    check_width(looks["relu"])


def test_all_sigmoid_run_explains_its_dead_and_saturated_units(looks) -> None:
    check_no_relu_note(looks["pair"], run=0)  # the sick all-sigmoid run
    sections = [f["section"] for f in _figures(looks["pair"], "fractions")]
    assert sections == ["run1-after-activations"]  # no empty chart for the sick run


def test_output_saturation_is_grey(looks) -> None:
    check_grey_output_bar(looks["relu"])


def test_compared_runs_keep_one_colour_pair(looks) -> None:
    check_run_colours(looks["pair"])


def test_compared_heatmaps_share_one_colour_scale(looks, grad_range) -> None:
    check_shared_scale(looks["pair"], *grad_range)


def test_constant_learning_rate_axis(looks) -> None:
    check_constant_lr(looks["pair"], lr=0.05)  # conftest's runs: SGD(0.05)


def test_control_page_fails_every_check(looks, grad_range) -> None:
    broken, relu = looks["pair_broken"], looks["relu_broken"]
    checks = {
        "width": lambda: check_width(broken),
        "notes": lambda: check_no_relu_note(broken, run=0),
        "grey bar": lambda: check_grey_output_bar(relu),
        "run colours": lambda: check_run_colours(broken),
        "shared scale": lambda: check_shared_scale(broken, *grad_range),
        "learning rate": lambda: check_constant_lr(broken, lr=0.05),
    }
    passed = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError:
            continue
        passed.append(name)
    assert passed == [], f"checks that did not see the broken page: {passed}"


def test_sigmoid_only_report_has_notes_and_no_chart(browser, tmp_path: Path) -> None:
    html = render_report(sigmoid_run(tmp_path / "s"), tmp_path / "s.html")
    look = _look(browser, html)
    check_no_relu_note(look, run=0)
    assert not _figures(look, "fractions")
    assert "Saturation: 0 % in all 3 sigmoid/tanh hidden layers." in look["notes"][0]["text"]
