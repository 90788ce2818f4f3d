"""HTML reports written by the callback (``html_report=``), ``audit --html`` and ``fix --html``."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import toy_data
from report_html import RUN_SECTIONS, Page, section

from gradscope import GradScope


def _exploding_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", name="wide"),
            keras.layers.Dense(3, name="logits"),
        ],
        name="exploding_mlp",
    )
    # A learning rate this large blows the weights up within a few steps: findings for sure.
    model.compile(
        keras.optimizers.SGD(1e6),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_callback_writes_report_after_findings(tmp_path: Path) -> None:
    keras.utils.set_random_seed(3)
    x, y = toy_data(64)
    out = tmp_path / "reports" / "fit.html"
    callback = GradScope(tmp_path / "run", freq=1, html_report=out, verbose=0)
    _exploding_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])

    assert callback.findings, "the exploding run must have findings"
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert page.sections() == list(RUN_SECTIONS)
    findings = section(html, "findings")
    # The report shows exactly the findings the callback stored in findings.json.
    stored = json.loads((tmp_path / "run" / "findings.json").read_text(encoding="utf-8"))
    assert [f["code"] for f in stored["findings"]] == [f.code for f in callback.findings]
    for f in callback.findings:
        assert f.code in findings and f.kind.replace("_", " ") in findings.lower()
    assert "exploding_mlp" in section(html, "summary")
    assert "No problems found." not in html
    # meta.json keeps the option, like every other callback option.
    meta = json.loads((tmp_path / "run" / "meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["html_report"] == str(out)


def test_callback_without_html_report_writes_none(tmp_path: Path) -> None:
    x, y = toy_data(32)
    _exploding_model().fit(
        x, y, epochs=1, verbose=0, callbacks=[GradScope(tmp_path / "run", verbose=0)]
    )
    assert list(tmp_path.rglob("*.html")) == []


@pytest.mark.parametrize("bad", ["report.txt", "report", 42, ["r.html"]])
def test_callback_rejects_bad_html_report(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=r"Received: html_report="):
        GradScope(tmp_path / "run", html_report=bad)  # type: ignore[arg-type]


def test_callback_rejects_a_directory_named_html(tmp_path: Path) -> None:
    (tmp_path / "out.html").mkdir()
    with pytest.raises(ValueError, match=r"\.html file to write\. Received: html_report="):
        GradScope(tmp_path / "run", html_report=tmp_path / "out.html")


def test_numbers_in_report_are_finite_or_marked(tmp_path: Path) -> None:
    # NaN/Inf records from the exploding run must not break rendering or leak as 'nan' text.
    keras.utils.set_random_seed(3)
    x, y = toy_data(64)
    out = tmp_path / "r.html"
    _exploding_model().fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1, html_report=out, verbose=0)],
    )
    lines = (tmp_path / "run" / "stats.jsonl").read_text(encoding="utf-8").splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert not all(np.isfinite(v) for v in losses if v is not None)  # the run did blow up
    text = " ".join(Page(out.read_text(encoding="utf-8")).text)
    assert "nan" not in text.split() and "inf" not in text.split()
