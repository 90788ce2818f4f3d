"""One number, one definition: the first/last gradient ratio and the run summary in every view.

On one recorded run of a deep sigmoid net, the ratio is recomputed here from ``meta.json`` and
``stats.jsonl`` with json + numpy alone (first and last trainable kernel layer, per-weight RMS
= grad_norm / sqrt(params), medians over the last half of the records) and compared with what
the vanishing finding, ``findings.json``, the demo headline, the fix trial summary, the audit
JSON summary, the terminal, the HTML report (its run summary and its before → after comparison)
and the dashboard's ``/data`` payload carry; the formatted text must be identical everywhere.
The run's
:class:`RunSummary` (window medians per layer, final loss, verdict) is recomputed the same way,
and the terminal, the HTML report and the dashboard payload must show its numbers as the same
strings.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from report_html import Texts
from rich.console import Console
from synthetic_runs import sigmoid_run
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from gradscope.audit.command import summary_json
from gradscope.collect.callback import GradScope
from gradscope.data.store import load_run
from gradscope.demo import first_last_ratio, load_digits_data, sick_model
from gradscope.detect import detect
from gradscope.detect.summary import (
    GRAD_RATIO_KEY,
    SUMMARY_STATS,
    RunSummary,
    format_grad_ratio,
    gradient_ratio,
)
from gradscope.findings import KINDS, findings_from_json
from gradscope.fix.summary import comparison_table
from gradscope.fix.trials import compare, ratio_change, summarize
from gradscope.render import fmt
from gradscope.render.html import render_report
from gradscope.render.tb_plugin.plugin import GradscopePlugin
from gradscope.render.tb_plugin.runs import dashboard_payload
from gradscope.render.terminal import summary_renderable


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, list]:
    keras.utils.set_random_seed(0)
    x, y = load_digits_data()
    model = sick_model(depth=8, width=32)
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    run_dir = tmp_path_factory.mktemp("ratio") / "run"
    callback = GradScope(run_dir, freq=1, tensorboard=False, verbose=0)
    model.fit(x[:640], y[:640], batch_size=32, epochs=2, verbose=0, callbacks=[callback])
    return run_dir, list(callback.findings)


def independent_ratio(run_dir: Path) -> tuple[float, str, str]:
    """The ratio from the raw files: json + numpy, none of gradscope's code."""
    meta_path = next(run_dir.rglob("meta.json"))
    meta = json.loads(meta_path.read_text())
    kernels = [
        layer
        for layer in meta["model"]["layers"]
        if layer["trainable"] and layer["watched"] and "kernel" in layer["variables"]
    ]
    first, last = kernels[0], kernels[-1]
    lines = (meta_path.parent / "stats.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    # The run is finite throughout, so "records before the first NaN" are all of them.
    assert all(math.isfinite(r["loss"]) for r in records)
    size = max(3, math.ceil(len(records) * 0.5))
    window = records[len(records) - size :]

    def rms(layer: dict) -> float:
        norms = [r["layers"][layer["name"]]["grad_norm"] for r in window]
        return float(np.median(norms)) / math.sqrt(layer["params"])

    return rms(first) / rms(last), first["name"], last["name"]


def test_every_view_carries_the_same_ratio(recorded) -> None:
    run_dir, callback_findings = recorded
    expected, first, last = independent_ratio(run_dir)
    assert expected < 1e-3  # the deep sigmoid stack does vanish, so the finding is there
    run = load_run(run_dir)

    measured = gradient_ratio(run)
    assert measured is not None
    assert measured.value == pytest.approx(expected, rel=1e-9)
    assert (measured.first_layer, measured.last_layer) == (first, last)

    vanishing = next(f for f in callback_findings if f.kind == "vanishing_gradients")
    assert vanishing.evidence[GRAD_RATIO_KEY] == pytest.approx(expected, rel=1e-9)
    on_disk = findings_from_json(json.loads(next(run_dir.rglob("findings.json")).read_text()))
    stored = next(f for f in on_disk if f.kind == "vanishing_gradients")
    assert stored.evidence[GRAD_RATIO_KEY] == pytest.approx(expected, rel=1e-9)

    assert first_last_ratio(run) == pytest.approx(expected, rel=1e-9)  # the demo headline

    trial = summarize(run, detect(run))
    assert trial.first_last_grad_ratio == pytest.approx(expected, rel=1e-9)
    assert trial.to_json()[GRAD_RATIO_KEY] == pytest.approx(expected, rel=1e-9)
    assert trial.grad_rms[first] / trial.grad_rms[last] == pytest.approx(expected, rel=1e-9)

    audit_doc = json.loads(json.dumps(summary_json(RunSummary.of(run)), allow_nan=False))
    assert audit_doc[GRAD_RATIO_KEY] == pytest.approx(expected, rel=1e-9)


def _render(renderable) -> str:
    console = Console(width=400, file=io.StringIO())  # wide: no wrapping inside the text
    console.print(renderable)
    return console.file.getvalue()


def test_every_view_writes_the_same_text(recorded) -> None:
    run_dir, callback_findings = recorded
    expected, _, _ = independent_ratio(run_dir)
    # The text, by hand: the value to 2 significant digits and its distance from 1 in decades.
    text = f"{expected:.1e} ({-math.log10(expected):.1f} orders of magnitude)"
    assert format_grad_ratio(expected) == text
    assert fmt.grad_ratio is format_grad_ratio  # views format with the one function
    run = load_run(run_dir)

    vanishing = next(f for f in callback_findings if f.kind == "vanishing_gradients")
    assert vanishing.evidence["first_last_grad_ratio_text"] == text
    assert text in vanishing.message

    terminal = _render(summary_renderable(run, callback_findings))
    assert f"first/last gradient ratio {text}" in terminal  # the summary line
    assert terminal.count(text) >= 2  # ... and the finding's message

    trial = summarize(run, detect(run))
    assert trial.to_json()["first_last_grad_ratio_text"] == text
    assert summary_json(RunSummary.of(run))["first_last_grad_ratio_text"] == text
    same = compare(trial, trial)
    assert ratio_change(same) == f"first/last gradient ratio {text} → {text}"
    table = _render(comparison_table_for(same))
    assert table.count(text) == 2  # original and fixed columns


def independent_window_steps(run_dir: Path) -> tuple[int, int]:
    """First and last step of the ratio's window (last half, at least 3 records): json only."""
    lines = (next(run_dir.rglob("stats.jsonl"))).read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines if line.strip()]
    window = steps[len(steps) - max(3, math.ceil(len(steps) * 0.5)) :]
    return window[0], window[-1]


def _by_hand(value: float) -> str:
    # The text, by hand: the value to 2 significant digits and its distance from 1 in decades.
    return f"{value:.1e} ({abs(math.log10(value)):.1f} orders of magnitude)"


def _data_route(logdir: Path, name: str) -> dict:
    """The dashboard's ``/data`` payload as the browser gets it, through TensorBoard's WSGI app."""
    plugin = GradscopePlugin(base_plugin.TBContext(logdir=str(logdir)))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]), wrappers.Response)
    response = client.get("/data/plugin/gradscope/data", query_string={"run": name})
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


def test_terminal_html_dashboard_and_json_write_the_same_ratio_line(recorded, tmp_path) -> None:
    run_dir, _ = recorded
    expected, first, last = independent_ratio(run_dir)
    start, end = independent_window_steps(run_dir)
    text = _by_hand(expected)
    line = (
        f"first/last gradient ratio {text}: per-weight gradient RMS of '{first}' over "
        f"'{last}', medians of steps {start}–{end}"
    )
    run = load_run(run_dir)

    terminal = _render(summary_renderable(run))
    assert [x.rstrip() for x in terminal.splitlines() if x.startswith("first/last")] == [line]

    # The report's run summary: "first/last gradient ratio" (dt), then the number and the rest.
    page = Texts(render_report(run.path, tmp_path / "one.html").read_text(encoding="utf-8"))
    ((index, shown),) = page.find("dd", "data-grad-ratio")
    assert f"{page.previous(index, 'dt')} {shown}" == line
    tag, _, number = page.elements[index + 1]
    assert (tag, "".join(number)) == ("strong", text)

    payload = _data_route(run_dir, run.path.relative_to(run_dir).as_posix())
    assert payload[GRAD_RATIO_KEY] == pytest.approx(expected, rel=1e-9)
    assert payload["first_last_grad_ratio_text"] == text
    assert payload["grad_ratio_line"] == line

    audit_doc = json.loads(json.dumps(summary_json(RunSummary.of(run)), allow_nan=False))
    assert audit_doc["first_last_grad_ratio_text"] == text


def test_report_comparison_shows_the_ratio_before_and_after(recorded, tmp_path) -> None:
    run_dir, _ = recorded
    before = _by_hand(independent_ratio(run_dir)[0])
    # The synthetic sick run: first layer's grad_norm 1e-6 over the output's 0.5, 100 weights
    # each, every step: the ratio is 2e-6 exactly.
    after = _by_hand(1e-6 / 0.5)
    assert after == "2.0e-06 (5.7 orders of magnitude)"
    other = sigmoid_run(tmp_path / "sigmoid")
    html = render_report({"before": run_dir, "after": other.path}, tmp_path / "pair.html")
    page = Texts(html.read_text(encoding="utf-8"))
    assert [t for _, t in page.find("td", "data-grad-ratio")] == [before, after]
    change = [t for _, t in page.find("p", "data-grad-ratio-change")]
    # As gradscope fix writes a trial's change (fix.trials.ratio_change).
    assert change == [f"first/last gradient ratio {before} → {after}"]
    # ... and each run's own summary below says the same number.
    assert [t.split(":")[0] for _, t in page.find("dd", "data-grad-ratio")] == [before, after]


def comparison_table_for(verification):
    class _Result:  # comparison_table reads only result.overall
        overall = verification

    return comparison_table(_Result())


def test_formatter_edge_cases() -> None:
    assert format_grad_ratio(None) == fmt.MISSING
    assert format_grad_ratio(float("nan")) == fmt.MISSING
    assert format_grad_ratio(0.0) == "0 (no gradient reaches the first layer)"
    assert format_grad_ratio(500.0) == "5.0e+02 (2.7 orders of magnitude)"  # log10(500) = 2.70
    assert format_grad_ratio(1.0) == "1.0e+00 (0.0 orders of magnitude)"


def independent_summary(run_dir: Path) -> dict:
    """Window medians per layer, final loss and counts from the raw files: json + numpy only."""
    meta_path = next(run_dir.rglob("meta.json"))
    names = [layer["name"] for layer in json.loads(meta_path.read_text())["model"]["layers"]]
    lines = (meta_path.parent / "stats.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    window = records[len(records) - max(1, math.ceil(len(records) * 0.5)) :]
    medians: dict[str, dict[str, float]] = {}
    for stat in ("grad_norm", "update_ratio", "dead_frac", "sat_frac", "act_mean", "act_std"):
        medians[stat] = {}
        for name in names:
            values = [r["layers"].get(name, {}).get(stat) for r in window]
            finite = np.array([v for v in values if v is not None], dtype=float)
            finite = finite[np.isfinite(finite)]
            if finite.size:
                medians[stat][name] = float(np.median(finite))
    doc = json.loads((meta_path.parent / "findings.json").read_text())
    severities = [f["severity"] for f in doc["findings"]]
    return {
        "names": names,
        "medians": medians,
        "n_records": len(records),
        "window_steps": (window[0]["step"], window[-1]["step"]),
        "final_loss": [r["loss"] for r in records if math.isfinite(r["loss"])][-1],
        "counts": {s: severities.count(s) for s in ("error", "warning", "info")},
        "kinds": {
            s: [f["kind"] for f in doc["findings"] if f["severity"] == s]
            for s in ("error", "warning")
        },
    }


def test_run_summary_equals_an_independent_computation(recorded) -> None:
    run_dir, callback_findings = recorded
    expected = independent_summary(run_dir)
    summary = RunSummary.of(load_run(run_dir), callback_findings)
    assert tuple(summary.medians) == SUMMARY_STATS
    for stat, per_layer in expected["medians"].items():
        assert list(summary.medians[stat]) == list(per_layer)  # same layers, forward order
        for name, value in per_layer.items():
            assert summary.median(name, stat) == pytest.approx(value, rel=1e-12), (stat, name)
    assert expected["medians"]["sat_frac"] and expected["medians"]["update_ratio"]  # not vacuous
    assert summary.n_records == expected["n_records"]
    assert summary.window_steps == expected["window_steps"]
    assert summary.final_loss == pytest.approx(expected["final_loss"], rel=1e-12)
    assert summary.grad_ratio is not None
    assert summary.grad_ratio.value == pytest.approx(independent_ratio(run_dir)[0], rel=1e-9)
    assert dict(summary.counts) == expected["counts"]
    # The verdict names the worst findings' kinds by their registered titles, in order.
    level, word = ("error", "Problems") if expected["counts"]["error"] else ("warning", "Warnings")
    titles = list(dict.fromkeys(KINDS[k].title.lower() for k in expected["kinds"][level]))
    assert titles and summary.verdict == f"{word}: {', '.join(titles)}."
    assert summary.verdict_level == level
    doc = summary_json(summary)
    assert doc["verdict"] == summary.verdict and doc["n_records"] == expected["n_records"]
    assert doc["window_medians"]["layers"][expected["names"][0]]["grad_norm"] == pytest.approx(
        expected["medians"]["grad_norm"][expected["names"][0]], rel=1e-12
    )


def _terminal_row(text: str, name: str) -> list[str]:
    # The table row of one layer: its cells, stripped (rich draws cells between "│").
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no terminal row for {name!r}")


def test_terminal_html_and_dashboard_show_the_same_summary(recorded, tmp_path) -> None:
    run_dir, _ = recorded
    run = load_run(run_dir)
    # Each view with its defaults: the findings come from the run's findings.json.
    terminal = _render(summary_renderable(run))
    html = render_report(run.path, tmp_path / "report.html").read_text(encoding="utf-8")
    payload = dashboard_payload("run", run.path)
    summary = RunSummary.of(
        run, findings_from_json(json.loads((run.path / "findings.json").read_text()))
    )

    assert summary.verdict in terminal and summary.verdict in html
    assert payload["verdict"] == summary.verdict and payload["n_records"] == summary.n_records
    assert summary.grad_ratio is not None and summary.grad_ratio.text in terminal
    shown = 0
    for name in run.layer_names:
        want = [
            fmt.sci(summary.median(name, "grad_norm")),
            fmt.sci(summary.median(name, "update_ratio")),
            fmt.pct(summary.median(name, "dead_frac")),
            fmt.pct(summary.median(name, "sat_frac")),
        ]
        assert _terminal_row(terminal, name)[2:6] == want, name
        row = html.split(f"<td>{name}</td>", 1)[1].split("</tr>", 1)[0]
        cells = [c.split(">", 1)[1] for c in row.split("</td>")[1:5]]
        assert cells == want, name
        if name in payload["act_layers"]:
            i = payload["act_layers"].index(name)
            got = [fmt.pct(payload["dead_frac"][i]), fmt.pct(payload["sat_frac"][i])]
            assert got == want[2:], name
            shown += 1
    assert shown >= 2  # the dashboard's fractions were compared, not skipped
