"""The HTML report and the TensorBoard dashboard opened in headless Chromium.

Each page is opened with Playwright in the system Chromium (``tests/chromium.py``; one browser
for the session, the ``browser`` fixture), waited for until its content has rendered,
screenshotted and checked for console errors, uncaught exceptions and failed loads. Skipped only
when ``/usr/bin/chromium`` is missing (CI installs Debian's).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import (
    DASHBOARD_DOCUMENT,
    Capture,
    capture,
    open_dashboard,
    open_page,
    serve_tensorboard,
)
from matplotlib import image as mpimg

from gradscope import load_run
from gradscope.collect.custom_step import activation_note, loss_note
from gradscope.detect.summary import format_grad_ratio, gradient_ratio
from gradscope.findings import Finding, Severity, write_findings
from gradscope.render import palette
from gradscope.render.html import render_report

EVIL = '<img src=x onerror="document.title=1">'
#: What a custom train step could not record (the collector's sentences), one naming EVIL.
NOT_RECORDED = [loss_note(), activation_note([EVIL])]

# What the dashboard drew: runs in order with their labels and colours, verdicts, findings,
# heatmap colour scales and colours, bars, notes, and the collapsed fix trials.
DASHBOARD_PROBE = f"""(() => {{
  const d = {DASHBOARD_DOCUMENT};
  const main = [...d.querySelectorAll('section.gs-run:not(.gs-trial)')];
  const colours = [...d.querySelectorAll('canvas.gs-heatmap')].map((c) => {{
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < px.length; i += 4) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    return seen.size;
  }});
  const trials = d.querySelector('details.gs-trials');
  return {{
    state: d.body.dataset.gradscope,
    runs: main.map((s) => s.dataset.run),
    labels: main.map((s) => s.querySelector('.gs-label').textContent),
    borders: main.map((s) => getComputedStyle(s).borderLeftColor),
    verdicts: main.map((s) => s.querySelector('.gs-verdict').className),
    findings: [...d.querySelectorAll('.gs-finding')].map((f) => f.textContent),
    bars: main.map((s) => s.querySelectorAll('.gs-bars > .gs-bar').length),
    confidence: main.flatMap((s) => [...s.querySelectorAll('.gs-confidence')].map((b) =>
      [b.previousSibling.previousSibling.previousSibling.textContent,
       getComputedStyle(b.firstChild).backgroundColor])),
    notes: main.map((s) => [...s.querySelectorAll('.gs-notes li')].map((li) => li.textContent)),
    scales: [...d.querySelectorAll('canvas.gs-heatmap')].map((c) =>
      [c.dataset.vmin, c.dataset.vmax, c.dataset.xlabel, c.dataset.xticks]),
    trials: trials && {{
      open: trials.open,
      runs: [...trials.querySelectorAll('section.gs-run')].map((s) => s.dataset.run),
      visible: trials.querySelector('section.gs-run').checkVisibility(),
      // Shown on request: a click on the summary opens it (the last thing the probe does).
      clicked: (trials.querySelector('summary').click(),
                trials.querySelector('section.gs-run').checkVisibility()),
    }},
    images: d.querySelectorAll('img').length,
    colours,
    title: document.title,
    ratios: main.map((s) => {{
      const r = s.querySelector('.gs-ratio');
      return r && [r.textContent, r.checkVisibility() && r.getBoundingClientRect().height > 0];
    }}),
    notRecorded: main.map((s) => [...s.querySelectorAll('.gs-not-recorded li')].map((li) =>
      [li.textContent, li.checkVisibility() && li.getBoundingClientRect().height > 0])),
  }};
}})()"""


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _pixels(shot: Capture) -> np.ndarray:
    image = mpimg.imread(io.BytesIO(shot.png), format="png")
    return (np.asarray(image)[..., :3] * 255).round().astype(np.uint8)


def _assert_not_blank(shot: Capture, min_ink: float, min_colours: int) -> None:
    rgb = _pixels(shot).astype(np.uint32)
    # One integer per pixel: np.unique on a 1-D array is far faster than on rows.
    packed = ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]).ravel()
    colours, counts = np.unique(packed, return_counts=True)
    background = colours[counts.argmax()]
    ink = float(np.mean(packed != background))
    print(f"ink {ink:.1%}, {len(colours)} colours")  # shown with -s: the measured margins
    assert ink >= min_ink, f"only {ink:.1%} of the pixels differ from the background"
    assert len(colours) >= min_colours, f"only {len(colours)} distinct colours"


REPORT_READY = "document.readyState === 'complete' && [...document.images].every(i => i.complete)"
REPORT_PROBE = """({
  sections: [...document.querySelectorAll('section[data-section]')].map(s => s.dataset.section),
  images: document.images.length,
  broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
  height: document.documentElement.scrollHeight,
  ratios: [...document.querySelectorAll('[data-grad-ratio], [data-grad-ratio-change]')].map(e => ({
    tag: e.tagName.toLowerCase(),
    label: e.tagName === 'DD' ? e.previousElementSibling.innerText : null,
    text: e.innerText,
    visible: e.checkVisibility() && e.getBoundingClientRect().height > 0,
  })),
})"""


@pytest.fixture(scope="module")
def report_path(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report.html"
    # The demo's shape: a before/after comparison of a sick and a healthy run.
    render_report({"before": logdir / "sick", "after": logdir / "healthy"}, out)
    return out


@pytest.fixture(scope="module")
def report_capture(browser, report_path: Path) -> Capture:
    page = open_page(browser, report_path.as_uri(), ready=REPORT_READY, width=1200, height=1600)
    return capture(page, REPORT_PROBE)


def test_report_renders_without_errors(report_capture: Capture) -> None:
    assert report_capture.errors == ()
    probe: dict[str, Any] = report_capture.probe
    assert probe["sections"][0] == "comparison"
    assert probe["sections"].count("heatmap") == 2
    assert probe["images"] >= 10 and probe["broken"] == 0  # every data-URI figure decodes
    assert probe["height"] > 1600  # a long report, the screenshot is its first screen


def _ratio(run_dir: Path) -> tuple[str, str]:
    """A run's ratio text and the terminal's line, from the one definition (detect/summary)."""
    ratio = gradient_ratio(load_run(run_dir))
    assert ratio is not None
    text = format_grad_ratio(ratio.value)
    start, end = ratio.window_steps
    return text, (
        f"first/last gradient ratio {text}: per-weight gradient RMS of '{ratio.first_layer}' "
        f"over '{ratio.last_layer}', medians of steps {start}–{end}"
    )


def test_report_shows_the_gradient_ratio(report_capture: Capture, logdir: Path) -> None:
    (before, before_line), (after, after_line) = (_ratio(logdir / n) for n in ("sick", "healthy"))
    assert before != after  # the sick run vanishes, the healthy one does not
    ratios = report_capture.probe["ratios"]
    assert ratios and all(r["visible"] for r in ratios), ratios
    # The comparison: each run's ratio, then before → after as gradscope fix writes it.
    assert [(r["tag"], r["text"]) for r in ratios[:3]] == [
        ("td", before),
        ("td", after),
        ("p", f"first/last gradient ratio {before} → {after}"),
    ]
    # Each run's summary: the terminal's line, "first/last gradient ratio" as the term.
    assert [f"{r['label']} {r['text']}" for r in ratios[3:]] == [before_line, after_line]


def test_report_screenshot_is_not_blank(report_capture: Capture) -> None:
    assert report_capture.png[:8] == b"\x89PNG\r\n\x1a\n"
    rgb = _pixels(report_capture)
    assert rgb.shape == (1600, 1200, 3)
    # Text, tables and the first figures: measured ~25 % ink and thousands of colours.
    _assert_not_blank(report_capture, min_ink=0.05, min_colours=200)


def _set_created(run_dir: Path, created: str) -> None:
    meta_path = load_run(run_dir).path / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["created"] = created
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


def _set_not_recorded(run_dir: Path, notes: list[str]) -> None:
    # Where the collector keeps them (gradscope/collect/session.py).
    meta_path = load_run(run_dir).path / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["config"]["not_recorded"] = notes
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture(scope="module")
def dashboard_logdir(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A copy of the real runs where the sick one (trained first) has a finding whose strings are
    # hostile, and a fix trial made between the two, as `gradscope demo` leaves them.
    root = tmp_path_factory.mktemp("dashboard")
    for name in ("sick", "healthy"):
        shutil.copytree(logdir / name, root / name)
    shutil.copytree(logdir / "healthy", root / "trials" / "original")
    for name, created in (("sick", "10:00"), ("trials/original", "10:05"), ("healthy", "10:10")):
        _set_created(root / name, f"2026-11-23T{created}:00+00:00")
    _set_not_recorded(root / "sick", NOT_RECORDED)
    finding = Finding(
        "GS101",
        "vanishing_gradients",
        Severity.ERROR,
        ("hidden_1", "hidden_2"),
        f"Gradients vanish before the early layers {EVIL}",
        {"ratio_first_last": 1e-7},
        ("he_init", "batch_norm"),
    )
    write_findings(load_run(root / "sick").path, [finding])
    return root


@pytest.fixture(scope="module")
def dashboard_captures(browser, dashboard_logdir: Path) -> dict[str, Capture]:
    with serve_tensorboard(dashboard_logdir) as url:
        entry = open_dashboard(browser, url, in_tensorboard_ui=False, width=1280)
        entry_shot = capture(entry, DASHBOARD_PROBE, full_page=True)
        # TensorBoard's own UI with the gradscope tab selected: the plugin in its iframe.
        ui = capture(open_dashboard(browser, url, width=1400, height=1000), DASHBOARD_PROBE)
    return {"entry": entry_shot, "ui": ui}


def check_order(probe: dict[str, Any]) -> None:
    # Creation order (before, then after) and which run is which, in the report's colours.
    assert probe["runs"] == ["sick", "healthy"], probe["runs"]
    assert probe["labels"] == ["before", "after"]
    assert probe["borders"] == [_rgb(palette.BEFORE), _rgb(palette.AFTER)]


@pytest.mark.parametrize("page", ["entry", "ui"])
def test_dashboard_renders_runs_heatmaps_and_findings(dashboard_captures, page: str) -> None:
    shot = dashboard_captures[page]
    assert shot.errors == ()
    probe = shot.probe
    assert probe["state"] == "rendered"
    check_order(probe)
    assert probe["verdicts"] == ["gs-verdict gs-error", "gs-verdict gs-ok"]
    # Each heatmap canvas holds many colours (cells on a log scale plus the legend).
    assert len(probe["colours"]) == 3 and min(probe["colours"]) >= 20
    # The sick run's bars would all be empty (no ReLU layer, 0 % saturated): notes instead, as
    # in the report; the healthy run: 6 layers × (dead, saturated).
    assert probe["bars"] == [0, 6 * 2]
    assert "No ReLU-family layers: the dead fraction does not apply." in probe["notes"][0]
    # Only the output layer's saturation bar is the neutral "confidence" one, in grey.
    assert probe["confidence"] == [["output", _rgb(palette.CONFIDENCE)]]
    assert len(probe["findings"]) == 1
    assert "GS101" in probe["findings"][0] and EVIL in probe["findings"][0]
    # The hostile message is text: no <img> was created and its onerror never ran.
    assert probe["images"] == 0
    assert probe["title"] != "1"


@pytest.mark.parametrize("page", ["entry", "ui"])
def test_dashboard_shows_the_ratio_and_what_was_not_recorded(
    dashboard_captures, dashboard_logdir: Path, page: str
) -> None:
    probe = dashboard_captures[page].probe
    # Each run header: the terminal's line, visible.
    lines = [_ratio(dashboard_logdir / name)[1] for name in ("sick", "healthy")]
    assert probe["ratios"] == [[line, True] for line in lines]
    # The sick run's notes as text (EVIL drew no <img>: the main test counts 0 images); none for
    # the healthy run.
    assert probe["notRecorded"] == [[[note, True] for note in NOT_RECORDED], []]


def test_dashboard_lists_fix_trials_apart_and_collapsed(dashboard_captures) -> None:
    trials = dashboard_captures["entry"].probe["trials"]
    assert trials == {"open": False, "runs": ["trials/original"], "visible": False, "clicked": True}


def test_dashboard_heatmaps_share_one_colour_scale(dashboard_captures, logdir: Path) -> None:
    scales = dashboard_captures["entry"].probe["scales"]
    assert len(scales) == 3 and len({(lo, hi) for lo, hi, _, _ in scales}) == 1
    norms = [
        v["grad_norm"]
        for name in ("sick", "healthy")
        for line in (load_run(logdir / name).path / "stats.jsonl").read_text().splitlines()
        for v in json.loads(line)["layers"].values()
        if v.get("grad_norm", 0) > 0
    ]
    assert float(scales[0][0]) == pytest.approx(min(norms), rel=1e-5)
    assert float(scales[0][1]) == pytest.approx(max(norms), rel=1e-5)
    for _, _, xlabel, xticks in scales:
        ticks = [int(t) for t in xticks.split(",")]
        assert xlabel == "step" and len(set(np.diff(ticks))) == 1, xticks


def test_dashboard_order_check_fails_on_a_control(browser, dashboard_logdir, tmp_path) -> None:
    # The control: the same runs, the healthy one now the older. Listed by name the check above
    # could pass by chance; here the dashboard must put "healthy" first and the check fail.
    for name in ("sick", "healthy"):
        shutil.copytree(dashboard_logdir / name, tmp_path / name)
    _set_created(tmp_path / "sick", "2026-11-23T11:00:00+00:00")
    with serve_tensorboard(tmp_path) as url:
        probe = capture(open_dashboard(browser, url, in_tensorboard_ui=False), DASHBOARD_PROBE)
    assert probe.probe["runs"] == ["healthy", "sick"]
    with pytest.raises(AssertionError):
        check_order(probe.probe)


def test_dashboard_screenshots_are_not_blank(dashboard_captures) -> None:
    _assert_not_blank(dashboard_captures["entry"], min_ink=0.05, min_colours=100)
    ui = _pixels(dashboard_captures["ui"])
    assert ui.shape == (1000, 1400, 3)
    _assert_not_blank(dashboard_captures["ui"], min_ink=0.05, min_colours=100)
    # TensorBoard's orange header bar is there: the dashboard sits inside TensorBoard's UI.
    header = ui[10:40, :].reshape(-1, 3).astype(int)
    orange = (header[:, 0] > 200) & (header[:, 1] > 90) & (header[:, 1] < 160) & (header[:, 2] < 60)
    assert orange.mean() > 0.5


def test_console_errors_are_reported(browser, tmp_path: Path) -> None:
    # The check above would be vacuous if errors were never seen: a page that fails on purpose.
    page = tmp_path / "bad.html"
    page.write_text(
        "<body><p>x</p><script>console.error('boom'); undefinedFunction();</script>"
        '<img src="missing.png"></body>',
        encoding="utf-8",
    )
    shot = capture(open_page(browser, page.as_uri(), width=400, height=300))
    errors = " | ".join(shot.errors)
    assert "console.error: boom" in errors
    assert "undefinedFunction is not defined" in errors
    assert "missing.png" in errors
    # ... and the blank-screenshot check rejects a page that is almost all background.
    with pytest.raises(AssertionError, match="differ from the background"):
        _assert_not_blank(shot, min_ink=0.05, min_colours=100)
