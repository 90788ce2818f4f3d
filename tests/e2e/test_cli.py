"""The console script as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from gradscope import __version__, load_run
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


def test_demo_quick_tells_the_vanishing_story(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"tensorboard --logdir {tmp_path}" in result.output
    sick, healthy = load_run(tmp_path / "sick"), load_run(tmp_path / "healthy")
    _, first = sick.series("grad_norm", "hidden_1")
    _, last = sick.series("grad_norm", "output")
    # The chapter's picture: early layers get gradients orders of magnitude smaller.
    assert np.median(first) / np.median(last) < 1e-3
    _, first_h = healthy.series("grad_norm", "hidden_1")
    _, last_h = healthy.series("grad_norm", "output")
    assert np.median(first_h) / np.median(last_h) > 1e-1
