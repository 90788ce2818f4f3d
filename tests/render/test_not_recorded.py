"""What a custom ``train_step`` could not record, in every view of its run.

The collector keeps one plain sentence per thing it could not record under ``meta.json``'s
``config.not_recorded`` (``gradscope/collect/session.py``). A synthetic run gets such notes the
same way (the real sentences, one naming a hostile layer), and the HTML report's run summary, the
dashboard's ``/data`` payload, the terminal summary and ``gradscope report`` must show each of
them, verbatim and escaped; a run without notes shows no list.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_html import Texts, section
from rich.console import Console
from synthetic_runs import relu_run
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from typer.testing import CliRunner
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from gradscope import load_run
from gradscope.cli import app
from gradscope.collect.custom_step import activation_note, loss_note
from gradscope.render.html import render_report
from gradscope.render.run_summary import not_recorded
from gradscope.render.tb_plugin.plugin import GradscopePlugin
from gradscope.render.terminal import print_summary

EVIL = "<script>alert(1)</script>"
#: What a distiller-like train step leaves unrecorded, in the collector's own words.
NOTES = [loss_note(), activation_note(["decoder/dense", EVIL])]


def note_run(run_dir: Path, notes: object) -> None:
    """Writes ``config.not_recorded`` into a run's ``meta.json``, as the collector does."""
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["config"]["not_recorded"] = notes
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, Path]:
    """Two synthetic ReLU runs: ``noted`` with :data:`NOTES`, ``plain`` without."""
    noted = relu_run(tmp_path / "noted").path
    note_run(noted, NOTES)
    return {"noted": noted, "plain": relu_run(tmp_path / "plain").path}


def _listed(html: str, run: int = 0) -> list[str]:
    # The list's items in the summary of the run-th run, as a reader sees them (entities decoded).
    page = Texts(section(html, "summary", run))
    ((index, _),) = page.find("ul", "data-notes")
    assert page.elements[index][1]["data-notes"] == "not-recorded"
    assert page.previous(index, "h3") == "Not recorded"
    return [text for i, text in page.find("li") if i > index]


def test_report_lists_the_notes_in_the_run_summary(runs, tmp_path: Path) -> None:
    html = render_report(runs["noted"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert _listed(html) == NOTES
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_without_notes_has_no_list(runs, tmp_path: Path) -> None:
    html = render_report(runs["plain"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "not-recorded" not in html and "Not recorded" not in html
    with pytest.raises(ValueError):  # the helper above finds nothing to list
        _listed(html)


def test_compared_runs_keep_their_own_notes(runs, tmp_path: Path) -> None:
    pair = {"before": runs["plain"], "after": runs["noted"]}
    html = render_report(pair, tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-notes="not-recorded"' not in section(html, "summary", 0)
    assert _listed(html, run=1) == NOTES


def _payload(logdir: Path, name: str) -> dict:
    plugin = GradscopePlugin(base_plugin.TBContext(logdir=str(logdir)))
    client = werkzeug_test.Client(application.TensorBoardWSGI([plugin]), wrappers.Response)
    response = client.get("/data/plugin/gradscope/data", query_string={"run": name})
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


def test_dashboard_payload_carries_the_notes(runs) -> None:
    logdir = runs["noted"].parent
    assert _payload(logdir, "noted")["not_recorded"] == NOTES
    assert _payload(logdir, "plain")["not_recorded"] == []


def test_dashboard_payload_follows_new_notes(runs) -> None:
    # The payload is cached per run until its files change; meta.json is one of them.
    logdir = runs["plain"].parent
    assert _payload(logdir, "plain")["not_recorded"] == []
    note_run(runs["plain"], NOTES[:1])
    assert _payload(logdir, "plain")["not_recorded"] == NOTES[:1]


def test_terminal_summary_lists_the_notes(runs) -> None:
    console = Console(record=True, width=400)
    print_summary(runs["noted"], [], console=console)
    lines = [x.strip() for x in console.export_text().splitlines()]
    listed = [x for x in lines if x.startswith("not recorded")]
    assert listed == [f"not recorded: {n}" for n in NOTES]

    console = Console(record=True, width=400)
    print_summary(runs["plain"], [], console=console)
    assert "not recorded" not in console.export_text()


def test_cli_report_writes_the_notes(runs, tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    result = CliRunner().invoke(app, ["report", str(runs["noted"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert _listed(out.read_text(encoding="utf-8")) == NOTES


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (["kept", 3, None, "", "  ", {"x": 1}, "also kept"], ("kept", "also kept")),
        ("one sentence", ("one sentence",)),
        ({"not": "a list"}, ()),
        (None, ()),
    ],
)
def test_notes_on_disk_that_are_not_sentences_are_skipped(runs, raw, shown) -> None:
    # meta.json is a file anyone can edit: only strings are shown, and nothing breaks.
    note_run(runs["plain"], raw)
    assert not_recorded(load_run(runs["plain"])) == shown
