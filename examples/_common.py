"""Shared by the examples: their command line, and one HTML report comparing their runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gradscope.data.rundirs import is_run_name
from gradscope.render.html import render_report
from gradscope.render.tb_plugin.runs import discover_runs


def parse_args(doc: str, default_out: str, quick_help: str) -> tuple[Path, bool]:
    """Parses ``--out`` and ``--quick``, the two options every example takes.

    Args:
        doc: the example's docstring (shown by ``--help``).
        default_out: the default output folder.
        quick_help: what ``--quick`` shortens.

    Returns:
        ``(out, quick)``.
    """
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    return args.out, args.quick


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

    ordered = sorted(runs.items(), key=created)
    # "relu/20261126-094012" is labelled "relu": each variant's folder holds its one run.
    labels = [n.rsplit("/", 1)[0] if is_run_name(n.rsplit("/", 1)[-1]) else n for n, _ in ordered]
    if len(set(labels)) < len(labels):  # a variant recorded twice: full names tell them apart
        labels = [n for n, _ in ordered]
    named = {label: path for label, (_, path) in zip(labels, ordered, strict=True)}
    path = render_report(named, out / "report.html", title=title)
    print(f"Report: {path}")
    return path
