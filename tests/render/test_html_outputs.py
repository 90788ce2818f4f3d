"""HTML reports written by the callback (``html_report=``), ``audit --html``, ``fix --html``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import toy_data
from report_html import RUN_SECTIONS, Page, section
from typer.testing import CliRunner

from gradscope import GradScope
from gradscope.cli import app
from gradscope.findings import Finding, Severity
from gradscope.fix.auto import FixResult, StepOutcome
from gradscope.fix.report import write_fix_report
from gradscope.fix.verify import TrialStats, Verification


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
    stored = json.loads((callback.run_dir / "findings.json").read_text(encoding="utf-8"))
    assert [f["code"] for f in stored["findings"]] == [f.code for f in callback.findings]
    for f in callback.findings:
        assert f.code in findings and f.kind.replace("_", " ") in findings.lower()
    assert "exploding_mlp" in section(html, "summary")
    assert "No problems found." not in html
    # meta.json keeps the option, like every other callback option.
    meta = json.loads((callback.run_dir / "meta.json").read_text(encoding="utf-8"))
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
    callback = GradScope(tmp_path / "run", freq=1, html_report=out, verbose=0)
    _exploding_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    lines = (callback.run_dir / "stats.jsonl").read_text(encoding="utf-8").splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert not all(np.isfinite(v) for v in losses if v is not None)  # the run did blow up
    text = " ".join(Page(out.read_text(encoding="utf-8")).text)
    assert "nan" not in text.split() and "inf" not in text.split()


# ---------------------------------------------------------------- audit --html / fix --html


@pytest.fixture(scope="module")
def sick_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((12,))]
        + [
            keras.layers.Dense(
                16,
                "sigmoid",
                kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
                name=f"sig_{i}",
            )
            for i in range(5)
        ]
        + [keras.layers.Dense(3, "softmax", name="out")],
        name="sick_sigmoid",
    )
    model.compile(keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("models") / "sick.keras"
    model.save(path)
    return path


def _codes(findings_json: list[dict]) -> list[str]:
    return [f["code"] for f in findings_json]


def _codes_in(html_part: str) -> list[str]:
    # Finding codes as shown in a findings section, in order (GS + three digits).
    return re.findall(r"\bGS\d{3}\b", " ".join(Page(html_part).text))


def test_audit_html_shows_every_finding_of_the_audit(sick_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.html"
    args = ["audit", str(sick_file), "--steps", "12", "--json", "--html", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # the sick net has warnings or errors
    doc = json.loads(result.stdout)  # stdout stays pure JSON
    assert f"HTML report written to {out}" in result.stderr
    codes = _codes(doc["findings"])
    assert codes, "the sick sigmoid stack must have findings"
    html = out.read_text(encoding="utf-8")
    assert Page(html).sections() == list(RUN_SECTIONS)
    # Static findings and probe findings alike, in the audit's order; a static rule the probe
    # confirmed is shown where the JSON puts it, as the cause of the finding it predicted.
    causes = [c["code"] for f in doc["findings"] for c in f["evidence"].get("causes") or ()]
    shown = _codes_in(section(html, "findings"))
    assert sorted(set(shown)) == sorted(set(codes) | set(causes))
    assert "gradscope audit: sick_sigmoid" in html
    summary = " ".join(" ".join(Page(section(html, "summary")).text).split())
    assert "recorded 12 steps (0 → 11)" in summary  # the probe's --steps


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--html", "audit.txt"], "--html must be the path of an .html file"),
        (["--steps", "0", "--html", "a.html"], "drop --steps 0"),
    ],
)
def test_audit_html_bad_input_is_one_line_and_fast(
    sick_file: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["audit", str(sick_file), *[
        str(tmp_path / a) if a.endswith((".txt", ".html")) else a for a in extra]])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert list(tmp_path.iterdir()) == []  # nothing written, no probe run here


def test_fix_apply_html_compares_the_verification_trials(sick_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "fix.html"
    args = ["fix", str(sick_file), "-o", str(tmp_path / "fixed.keras"), "--apply",
            "relu_activation", "--steps", "12", "--json", "--html", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.stdout)
    before, after = doc["overall"]["before"], doc["overall"]["after"]
    html = out.read_text(encoding="utf-8")
    page = Page(html)
    assert page.sections() == ["fix-verification", "comparison", *RUN_SECTIONS, *RUN_SECTIONS]
    # The verification section shows both trials' learning curves, epoch by epoch, as in JSON.
    curves = section(html, "fix-verification")
    final_after = doc["overall"]["after"]["curve"]["points"][-1]["loss"]
    assert "data-fix-curves" in curves and f"{final_after:.3g}" in curves
    label = "after: relu_activation"
    comparison = section(html, "comparison")
    assert "before" in comparison and label in comparison
    status = "verified" if doc["verified"] else "not verified"
    assert f"gradscope fix: relu_activation ({status} on a 12-step trial)" in html
    # Each run shows the findings its trial was judged by, from the trial runs on disk.
    assert sorted(set(_codes_in(section(html, "findings", 0)))) == sorted(
        set(_codes(before["findings"]))
    )
    assert sorted(set(_codes_in(section(html, "findings", 1)))) == sorted(
        set(_codes(after["findings"]))
    )
    # The runs are the trials: their recorded step counts are the trial's.
    for trial in (before, after):
        lines = (Path(trial["run_dir"]) / "stats.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 12 == len(trial["losses"])
    # The after trial trained the fixed model: ReLU in its model table, sigmoid before.
    assert "<td>relu</td>" in section(html, "model", 1)
    assert "<td>sigmoid</td>" in section(html, "model", 0)


def test_fix_plan_only_html_shows_the_original_trial(sick_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.html"
    result = CliRunner().invoke(app, ["fix", str(sick_file), "--steps", "8", "--json",
                                      "--html", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    html = out.read_text(encoding="utf-8")
    assert Page(html).sections() == list(RUN_SECTIONS)
    assert "8-step trial of the original model" in html
    assert sorted(set(_codes_in(section(html, "findings")))) == sorted(set(_codes(doc["findings"])))


def test_fix_html_bad_path_fails_before_any_trial(sick_file: Path, tmp_path: Path) -> None:
    (tmp_path / "dir.html").mkdir()
    result = CliRunner().invoke(app, ["fix", str(sick_file), "--html", str(tmp_path / "dir.html")])
    assert result.exit_code == 2
    assert "--html must be the path of an .html file" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["dir.html"]


def _trial(run_dir: Path, findings: tuple = ()) -> TrialStats:
    records = (run_dir / "stats.jsonl").read_text(encoding="utf-8").splitlines()
    losses = tuple(json.loads(line)["loss"] for line in records)
    return TrialStats(run_dir, losses, losses[-1], {}, None, None, findings=findings)


def test_fix_report_branches_on_what_was_kept(logdir: Path, tmp_path: Path) -> None:
    # auto_fix's two endings, on real runs: a kept fix (two trials) and none kept (one trial).
    vanishing = Finding("GS101", "vanishing_gradients", Severity.ERROR, ("hidden_1",), "Vanish.")
    before = _trial(logdir / "sick", (vanishing,))
    after = _trial(logdir / "healthy")
    kept = FixResult(
        None,  # type: ignore[arg-type]  # the model is not part of the report
        Verification(before, after, ("vanishing_gradients",), ("vanishing_gradients",), (),
                     True, True),
        (StepOutcome("relu_activation", True, "verified"),),
    )  # fmt: skip
    html = write_fix_report(kept, tmp_path / "kept.html").read_text(encoding="utf-8")
    assert Page(html).sections() == ["fix-verification", "comparison", *RUN_SECTIONS, *RUN_SECTIONS]
    assert "gradscope fix: relu_activation (verified on a 10-step trial)" in html
    assert _codes_in(section(html, "findings", 0)) == ["GS101"]
    assert _codes_in(section(html, "findings", 1)) == []

    none_kept = FixResult(
        None,  # type: ignore[arg-type]
        Verification(before, before, (), (), ("vanishing_gradients",), True, False),
        (StepOutcome("relu_activation", False, "not verified"),),
    )
    html = write_fix_report(none_kept, tmp_path / "none.html").read_text(encoding="utf-8")
    assert Page(html).sections() == ["fix-verification", *RUN_SECTIONS]
    assert "gradscope fix: no fix kept (10-step trial of the original)" in html
    assert _codes_in(section(html, "findings")) == ["GS101"]
