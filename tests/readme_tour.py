"""README's runnable tour: parsed from README.md and run once per test session (see conftest)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


def run_tour(cwd: Path) -> list[Step]:
    """Runs every runnable command in ``cwd``, in order, as a user's shell would."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    steps = []
    for command, expected in commands():
        proc = subprocess.run(
            command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        steps.append(Step(command, expected, proc.returncode, proc.stdout, proc.stderr))
    return steps
