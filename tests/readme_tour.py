"""README's runnable tour: parsed from README.md and run once per test session (see conftest)."""

from __future__ import annotations

import contextlib
import re
import shlex
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def blocks(info: str) -> list[str]:
    """Fenced blocks of README whose info string is exactly ``info``."""
    return re.findall(rf"^```{re.escape(info)}\n(.*?)^```", README, flags=re.S | re.M)


def commands() -> list[tuple[str, int]]:
    """(command, expected exit code) for every line of the ``bash runnable`` blocks."""
    out = []
    for block in blocks("bash runnable"):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                match = _EXIT.search(line)
                out.append((_EXIT.sub("", line).strip(), int(match.group(1)) if match else 0))
    return out


@dataclass(frozen=True)
class Step:
    command: str
    expected: int
    returncode: int
    stdout: str
    stderr: str


def argv(command: str) -> list[str]:
    """The arguments of a ``gradscope ...`` command line; anything else is refused.

    The tour runs in-process, so a line that needs a shell (pipes, ``&&``, redirections,
    variables) or another program cannot be in a runnable block.
    """
    program, *args = shlex.split(command)
    shell = {"|", "||", "&&", ";", ">", ">>", "<", "&"}
    assert program == "gradscope" and not shell & set(args) and "$" not in command, command
    return args


def run_tour(cwd: Path) -> list[Step]:
    """Runs every runnable command in ``cwd``, in order, through the console script's ``app``.

    In this process, not a shell: six fresh processes spent half the tour importing
    TensorFlow. Each command starts from a cleared Keras session, as a new process would; an
    exception that escapes the CLI is written to ``stderr`` as a traceback, as Python would.
    tests/e2e/test_cli.py runs the installed console script and the stderr checks in real
    processes.
    """
    import keras
    from typer.testing import CliRunner

    from gradscope.cli import app

    steps = []
    with contextlib.chdir(cwd):
        for command, expected in commands():
            keras.backend.clear_session()
            result = CliRunner().invoke(app, argv(command))
            stderr = result.stderr
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                stderr += "".join(traceback.format_exception(result.exception))
            steps.append(Step(command, expected, result.exit_code, result.stdout, stderr))
    return steps
