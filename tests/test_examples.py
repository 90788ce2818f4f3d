"""Every example runs with --quick and leaves loadable, completed runs."""

from __future__ import annotations

import os
import runpy
import subprocess
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


#: Examples run in a process of their own: MirroredStrategy's collective ops are process-wide
#: state that another strategy test in the same worker leaves behind.
OWN_PROCESS = frozenset({"mirrored_strategy"})


def _run_in_process(script: Path, out: Path, monkeypatch, capsys) -> str:
    # As ``python examples/x.py --quick --out OUT`` would (``__main__``, its folder first on
    # sys.path for ``_common``), but in this worker: a new process per example spent more time
    # importing TensorFlow than running the example. The README tour and the CLI tests cover
    # real processes.
    monkeypatch.setattr(sys, "argv", [str(script), "--quick", "--out", str(out)])
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        keras.backend.clear_session()
    return capsys.readouterr().out


def _run_in_own_process(script: Path, out: Path, cwd: Path) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [sys.executable, str(script), "--quick", "--out", str(out)]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(script: Path, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)
    if script.stem in OWN_PROCESS:
        stdout = _run_in_own_process(script, out, tmp_path)
    else:
        stdout = _run_in_process(script, out, monkeypatch, capsys)
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
