"""One number, one definition: the first/last gradient ratio is the same in every view.

On one recorded run of a deep sigmoid net, the ratio is recomputed here from ``meta.json`` and
``stats.jsonl`` with json + numpy alone (first and last trainable kernel layer, per-weight RMS
= grad_norm / sqrt(params), medians over the last half of the records) and compared with what
the vanishing finding, ``findings.json``, the demo headline, the fix trial summary, the audit
JSON summary and the terminal carry; the formatted text must be identical everywhere.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from rich.console import Console

from gradscope.audit.command import summary_json
from gradscope.collect.callback import GradScope
from gradscope.data.store import load_run
from gradscope.demo import first_last_ratio, load_digits_data, sick_model
from gradscope.detect import detect
from gradscope.detect.summary import GRAD_RATIO_KEY, format_grad_ratio, gradient_ratio
from gradscope.findings import findings_from_json
from gradscope.fix.summary import comparison_table
from gradscope.fix.trials import compare, ratio_change, summarize
from gradscope.render import fmt
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

    audit_doc = json.loads(json.dumps(summary_json(run), allow_nan=False))
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
    assert summary_json(run)["first_last_grad_ratio_text"] == text
    same = compare(trial, trial)
    assert ratio_change(same) == f"first/last gradient ratio {text} → {text}"
    table = _render(comparison_table_for(same))
    assert table.count(text) == 2  # original and fixed columns


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
