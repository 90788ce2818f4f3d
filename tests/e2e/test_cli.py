"""The console script as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
from typer.testing import CliRunner

from gradscope import __version__, list_runs
from gradscope.cli import app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"gradscope {__version__}"


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gradscope.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in out.stdout


def test_cli_import_is_lazy_and_quiet() -> None:
    # Parsing arguments must not pay for TensorFlow; the CLI quiets TF's C++ logs by default.
    code = (
        "import os, sys, gradscope.cli, gradscope; "
        "print('tensorflow' in sys.modules, os.environ['TF_CPP_MIN_LOG_LEVEL']); "
        "gradscope.GradScope; print('tensorflow' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["False", "3", "True"]


def test_stderr_is_one_line_without_tensorflow_chatter(tmp_path) -> None:
    # A real process: TensorFlow's C++ start-up notices go to fd 2, which CliRunner cannot see.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-m", "gradscope.cli", "audit", str(tmp_path / "nope.h5")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("gradscope audit: ") and "nope.h5" in line


def _median_norm(run_dir: Path, layer: str) -> float:
    # Straight from stats.jsonl, independent of load_run and the demo's own helpers.
    rows = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    return float(np.median([r["layers"][layer]["grad_norm"] for r in rows]))


def _kinds(run_dir: Path, min_severity: str = "warning") -> set[str]:
    doc = json.loads((run_dir / "findings.json").read_text())
    order = ["info", "warning", "error"]
    keep = order[order.index(min_severity) :]
    return {f["kind"] for f in doc["findings"] if f["severity"] in keep}


def test_demo_quick_tells_the_vanishing_story(readme_tour) -> None:
    # README's tour starts with `gradscope demo --quick --out runs/demo` (run once per session).
    cwd, steps = readme_tour
    demo = steps[0]
    assert demo.command == "gradscope demo --quick --out runs/demo", demo.command
    assert demo.returncode == 0, demo.stderr
    out = " ".join(demo.stdout.split())  # rich wraps at the terminal width
    tmp_path = cwd / "runs" / "demo"
    assert "tensorboard --logdir runs/demo" in out
    assert "HTML report: runs/demo/report.html" in out
    # One run directory each under before/ and after/ (the demo replaces them on every run).
    (before,), (after,) = list_runs(tmp_path / "before"), list_runs(tmp_path / "after")
    # The untrained sick model is left for the CLI tour; plain Keras loads it.
    model = keras.models.load_model(tmp_path / "deep_sigmoid.keras")
    assert [layer.activation.__name__ for layer in model.layers[:-1]] == ["sigmoid"] * 10
    # The chapter's picture: early layers get gradients orders of magnitude smaller.
    ratio_before = _median_norm(before, "hidden_1") / _median_norm(before, "output")
    ratio_after = _median_norm(after, "hidden_1") / _median_norm(after, "output")
    assert ratio_before < 1e-3
    assert ratio_after > 100 * ratio_before
    # Diagnosed, fixed, and the fixed run is clean.
    assert "vanishing_gradients" in _kinds(before)
    assert _kinds(after) == set()
    assert "vanishing gradients" in out.lower()
    assert "kept relu_activation" in out
    # The fixed network learns more in the same epochs.
    acc = [
        json.loads((d / "epochs.jsonl").read_text().splitlines()[-1])["logs"]["accuracy"]
        for d in (before, after)
    ]
    assert acc[1] > acc[0] + 0.2
    # TensorBoard event files and the before/after report.
    assert list(before.glob("events.out.tfevents.*")) and list(after.glob("events.out.tfevents.*"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'data-section="comparison"' in html and "vanishing" in html.lower()
