"""Finding gradscope runs under a log directory and turning one into the dashboard's JSON.

The JSON is arranged recorded data only (thinned layers × steps gradient norms, findings, the
notes of what could not be recorded) and the run's :class:`~gradscope.detect.summary.RunSummary`
numbers (verdict, first/last gradient ratio, window medians of the dead/saturated fractions),
already formatted where the browser shows text; the browser draws it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gradscope.data.rundirs import is_run_dir, list_runs
from gradscope.data.store import META_FILE, STATS_FILE, load_run
from gradscope.detect.summary import GRAD_RATIO_KEY, GRAD_RATIO_TEXT_KEY
from gradscope.findings import FINDINGS_FILE, Finding
from gradscope.render.build import RunData, finding_view
from gradscope.render.matrix import thin_indices
from gradscope.render.run_summary import not_recorded, ratio_view
from gradscope.render.sources import findings_of

#: Heatmap columns sent at most per run; the browser gets evenly thinned records beyond this.
MAX_COLUMNS: int = 400
#: How deep below the log directory runs are looked for (TensorBoard users nest runs a few deep).
MAX_DEPTH: int = 6


def discover_runs(logdir: str | os.PathLike[str]) -> dict[str, Path]:
    """Finds gradscope run directories (those holding ``meta.json``) under a log directory.

    GradScope writes one run directory per fit process under the ``log_dir`` it was given
    (``runs/mlp/20261126-094012``); each is listed by its path relative to ``logdir``, as
    TensorBoard names its runs. Hidden folders are skipped and run directories are not searched
    further (Keras's own ``train/`` and ``validation/`` folders live inside them), except for
    runs a newer gradscope wrote under an older run directory.

    Args:
        logdir: TensorBoard's log directory.

    Returns:
        run name (path relative to ``logdir``, POSIX style, ``"."`` for ``logdir`` itself) ->
        directory, sorted by name (timestamped run names sort by creation time; the dashboard
        orders runs by ``meta.json``'s ``created``).

    Example:
        >>> discover_runs("runs")  # doctest: +SKIP
        {'mlp/20261126-094012': PosixPath('runs/mlp/20261126-094012'),
         'mlp/20261126-101500': PosixPath('runs/mlp/20261126-101500')}
    """
    root = Path(logdir)
    found: dict[str, Path] = {}

    def visit(path: Path, depth: int) -> None:
        runs = list_runs(path)
        if is_run_dir(path):
            found[path.relative_to(root).as_posix()] = path
        for run in runs:
            found[run.relative_to(root).as_posix()] = run
        if is_run_dir(path) or depth >= MAX_DEPTH:
            return
        taken = set(runs)
        try:
            children = sorted(path.iterdir())
        except OSError:  # an unreadable folder hides no run TensorBoard could show either
            return
        for child in children:
            if child.is_dir() and not child.name.startswith(".") and child not in taken:
                visit(child, depth + 1)

    if root.is_dir():
        visit(root, 0)
    return dict(sorted(found.items()))


def _clean(values: Iterable[float]) -> list[float | None]:
    # Strict JSON has no NaN/Inf: they become null and the browser draws them as "no data".
    return [float(v) if math.isfinite(v) else None for v in values]


def _finding_json(finding: Finding) -> dict[str, Any]:
    view = finding_view(finding, None)
    return {
        "code": view.code,
        "kind": view.kind,
        "title": view.title,
        "severity": view.severity,
        "layers": list(view.layers),
        "message": view.message,
        "fixes": [{"id": f.id, "title": f.title} for f in view.fixes],
    }


def dashboard_payload(name: str, path: Path, max_columns: int = MAX_COLUMNS) -> dict[str, Any]:
    """Builds the dashboard's JSON for one run.

    Args:
        name: the run's name (as listed by :func:`discover_runs`).
        path: the run directory.
        max_columns: heatmap columns at most.

    Returns:
        A strict-JSON-safe dict: ``run``, ``model``, ``status``, ``verdict``,
        ``verdict_level``, ``n_records``, the first/last gradient ratio (``first_last_grad_ratio``,
        its text ``first_last_grad_ratio_text`` and ``grad_ratio_line``, the terminal's line;
        null when not measurable), ``not_recorded`` (``meta.json``'s notes of what could not be
        recorded), ``layers``, ``steps``, ``grad_norm`` (layers × steps, null where missing),
        ``act_layers``, ``dead_frac``, ``sat_frac`` (window medians, null where not recorded)
        and ``findings``.

    Raises:
        RunFormatError: if the run directory is unreadable.

    Example:
        >>> dashboard_payload("sick", Path("runs/sick"))["verdict"]  # doctest: +SKIP
        'Problems: vanishing gradients.'
    """
    run = load_run(path)
    findings = findings_of(run)
    data = RunData.of(run, findings)
    summary = data.summary
    grads = data.sub("grad_norm", data.grad_layers)
    cols = thin_indices(len(grads.steps), max_columns)
    act = list(data.act_layers)
    # The browser shows these strings as they are: the ratio is formatted here, once, as the
    # terminal and the HTML report write it, never recomputed in JavaScript.
    ratio = ratio_view(summary)
    value = None if summary.grad_ratio is None else summary.grad_ratio.value
    if value is not None and not math.isfinite(value):
        value = None  # strict JSON; the text still says "inf"
    return {
        "run": name,
        "model": run.meta.model_name,
        "status": run.meta.status,
        "verdict": summary.verdict,
        "verdict_level": summary.verdict_level,
        "n_records": summary.n_records,
        GRAD_RATIO_KEY: value,
        GRAD_RATIO_TEXT_KEY: None if ratio is None else ratio.text,
        "grad_ratio_line": None if ratio is None else ratio.line,
        "not_recorded": list(not_recorded(run)),
        "layers": list(data.grad_layers),
        "steps": [int(s) for s in grads.steps[cols]],
        "grad_norm": [_clean(row) for row in grads.values[:, cols]] if len(cols) else [],
        "act_layers": act,
        "dead_frac": [summary.median(n, "dead_frac") for n in act],
        "sat_frac": [summary.median(n, "sat_frac") for n in act],
        "findings": [_finding_json(f) for f in findings],
    }


def _signature(path: Path) -> tuple[float, ...]:
    # The payload changes when training appends records or detect writes findings.
    out: list[float] = []
    for file in (META_FILE, STATS_FILE, FINDINGS_FILE):
        try:
            st = (path / file).stat()
            out += [st.st_mtime_ns, st.st_size]
        except OSError:
            out += [-1.0, -1.0]
    return tuple(out)


class PayloadCache:
    """Caches payloads per run directory until its files change (TensorBoard polls often).

    Example:
        >>> cache = PayloadCache()
        >>> payload = cache.get("sick", Path("runs/sick"))  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[tuple[float, ...], dict[str, Any]]] = {}

    def get(self, name: str, path: Path) -> dict[str, Any]:
        """Returns the run's payload, rebuilt only if its files changed.

        Args:
            name: the run name.
            path: the run directory.

        Returns:
            The payload of :func:`dashboard_payload`.
        """
        signature = _signature(path)
        with self._lock:
            hit = self._entries.get(path)
        if hit is not None and hit[0] == signature:
            return hit[1]
        payload = dashboard_payload(name, path)
        with self._lock:
            self._entries[path] = (signature, payload)
        return payload


__all__ = ["MAX_COLUMNS", "PayloadCache", "dashboard_payload", "discover_runs"]
