"""Where ``gradscope audit`` spends its time: phase timers around its own functions.

Used by ``audit_latency.py`` for one extra, un-counted audit per file and probe.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audit_variants import run_audit


@contextlib.contextmanager
def phase_timers(times: dict[str, float]) -> Iterator[None]:
    """Wraps the audit's own steps with timers (module attributes, restored on exit).

    Phases: ``load`` (safe inspection + deserialization), ``static rules``, ``detect``,
    ``write findings``; for the light probe ``light: copy + compile``, ``light: host reductions``,
    ``light: load run`` and ``light: steps, writes, rest``; for the recorded one ``probe: clone``,
    ``probe: compile + dataset``, ``probe: fit start`` (GradScope hooks), ``probe: first step``
    (tracing the train step), ``probe: other steps``, ``probe: end of fit`` (diagnosis, close),
    ``probe: load run``.
    """
    import gradscope.audit as audit_mod
    import gradscope.audit.light as light_mod
    import gradscope.detect as detect_mod
    import gradscope.trial.runner as probe_mod  # the recorded probe is the one trial

    patched: list[tuple[Any, str, Any]] = []

    def timed(module: Any, attr: str, phase: str) -> None:
        original = getattr(module, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[phase] = times.get(phase, 0.0) + time.perf_counter() - start

        patched.append((module, attr, original))
        setattr(module, attr, wrapper)

    base = probe_mod.GradScope
    marks: dict[str, float] = {}

    class TimedGradScope(base):  # type: ignore[misc,valid-type]
        """GradScope that notes when fit starts, its first and last batch and its end."""

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            marks["begin"] = time.perf_counter()
            super().on_train_begin(logs)
            marks["begun"] = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_train_batch_end(batch, logs)
            marks.setdefault("first", time.perf_counter())
            marks["last"] = time.perf_counter()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            marks["end"] = time.perf_counter()
            super().on_train_end(logs)
            marks["ended"] = time.perf_counter()

    timed(audit_mod, "load_model_safely", "load")
    timed(audit_mod, "static_findings", "static rules")
    timed(probe_mod, "clone_with_weights", "probe: clone")
    timed(probe_mod, "load_run", "probe: load run")
    timed(detect_mod, "detect", "detect")
    timed(audit_mod, "write_findings", "write findings")
    timed(audit_mod, "_probe", "probe (total)")
    timed(light_mod, "prepare_trial_model", "light: copy + compile")
    timed(light_mod, "_record", "light: host reductions")
    timed(light_mod, "load_run", "light: load run")
    patched.append((probe_mod, "GradScope", base))
    probe_mod.GradScope = TimedGradScope
    try:
        yield
    finally:
        for module, attr, original in reversed(patched):
            setattr(module, attr, original)
        if {"begin", "begun", "first", "last", "end", "ended"} <= set(marks):
            times["probe: fit start (hooks)"] = marks["begun"] - marks["begin"]
            times["probe: first step (trace)"] = marks["first"] - marks["begun"]
            times["probe: other steps"] = marks["last"] - marks["first"]
            times["probe: end of fit (diagnose)"] = marks["ended"] - marks["end"]
            # GradScope's end-of-fit diagnosis binds detect at import, so the "detect" timer
            # sees only the audit's own call; the diagnosis is in "end of fit".
            accounted = sum(
                times.get(k, 0.0)
                for k in (
                    "probe: clone",
                    "probe: load run",
                    "probe: fit start (hooks)",
                    "probe: first step (trace)",
                    "probe: other steps",
                    "probe: end of fit (diagnose)",
                )
            )
            times["probe: compile, data, rest"] = times.get("probe (total)", 0.0) - accounted
        elif "light: copy + compile" in times:
            light = ("light: copy + compile", "light: host reductions", "light: load run")
            accounted = sum(times.get(k, 0.0) for k in light)
            times["light: steps, writes, rest"] = times.get("probe (total)", 0.0) - accounted


def profile_audit(path: Path, steps: int | None = None) -> tuple[float, dict[str, float]]:
    """One timed audit with phase timers; returns (total seconds, phase -> seconds)."""
    times: dict[str, float] = {}
    with phase_timers(times):
        start = time.perf_counter()
        run_audit(path, steps)
        total = time.perf_counter() - start
    return total, times


_ORDER = (
    "load",
    "static rules",
    "probe (total)",
    "light: copy + compile",
    "light: steps, writes, rest",
    "light: host reductions",
    "light: load run",
    "probe: clone",
    "probe: compile, data, rest",
    "probe: fit start (hooks)",
    "probe: first step (trace)",
    "probe: other steps",
    "probe: end of fit (diagnose)",
    "probe: load run",
    "detect",
    "write findings",
)


def phase_order(name: str) -> int:
    """Rank of a phase in the phase table: the audit's order, unknown phases last."""
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)
