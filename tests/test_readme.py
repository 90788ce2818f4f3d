"""README can't rot: its commands run, its threshold table is the code's, its options exist."""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex

import pytest
from readme_tour import README, ROOT, blocks, commands
from typer.testing import CliRunner

from gradscope.cli import app
from gradscope.config import ACTIVATION_THRESHOLDS, DETECT_THRESHOLDS, REPAIR_THRESHOLDS


def test_quickstart_is_the_two_commands_and_ci_runs_the_test_one() -> None:
    bash = blocks("bash")
    assert 'python -m pip install -e ".[dev]" && gradscope demo\n' in bash
    assert 'python -m pip install -e ".[dev]" && python -m pytest\n' in bash
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pip install -q -e ".[dev]"' in ci and "python -m pytest" in ci


def test_runnable_commands_run_with_their_exit_codes(readme_tour) -> None:
    cwd, steps = readme_tour
    assert len(steps) >= 5 and steps[0].command.startswith("gradscope demo")
    for step in steps:
        assert step.returncode == step.expected, (step.command, step.stdout[-2000:], step.stderr)
        assert "Traceback" not in step.stderr, step.command
    # What the tour promises: a fixed model file and a report comparing both runs.
    assert (cwd / "fixed.keras").stat().st_size > 0
    assert 'data-section="comparison"' in (cwd / "report.html").read_text(encoding="utf-8")


def _cli_rows() -> list[tuple[str, list[str]]]:
    section = README.split("## The command line", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.match(r"\| `gradscope (\w+)([^`]*)`", line)
        if match:
            rows.append((match.group(1), re.findall(r"--[a-z][a-z-]*", match.group(2))))
    return rows


@pytest.mark.parametrize(("command", "options"), _cli_rows())
def test_documented_options_exist(command: str, options: list[str]) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for option in options:
        assert option in result.output, (command, option)


def test_every_command_is_documented() -> None:
    documented = {command for command, _ in _cli_rows()}
    registered = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert documented == registered


def _threshold_rows() -> dict[str, str]:
    table = README.split("<!-- thresholds:start -->", 1)[1].split("<!-- thresholds:end -->")[0]
    return dict(re.findall(r"^\| `([\w.]+)` \| ([^|]+?) \|", table, flags=re.M))


def _fields(prefix: str, obj: object) -> dict[str, object]:
    return {f"{prefix}.{f.name}": getattr(obj, f.name) for f in dataclasses.fields(obj)}


def test_threshold_table_is_complete_and_equals_the_code() -> None:
    code: dict[str, object] = _fields("activation", ACTIVATION_THRESHOLDS)
    for group in dataclasses.fields(DETECT_THRESHOLDS):
        code |= _fields(group.name, getattr(DETECT_THRESHOLDS, group.name))
    code |= _fields("repair", REPAIR_THRESHOLDS)
    rows = _threshold_rows()
    assert set(rows) == set(code)
    for name, text in rows.items():
        assert ast.literal_eval(text) == code[name], name


def test_runnable_lines_are_plaincommands() -> None:
    # Guard against a tour line the test would run differently from a user's shell.
    for command, _ in commands():
        assert shlex.split(command)[0] in {"gradscope", "python", "tensorboard"}, command
