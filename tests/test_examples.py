"""Every example runs with --quick and leaves loadable, completed runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradscope import load_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def test_every_chapter_experiment_has_an_example() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "vanishing_gradients",
        "initialization",
        "activations",
        "batch_norm",
        "gradient_clipping",
        "transfer_learning",
        "optimizers",
        "custom_loop",
        "mirrored_strategy",
    } <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script: Path, tmp_path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dirs = sorted(p.parent for p in out.rglob("meta.json"))
    assert run_dirs, f"{script.name} wrote no run under {out}"
    for run_dir in run_dirs:
        run = load_run(run_dir)
        assert run.records, run_dir
        assert run.meta.status == "completed", run_dir
    assert result.stdout.strip(), "examples print what they measured"
    # One report comparing every run the example made: a summary section per run.
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('data-section="summary"') == len(run_dirs)
    assert f"Report: {out / 'report.html'}" in result.stdout
