"""Run-detector protocol and registry.

A run detector is a pure function ``(run, thresholds) -> list[Finding]``. Modules register their
detector with :func:`register`; :func:`detect` runs every registered detector. Adding a detector
is one new module and one line in ``gradscope/detect/__init__.py`` (its import).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.rank import ModelTraits, rank_finding_fixes
from gradscope.findings import Finding, kind_info, sort_findings


class RunDetector(Protocol):
    """A pure function of a run and the thresholds, returning findings."""

    def __call__(self, run: Run, thresholds: DetectThresholds) -> list[Finding]:
        """Judges a run.

        Args:
            run: a loaded run.
            thresholds: all detector thresholds.

        Returns:
            The findings (possibly empty).
        """
        ...


_REGISTRY: dict[str, RunDetector] = {}


def register(kind: str) -> Callable[[RunDetector], RunDetector]:
    """Decorator registering a run detector under the finding kind it produces.

    Args:
        kind: the finding kind, e.g. ``"vanishing_gradients"``, registered in
            :data:`gradscope.findings.kinds.KINDS`.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        KeyError: if ``kind`` is not registered (at import, so a typo never ships).
        ValueError: if another detector is already registered for ``kind``.

    Example:
        >>> @register("nonfinite")  # doctest: +SKIP
        ... def my_detector(run, thresholds): return []
    """
    kind_info(kind)

    def decorator(fn: RunDetector) -> RunDetector:
        existing = _REGISTRY.get(kind)
        if existing is not None and existing is not fn:
            raise ValueError(f"A detector for {kind!r} is already registered. Received: {fn!r}")
        _REGISTRY[kind] = fn
        return fn

    return decorator


def registered() -> Mapping[str, RunDetector]:
    """Returns a read-only view of the registry (finding kind -> detector).

    Returns:
        The registered detectors.

    Example:
        >>> "nonfinite" in registered()
        True
    """
    return MappingProxyType(_REGISTRY)


def detect(
    run: Run,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    kinds: Iterable[str] | None = None,
) -> list[Finding]:
    """Runs the registered run detectors on a run.

    Args:
        run: a loaded run (``gradscope.load_run(log_dir)``).
        thresholds: detector thresholds; defaults are documented in :mod:`gradscope.config`.
        kinds: restrict to these finding kinds (default: all registered detectors).

    Returns:
        All findings, most severe first, each with its fixes ranked for the run's model
        (:func:`gradscope.detect.rank.rank_finding_fixes`).

    Raises:
        KeyError: if ``kinds`` names a kind with no detector.

    Example:
        >>> findings = detect(load_run("runs/x"))  # doctest: +SKIP
        >>> [f.kind for f in findings]  # doctest: +SKIP
        ['vanishing_gradients', 'saturation']
    """
    selected = list(_REGISTRY) if kinds is None else list(kinds)
    unknown = [k for k in selected if k not in _REGISTRY]
    if unknown:
        raise KeyError(f"No detector for kinds {unknown}. Known: {sorted(_REGISTRY)}")
    findings: list[Finding] = []
    for kind in selected:
        findings.extend(_REGISTRY[kind](run, thresholds))
    # Detectors list every fix that answers their kind; which ones fit this model (He init
    # needs ReLU layers, ...) is read from the run's layer list, in one place for all of them.
    return sort_findings(rank_finding_fixes(findings, ModelTraits.from_layers(run.layers)))
