"""Every benchmark script runs with --quick and prints well-formed tables (of ratios, for speed).

No timing assertions: speed is measured by the benchmarks, not by tests. Each script runs as
``python benchmarks/<name>.py --quick`` would (``__main__``, its folder first on ``sys.path``),
but inside the test worker: a fresh interpreter per script spent about 5 CPU-seconds importing
TensorFlow, a third of most quick runs. One test per script, each its own xdist group
(tests/conftest.py), so the scripts spread over the workers.
"""

from __future__ import annotations

import math
import re
import runpy
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RATIO = re.compile(r"^(\d+(?:\.\d+)?)x$")

#: script -> (first-column names that must appear, lines that must appear in the output).
EXPECTED: dict[str, tuple[set[str], tuple[str, ...]]] = {
    "overhead.py": (
        {
            "plain",
            "gs_default",
            "gs_freq1_hist10",
            "tensorboard_hist1",
            "gs_f1_act_off",
            "gs_f1_wrapped",
            "gs_f1_probe",
            "freq=1 wrapped layer calls (gs_f1_wrapped)",
            "freq=1 probe_data batch (gs_f1_probe)",
        },
        ("faster activation source:", "load during mlp"),
    ),
    "memory.py": (
        {"plain", "gs_default", "gs_freq1", "gs_freq1_maxrec", "stats.jsonl", "total"},
        ("target <= 50 MB", "load during the run"),
    ),
    "audit_latency.py": (
        {
            "cnn.h5 bare",
            "cnn.h5 traced",
            "cnn.h5 audit",
            "cnn.h5 audit_recorded",
            "cnn.h5 audit_static",
            "load",
            "light: steps, writes, rest",
            "probe: first step (trace)",
            "audit (total)",
        },
        ("audit / bare =", "load during the in-process runs"),
    ),
    "floors.py": (
        {
            "plain",
            "alone: the reductions' arithmetic",
            "JSON line (stats.jsonl)",
            "TensorBoard event",
        },
        ("mlp: a recorded step adds", "mlp: floor of the parts", "load during mlp"),
    ),
    "large_models.py": (
        {"plain", "gs_default"},
        ("per-step ratio", "load during resnet50", "load during encoder12"),
    ),
    "report_latency.py": (
        {"load_run", "render_report"},
        ("target < 2 s: ", "load during the run"),
    ),
    # Accuracies, not speed: no ratio column. Never made worse, whatever the machine's load.
    "repair.py": (
        {"scenario:regression_high_lr"},
        ("made worse 0", "repaired "),
    ),
    "in_fit.py": (
        {"recorded execution", "in the graph: recorded - unrecorded", "host, recorded"},
        ("load during mlp", "per step, implied"),
    ),
    "first_fit.py": (
        {"tabular_mlp"},
        ("SHARED_UP_TO_STEPS = ", "load during the run"),
    ),
    "zoo.py": (
        {"healthy", "sick", "cnn_dropout", "negative_bias_mlp"},
        ("fit overhead of `GradScope()`", "load during the run", "expected kinds"),
    ),
}
#: Scripts whose tables hold no ratio column.
NO_RATIO = frozenset({"repair.py"})


def parse_tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in ``text``: each a list of rows (header first), cells stripped."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def check_table(table: list[list[str]]) -> None:
    header, separator, *rows = table
    assert rows, f"table without rows: {header}"
    assert all(re.fullmatch(r"-+:?", c) for c in separator), separator
    for row in rows:
        assert len(row) == len(header), (header, row)
    ratio_columns = [i for i, name in enumerate(header) if "ratio" in name]
    for i in ratio_columns:
        for row in rows:
            match = RATIO.match(row[i])
            assert match, f"{header[i]} of {row[0]!r} is not a ratio: {row[i]!r}"
            value = float(match.group(1))
            assert math.isfinite(value) and value > 0, (row[0], header[i], value)


def run_quick(script: str, cwd: Path, monkeypatch, capsys) -> str:
    """Runs ``benchmarks/<script> --quick`` in this process; returns what it printed."""
    path = BENCH / script
    monkeypatch.setattr(sys, "argv", [str(path), "--quick"])
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.chdir(cwd)
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:  # the scripts end with sys.exit(main())
        assert stop.code in (0, None), f"{script} exited {stop.code}: {capsys.readouterr().err}"
    finally:
        keras.backend.clear_session()
    return capsys.readouterr().out


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_quick_run_prints_tables_of_ratios(script: str, tmp_path, monkeypatch, capsys) -> None:
    text = run_quick(script, tmp_path, monkeypatch, capsys)
    assert "machine: CPU" in text and "load before: loadavg" in text
    tables = parse_tables(text)
    assert tables, text
    for table in tables:
        check_table(table)
    assert script in NO_RATIO or any(any("ratio" in h for h in t[0]) for t in tables), "no ratio"
    names = {row[0] for t in tables for row in t[2:]}
    names |= {row[0].split(" (")[0] for t in tables for row in t[2:]}
    expected_names, lines = EXPECTED[script]
    assert expected_names <= names, expected_names - names
    for line in lines:
        assert line in text, f"{line!r} missing from the output of {script}"


def test_parse_tables_reads_markdown() -> None:
    text = "x\n| id | ratio |\n| --- | ---: |\n| a | 1.00x |\n| b | 2.50x |\n\ny"
    (table,) = parse_tables(text)
    check_table(table)
    assert [r[0] for r in table[2:]] == ["a", "b"]
    with pytest.raises(AssertionError):
        check_table([["id", "ratio"], ["---", "---:"], ["a", "nan"]])
