"""Every example runs with --quick and leaves loadable, completed runs."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import keras
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
def test_example_runs_quick(script: Path, tmp_path, monkeypatch, capsys) -> None:
    # Run as ``python examples/x.py --quick --out OUT`` would (``__main__``, its folder first on
    # sys.path for ``_common``), but in this worker: a new process per example spent more time
    # importing TensorFlow than running the example. The README tour and the CLI tests cover
    # real processes.
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "--quick", "--out", str(out)])
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        keras.backend.clear_session()
    stdout = capsys.readouterr().out
    run_dirs = sorted(p.parent for p in out.rglob("meta.json"))
    assert run_dirs, f"{script.name} wrote no run under {out}"
    for run_dir in run_dirs:
        run = load_run(run_dir)
        assert run.records, run_dir
        assert run.meta.status == "completed", run_dir
    assert stdout.strip(), "examples print what they measured"
    # One report comparing every run the example made: a summary section per run.
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('data-section="summary"') == len(run_dirs)
    assert f"Report: {out / 'report.html'}" in stdout
