"""HTML report: golden structure, embedded figures, no external URLs, escaping, numbers, CLI."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from report_html import RUN_SECTIONS, Page
from synthetic_runs import dense, make_run
from typer.testing import CliRunner

from gradscope import load_run
from gradscope.cli import app
from gradscope.errors import GradscopeInputError
from gradscope.findings import Finding, Severity, write_findings
from gradscope.remedies import get_fix
from gradscope.render.html import render_report

EVIL = "<script>alert(1)</script>"


def _vanishing(layers: tuple[str, ...]) -> Finding:
    return Finding(
        "GS101",
        "vanishing_gradients",
        Severity.ERROR,
        layers,
        "Gradients vanish before the early layers.",
        {"ratio_first_last": 1e-7, "grad_rms": {layers[0]: 1e-9}},
        ("he_init", "batch_norm"),
    )


@pytest.fixture(scope="module")
def pair_report(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Page]:
    out = tmp_path_factory.mktemp("report") / "nested" / "report.html"
    sick = load_run(logdir / "sick")
    findings = {"before": [_vanishing(tuple(sick.layer_names[:3]))], "after": []}
    path = render_report([logdir / "sick", logdir / "healthy"], out, findings=findings)
    assert path == out
    html = out.read_text(encoding="utf-8")
    return html, Page(html)


def test_sections_of_both_runs_and_comparison(pair_report) -> None:
    _, page = pair_report
    sections = page.sections()
    assert sections[0] == "comparison"
    assert sections[1:] == list(RUN_SECTIONS) * 2
    text = " ".join(page.text)
    assert "before" in text and "after" in text
    assert "Problems: vanishing gradients." in text  # the before run's verdict
    assert "No problems found." in text  # the after run's verdict


def test_figures_are_embedded_png_data_uris(pair_report) -> None:
    _, page = pair_report
    images = page.tags("img")
    # comparison: depth + loss; per run: heatmap, depth, update ratio, fractions, act stats,
    # act histograms, loss; plus the finding's evidence figure. The sick sigmoid run has no
    # dead/saturated chart: no ReLU layer and 0 % saturation, said in notes instead.
    assert len(images) == 2 + 7 * 2 + 1 - 1
    assert [f["data-figure"] for f in page.tags("figure")].count("fractions") == 1
    for img in images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img["alt"]


def test_no_external_urls(pair_report) -> None:
    html, page = pair_report
    for attrs in (a for _, a in page.elements):
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), attrs
    assert "http://" not in html and "https://" not in html
    assert page.tags("link") == [] and page.tags("script") == []
    assert len(page.tags("style")) == 1  # CSS is inline


def test_findings_show_message_fixes_and_evidence_figure(pair_report) -> None:
    html, _ = pair_report
    findings_part = html.split('data-section="findings"')[1].split("</section>")[0]
    assert "Gradients vanish before the early layers." in findings_part
    for fix_id in ("he_init", "batch_norm"):
        assert get_fix(fix_id).title in findings_part
    assert findings_part.count("<img") == 1
    assert "ratio_first_last" in findings_part and "1.00e-07" in findings_part


def test_layer_table_is_window_median_of_stats_jsonl(pair_report, logdir: Path) -> None:
    html, _ = pair_report
    lines = (logdir / "sick" / "stats.jsonl").read_text().splitlines()
    values = [json.loads(x)["layers"]["hidden_1"]["grad_norm"] for x in lines]
    expected = float(np.median(values[len(values) - int(np.ceil(len(values) * 0.5)) :]))
    before = html.split('id="run1-after"')[0]
    row = before.split("<td>hidden_1</td><td>sigmoid</td>")[1].split("</tr>")[0]
    assert f"{expected:.2e}" in row


def _evil_run(path: Path):
    layers = [dense(EVIL), dense("ok_layer")]
    return make_run(
        path,
        layers,
        lambda s: {
            EVIL: {"grad_norm": 1e-6 * (s + 1), "update_ratio": 1e-6, "dead_frac": 0.8},
            "ok_layer": {"grad_norm": 0.5, "update_ratio": 1e-3, "dead_frac": 0.0},
        },
        steps=12,
    )


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    run = _evil_run(tmp_path / "run")
    finding = Finding(
        "GS103", "dying_relu", Severity.WARNING, (EVIL,), f"Layer {EVIL} died <b>bold</b>", {}, ()
    )
    out = render_report(
        {'"><img src=x onerror=alert(2)>': run}, tmp_path / "r.html", title=EVIL, findings={
            '"><img src=x onerror=alert(2)>': [finding]}
    )  # fmt: skip
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert page.tags("script") == [] and page.tags("b") == []
    assert all(img["src"].startswith("data:") for img in page.tags("img"))
    assert EVIL in "".join(page.text)  # shown as text, not dropped


def test_findings_json_is_used_and_detect_is_the_fallback(tmp_path: Path) -> None:
    run = _evil_run(tmp_path / "run")
    stored = Finding("GS999", "custom_kind", Severity.INFO, (), "Stored note from findings.json")
    write_findings(run.path, [stored])
    html = render_report(run.path, tmp_path / "a.html").read_text(encoding="utf-8")
    assert "Stored note from findings.json" in html and "Custom kind" in html

    (run.path / "findings.json").unlink()
    from gradscope.detect import detect

    detected = detect(load_run(run.path))
    html = render_report(run.path, tmp_path / "b.html").read_text(encoding="utf-8")
    assert "Stored note" not in html
    for f in detected:
        assert f.code in html


def test_bad_input_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(GradscopeInputError, match="No run directory"):
        render_report(tmp_path / "missing", tmp_path / "r.html")
    run = _evil_run(tmp_path / "run")
    with pytest.raises(GradscopeInputError, match="mapping"):
        render_report([run, run], tmp_path / "r.html", findings=[])
    with pytest.raises(GradscopeInputError, match="unknown run labels"):
        render_report(run, tmp_path / "r.html", findings={"nope": []})
    assert not (tmp_path / "r.html").exists()


def test_cli_report(logdir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.html"
    ok = runner.invoke(app, ["report", str(logdir / "sick"), "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert Page(out.read_text(encoding="utf-8")).sections() == list(RUN_SECTIONS)
    bad = runner.invoke(app, ["report", str(tmp_path / "nope"), "-o", str(tmp_path / "x.html")])
    assert bad.exit_code == 2
    assert bad.stderr.strip().count("\n") == 0 and "No run directory" in bad.stderr
    assert "Traceback" not in bad.output
    assert not (tmp_path / "x.html").exists()
