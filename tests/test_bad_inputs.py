"""The bad-input corpus (tests/data/bad_inputs/) through the CLI.

Every case must exit 2 with exactly one line on stderr that says what is wrong and what to do,
with no traceback and nothing on stdout; the controls next to them must not be refused. The
committed corpus must be exactly what tests/data/make_bad_inputs.py writes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradscope.cli import app


def _load_generator():
    path = Path(__file__).resolve().parent / "data" / "make_bad_inputs.py"
    spec = importlib.util.spec_from_file_location("make_bad_inputs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
CORPUS: Path = gen.CORPUS
RUNS = [(case, command) for case in gen.CASES for command in case.commands]
CONTROL_RUNS = [(case, command) for case in gen.CONTROLS for command in case.commands]


def _args(case, command: str, tmp_path: Path) -> list[str]:
    args = [command, str(CORPUS / case.target)]
    if case.data is not None:
        args += ["--data", str(CORPUS / case.data)]
    if command == "report":
        out = getattr(case, "out", None)
        args += ["-o", str(CORPUS / out) if out else str(tmp_path / "report.html")]
    if command == "fix":
        args += ["--steps", "3"]  # only reached by controls and data cases: keep trials short
    return args


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_before() -> dict[str, str]:
    return _digests(CORPUS)


@pytest.mark.parametrize(
    ("case", "command"), RUNS, ids=[f"{case.name}-{command}" for case, command in RUNS]
)
def test_bad_input_exits_2_with_one_line_and_a_hint(case, command, tmp_path, monkeypatch):
    monkeypatch.delenv("GRADSCOPE_DEBUG", raising=False)
    result = CliRunner().invoke(app, _args(case, command, tmp_path))
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit)  # nothing escaped as an exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"gradscope {command}: ")
    assert case.fragment in line
    assert case.hint in line
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert len(line) < 500


@pytest.mark.parametrize(
    ("case", "command"),
    CONTROL_RUNS,
    ids=[f"{case.name}-{command}" for case, command in CONTROL_RUNS],
)
def test_controls_are_not_refused(case, command, tmp_path):
    result = CliRunner().invoke(app, _args(case, command, tmp_path))
    assert result.exit_code in (0, 1), (result.stdout, result.stderr, result.exception)
    assert "gradscope" not in result.stderr
    if command == "report":
        assert (tmp_path / "report.html").stat().st_size > 1000


def test_cli_never_writes_into_the_corpus(corpus_before):
    # Runs after the parametrized cases in this module: audit, fix and report only read inputs.
    assert _digests(CORPUS) == corpus_before


def test_committed_corpus_is_what_the_script_writes(tmp_path):
    fresh = tmp_path / "fresh"
    gen.write_corpus(fresh)
    committed, regenerated = _digests(CORPUS), _digests(fresh)
    hint = "regenerate with: python tests/data/make_bad_inputs.py"
    assert sorted(committed) == sorted(regenerated), hint
    assert [k for k in committed if committed[k] != regenerated[k]] == [], hint


def test_corpus_is_small_and_every_file_belongs_to_a_case():
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert sum(p.stat().st_size for p in files) < 200_000
    used = []
    for case in (*gen.CASES, *gen.CONTROLS):
        used += [x for x in (case.target, case.data) if x]
    for path in files:
        rel = path.relative_to(CORPUS).as_posix()
        assert any(rel == u or rel.startswith(u.rstrip("/") + "/") for u in used), rel
    names = [c.name for c in (*gen.CASES, *gen.CONTROLS)]
    assert len(names) == len(set(names))


def test_debug_env_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("GRADSCOPE_DEBUG", "1")
    result = CliRunner().invoke(app, ["report", str(CORPUS / "runs" / "corrupt_meta")])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "GradscopeInputError"


@pytest.mark.parametrize(
    "argv",
    [
        # A TensorFlow runtime error inside the trial: TF's C++ logs must not reach stderr either.
        ["fix", "models/tiny_sparse.h5", "--data", "data/labels_out_of_range.npz", "--steps", "3"],
        ["report", "runs/corrupt_meta"],
    ],
    ids=["fix-tf-runtime-error", "report-corrupt-meta"],
)
def test_real_process_stderr_is_one_line(argv, tmp_path):
    args = [str(CORPUS / a) if "/" in a else a for a in argv]
    # The user's environment, without the settings that would change what the CLI prints.
    unset = ("TF_CPP_MIN_LOG_LEVEL", "GRADSCOPE_DEBUG")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    proc = subprocess.run(
        [sys.executable, "-m", "gradscope.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"gradscope {argv[0]}: ")
