"""The "gradscope" TensorBoard plugin's HTTP routes, served by TensorBoard's own WSGI app.

As TensorBoard's plugin tests do: a ``TBContext`` on a real log dir, the plugin mounted in
``application.TensorBoardWSGI`` and werkzeug's test ``Client`` in front of it, so the routes are
reached at the URLs the dashboard uses (``/data/plugin/gradscope/...``).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test
from werkzeug import wrappers

from gradscope import load_run
from gradscope.config import DETECT_THRESHOLDS
from gradscope.findings import Finding, Severity, write_findings
from gradscope.render import palette
from gradscope.render.tb_plugin.plugin import GradscopePlugin

PREFIX = "/data/plugin/gradscope"


def _client(logdir: Path | str) -> werkzeug_test.Client:
    plugin = GradscopePlugin(base_plugin.TBContext(logdir=str(logdir)))
    app = application.TensorBoardWSGI([plugin])
    return werkzeug_test.Client(app, wrappers.Response)


def _get_json(client: werkzeug_test.Client, path: str, **query: str) -> tuple[int, Any]:
    response = client.get(PREFIX + path, query_string=query)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_data(as_text=True))


def _stats(run_dir: Path) -> list[dict[str, Any]]:
    # Parsed here with json only, independently of gradscope's loader.
    lines = (run_dir / "stats.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def client(logdir: Path) -> werkzeug_test.Client:
    return _client(logdir)


def _names(client: werkzeug_test.Client) -> list[str]:
    status, listing = _get_json(client, "/runs")
    assert status == 200
    return [entry["run"] for entry in listing["runs"]]


def test_runs_lists_both_runs_oldest_first_with_labels_and_palette(client, logdir: Path) -> None:
    status, listing = _get_json(client, "/runs")
    assert status == 200
    # Creation order (the sick run was fitted first), not alphabetical order.
    created = {n: json.loads((load_run(logdir / n).path / "meta.json").read_text())["created"]
               for n in ("sick", "healthy")}  # fmt: skip
    assert created["sick"] <= created["healthy"]
    runs = listing["runs"]
    assert [e["run"] for e in runs] == ["sick", "healthy"]
    assert [e["label"] for e in runs] == ["before", "after"]
    assert [e["trial"] for e in runs] == [False, False]
    assert [e["created"] for e in runs] == [created["sick"], created["healthy"]]
    assert [e["colour"] for e in runs] == [palette.BEFORE, palette.AFTER]
    assert listing["palette"] == palette.as_json()


def test_data_equals_stats_jsonl(client, logdir: Path) -> None:
    status, payload = _get_json(client, "/data", run="sick")
    assert status == 200
    records = _stats(logdir / "sick")
    assert payload["run"] == "sick"
    assert payload["n_records"] == len(records)
    assert payload["model"] == "deep_sigmoid"
    # Few records: the heatmap is not thinned, one column per record.
    assert payload["steps"] == [r["step"] for r in records]
    # Every Dense layer has gradients; forward order as in the model.
    assert payload["layers"] == [f"hidden_{i}" for i in range(1, 6)] + ["output"]
    for i, layer in enumerate(payload["layers"]):
        expected = [r["layers"][layer]["grad_norm"] for r in records]
        np.testing.assert_allclose(payload["grad_norm"][i], expected, rtol=1e-12)

    # Dead/saturated fractions: median over the detectors' window (last fraction of records);
    # null for layers whose activation kind has no such statistic (sigmoid units never "die").
    n = len(records)
    start = n - math.ceil(n * DETECT_THRESHOLDS.window.fraction)
    assert 0 < start < n
    assert payload["act_layers"] == payload["layers"]
    for stat in ("dead_frac", "sat_frac"):
        for i, layer in enumerate(payload["act_layers"]):
            window = [
                r["layers"][layer][stat] for r in records[start:] if stat in r["layers"][layer]
            ]
            if not window:
                # pytest 9's approx refuses None; "not applicable" must come back as null.
                assert payload[stat][i] is None, (stat, layer)
                continue
            want = float(np.median(window))
            assert payload[stat][i] == pytest.approx(want, rel=1e-12), (stat, layer)
    # Sigmoid layers record saturation, not dead units.
    assert payload["sat_frac"][0] is not None and payload["dead_frac"][0] is None


def test_data_findings_follow_findings_json(tmp_path: Path, logdir: Path) -> None:
    shutil.copytree(logdir / "sick", tmp_path / "sick")
    client = _client(tmp_path)
    _, before = _get_json(client, "/data", run="sick")
    assert before["findings"] == []  # a 2-epoch toy run: nothing detected yet
    finding = Finding(
        "GS101",
        "vanishing_gradients",
        Severity.ERROR,
        ("hidden_1", "hidden_2"),
        "Gradients vanish before the early layers.",
        {"ratio_first_last": 1e-7},
        ("he_init", "batch_norm"),
    )
    write_findings(tmp_path / "sick", [finding])
    stored = json.loads((tmp_path / "sick" / "findings.json").read_text(encoding="utf-8"))
    # Same plugin instance: its cache must notice the new findings.json.
    _, after = _get_json(client, "/data", run="sick")
    got = [(f["code"], f["kind"], f["severity"], f["layers"]) for f in after["findings"]]
    want = [(f["code"], f["kind"], f["severity"], f["layers"]) for f in stored["findings"]]
    assert got == want == [("GS101", "vanishing_gradients", "error", ["hidden_1", "hidden_2"])]
    assert after["findings"][0]["message"] == "Gradients vanish before the early layers."
    assert [x["id"] for x in after["findings"][0]["fixes"]] == ["he_init", "batch_norm"]
    assert after["verdict_level"] == "error" and before["verdict_level"] != "error"


def test_data_of_the_healthy_run_differs(client, logdir: Path) -> None:
    _, sick = _get_json(client, "/data", run="sick")
    _, healthy = _get_json(client, "/data", run="healthy")
    assert healthy["model"] == "deep_relu"
    first = [r["layers"]["hidden_1"]["grad_norm"] for r in _stats(logdir / "healthy")]
    np.testing.assert_allclose(healthy["grad_norm"][0], first, rtol=1e-12)
    assert healthy["grad_norm"] != sick["grad_norm"]


def test_unknown_run_is_404_and_missing_param_is_400(client) -> None:
    status, body = _get_json(client, "/data", run="nope")
    assert status == 404 and "nope" in body["error"]
    status, body = _get_json(client, "/data")
    assert status == 400 and "run" in body["error"]
    status, _ = _get_json(client, "/data", run="")
    assert status == 400


def test_path_traversal_is_not_served(tmp_path: Path, logdir: Path) -> None:
    # A real run beside the log dir: reachable as '../outside' if the name became a path.
    inner = tmp_path / "inner"
    shutil.copytree(logdir / "healthy", inner / "ok")
    shutil.copytree(logdir / "sick", tmp_path / "outside")
    client = _client(inner)
    assert _names(client) == ["ok"]
    for name in ("../outside", str(tmp_path / "outside"), "ok/../../outside", "./ok/../ok/.."):
        status, body = _get_json(client, "/data", run=name)
        assert status == 404, name
        assert "grad_norm" not in body
    # Percent-encoded in the URL itself, as a browser would send it.
    response = client.get(PREFIX + "/data?run=..%2Foutside")
    assert response.status_code == 404


def test_unreadable_run_is_500_with_message(tmp_path: Path, logdir: Path) -> None:
    shutil.copytree(logdir / "sick", tmp_path / "broken")
    (tmp_path / "broken" / "meta.json").write_text("{not json", encoding="utf-8")
    status, body = _get_json(_client(tmp_path), "/data", run="broken")
    assert status == 500 and body["error"]


def test_is_active(logdir: Path, tmp_path: Path) -> None:
    def active(path: Path | str) -> bool:
        return GradscopePlugin(base_plugin.TBContext(logdir=str(path))).is_active()

    assert active(logdir) is True
    assert active(tmp_path) is False  # empty dir
    assert active(tmp_path / "missing") is False
    assert active("") is False
    # A run nested a few folders deep (as TensorBoard users lay out experiments) counts.
    shutil.copytree(logdir / "healthy", tmp_path / "exp" / "a" / "run")
    assert active(tmp_path) is True
    assert _names(_client(tmp_path)) == ["exp/a/run"]


def test_frontend_metadata_and_plugins_listing(client, logdir: Path) -> None:
    plugin = GradscopePlugin(base_plugin.TBContext(logdir=str(logdir)))
    meta = plugin.frontend_metadata()
    assert meta.es_module_path == "/index.js"
    assert meta.tab_name == "GradScope"
    # TensorBoard's own listing is what its UI reads to build the tab.
    response = client.get("/data/plugins_listing")
    listing = json.loads(response.get_data(as_text=True))
    entry = listing["gradscope"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "GradScope"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": PREFIX + "/index.js",
    }


def test_plugins_listing_disables_the_tab_without_runs(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/data/plugins_listing")
    assert json.loads(response.get_data(as_text=True))["gradscope"]["enabled"] is False


def test_index_js_is_served_as_javascript(client) -> None:
    response = client.get(PREFIX + "/index.js")
    assert response.status_code == 200
    assert response.mimetype in ("application/javascript", "text/javascript")
    source = response.get_data(as_text=True)
    # The module TensorBoard imports must export render().
    assert "export async function render()" in source
    # Run strings are set as text only: no HTML parsing sinks in the module.
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", source)


def test_unknown_route_is_404(client) -> None:
    assert client.get(PREFIX + "/nope").status_code == 404


def test_entry_point_resolves_to_the_plugin() -> None:
    eps = importlib.metadata.entry_points(group="tensorboard_plugins")
    ours = [ep for ep in eps if ep.name == "gradscope"]
    assert len(ours) == 1
    assert ours[0].load() is GradscopePlugin


def _set_created(run_dir: Path, created: str) -> None:
    meta_path = load_run(run_dir).path / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["created"] = created
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


def test_fix_trials_listed_apart_and_runs_by_creation_time(tmp_path: Path, logdir: Path) -> None:
    # The demo's layout: the user's runs, and gradscope fix's trials under trials/ and in
    # auto_fix's own layout (original beside step_<i>_<fix>/) elsewhere.
    layout = {
        "zz_first": "2026-01-01T10:00:00+00:00",
        "aa_second": "2026-01-01T11:00:00+00:00",
        "trials/original": "2026-01-01T10:30:00+00:00",
        "trials/step_0_relu_activation/after": "2026-01-01T10:20:00+00:00",
        # One run directory per process below the log_dir GradScope was given.
        "fixruns/original/20260101-104000": "2026-01-01T10:40:00+00:00",
        "fixruns/step_1_he_init/after/20260101-104500": "2026-01-01T10:45:00+00:00",
    }
    for name, created in layout.items():
        shutil.copytree(logdir / "healthy", tmp_path / name)
        _set_created(tmp_path / name, created)
    status, listing = _get_json(_client(tmp_path), "/runs")
    assert status == 200
    runs = listing["runs"]
    assert [(e["run"], e["trial"]) for e in runs] == [
        ("zz_first", False),
        ("aa_second", False),
        ("trials/step_0_relu_activation/after", True),
        ("trials/original", True),
        ("fixruns/original/20260101-104000", True),
        ("fixruns/step_1_he_init/after/20260101-104500", True),
    ]
    assert [e["label"] for e in runs[:2]] == ["before", "after"]
    assert runs[2]["label"] == "fix trial: trials/step_0_relu_activation/after"
    assert all(e["colour"] is None for e in runs[2:])


def test_original_without_fix_steps_is_a_user_run(tmp_path: Path, logdir: Path) -> None:
    # "original" alone is an ordinary run name; only beside a fix's step folders is it a trial.
    shutil.copytree(logdir / "healthy", tmp_path / "exp" / "original")
    status, listing = _get_json(_client(tmp_path), "/runs")
    assert status == 200
    assert [(e["run"], e["trial"]) for e in listing["runs"]] == [("exp/original", False)]
    assert listing["runs"][0]["label"] == "exp/original"


def test_data_carries_the_reports_notes_on_dead_and_saturated_units(client) -> None:
    _, sick = _get_json(client, "/data", run="sick")
    _, healthy = _get_json(client, "/data", run="healthy")
    # The sigmoid net has no ReLU layer: the dashboard says so in the report's words.
    assert "No ReLU-family layers: the dead fraction does not apply." in sick["fraction_notes"]
    assert "No sigmoid/tanh hidden layers: saturation does not apply." in healthy["fraction_notes"]
    assert "No ReLU-family layers: the dead fraction does not apply." not in healthy[
        "fraction_notes"]  # fmt: skip
