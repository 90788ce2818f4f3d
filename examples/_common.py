"""Shared by the examples: one HTML report comparing every run an example wrote."""

from __future__ import annotations

import json
from pathlib import Path

from gradscope.render.html import render_report
from gradscope.render.tb_plugin.runs import discover_runs


def write_report(out: Path, title: str) -> Path:
    """Writes ``out/report.html`` comparing the runs under ``out``, in the order they were made.

    Args:
        out: the example's output folder.
        title: the report's title.

    Returns:
        The report's path.
    """
    runs = discover_runs(out)

    def created(item: tuple[str, Path]) -> str:
        return json.loads((item[1] / "meta.json").read_text(encoding="utf-8"))["created"]

    path = render_report(dict(sorted(runs.items(), key=created)), out / "report.html", title=title)
    print(f"Report: {path}")
    return path
