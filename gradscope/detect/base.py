"""Run-detector protocol, registry, and the skeleton every windowed detector shares.

A run detector is a pure function ``(run, thresholds) -> list[Finding]``. Modules register their
detector with :func:`register`; :func:`detect` runs every registered detector. Adding a detector
is one new module and one line in ``gradscope/detect/__init__.py`` (its import).

Most detectors judge the statistics of the last window of records. What they share is policy,
held once by :class:`WindowDetector` (as Keras's ``MonitorCallback`` holds what ``EarlyStopping``
and ``ReduceLROnPlateau`` share): the window (records before any NaN/Inf, the last
``window.fraction`` of them, silent below ``window.min_records`` unless NaN cut the run short and
the detector judges such runs), the progress gate (a model that still learns gets at most
"info", AutoTrainer's convergence test), the sentence that says so, and the common evidence
(``window_records``, ``progress``). A subclass keeps only what it alone judges, in
:meth:`WindowDetector.judge`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.schema import StepRecord
from gradscope.data.store import Run
from gradscope.detect.progress import Progress, assess_progress, gate
from gradscope.detect.rank import ModelTraits, rank_finding_fixes
from gradscope.detect.window import (
    enough_records,
    first_window,
    last_window,
    median_stat,
    usable_records,
)
from gradscope.findings import Finding, Severity, kind_info, make_finding, sort_findings

#: Appended to a gated finding's message when the run learns (its severity is then info).
STILL_LEARNS = " The model still learns, so this is informational."


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


@dataclass(frozen=True)
class RunWindow:
    """The part of a run a windowed detector judges, with what several detectors derive from it.

    Attributes:
        run: the run.
        thresholds: all detector thresholds.
        records: the records before NaN/Inf first appeared (:func:`usable_records`).
        last: the last window of those records (:func:`last_window`), the one judged.

    Example:
        >>> RunWindow.of(load_run("runs/x"), DETECT_THRESHOLDS).progress.learning  # doctest: +SKIP
        False
    """

    run: Run
    thresholds: DetectThresholds
    records: list[StepRecord] = field(repr=False)
    last: list[StepRecord] = field(repr=False)

    @classmethod
    def of(cls, run: Run, thresholds: DetectThresholds) -> RunWindow:
        """Cuts a run's window.

        Args:
            run: a loaded run.
            thresholds: detector thresholds (``window`` sets the cut).

        Returns:
            The :class:`RunWindow`.
        """
        records = usable_records(run.records)
        return cls(run, thresholds, records, last_window(records, thresholds.window))

    @cached_property
    def first(self) -> list[StepRecord]:
        """The first window of the usable records (:func:`first_window`), the start of training."""
        return first_window(self.records, self.thresholds.window)

    @cached_property
    def progress(self) -> Progress:
        """Whether the run learns (:func:`assess_progress`), computed once per run and window."""
        return assess_progress(self.run, self.thresholds.progress, self.thresholds.window)

    def median(self, layer: str, stat: str) -> float | None:
        """Median of a layer statistic over the window (:func:`median_stat`).

        Args:
            layer: layer name.
            stat: statistic name, e.g. ``"dead_frac"``.

        Returns:
            The median, or None without finite values.
        """
        return median_stat(self.last, layer, stat)

    def at_least(self, layers: Iterable[str], stat: str, threshold: float) -> dict[str, float]:
        """The layers whose window median of ``stat`` reaches ``threshold``, with that median.

        Args:
            layers: candidate layer names, in forward order.
            stat: statistic name, e.g. ``"sat_frac"``.
            threshold: the warning threshold.

        Returns:
            layer -> median, forward order, only layers at or above ``threshold``.

        Example:
            >>> window.at_least(["dense"], "dead_frac", 0.5)  # doctest: +SKIP
            {'dense': 0.81}
        """
        out = {}
        for name in layers:
            value = self.median(name, stat)
            if value is not None and value >= threshold:
                out[name] = value
        return out


@dataclass(frozen=True)
class Judgement:
    """What one detector concluded from its window, before the shared policy is applied.

    Attributes:
        severity: what the statistics alone call for (warning or error).
        layers: the layers concerned, in forward order.
        message: the detector's own sentences, without the progress note.
        evidence: its own evidence; ``window_records`` and ``progress`` are added by the base.
        fixes: the fixes this case calls for (all answering the kind), when the detector named
            a cause the kind's usual fixes do not treat; None for the kind's defaults.
    """

    severity: Severity
    layers: tuple[str, ...]
    message: str
    evidence: Mapping[str, Any]
    fixes: tuple[str, ...] | None = None


def graded(value: float, error_at: float) -> Severity:
    """The severity of a statistic that already passed its warning threshold.

    Args:
        value: the statistic, oriented so that larger is worse (e.g. the worst dead fraction).
        error_at: the error threshold.

    Returns:
        ``ERROR`` at or above ``error_at``, else ``WARNING``.

    Example:
        >>> graded(0.8, 0.7)
        <Severity.ERROR: 2>
    """
    return Severity.ERROR if value >= error_at else Severity.WARNING


class WindowDetector(abc.ABC):
    """Base of the run detectors that judge the last window of records; holds the shared policy.

    Subclasses set :attr:`kind` (through :func:`window_detector`) and implement :meth:`judge`.
    Calling the detector cuts the window, stays silent when it has fewer than
    ``window.min_records`` records (unless :attr:`judges_cut_short`), asks :meth:`judge`, then
    applies the progress gate (when :attr:`gated`), adds the "still learns" sentence and the
    common evidence, and builds the finding from the kind registry (code, default fixes).

    Example:
        >>> @window_detector("saturation")  # doctest: +SKIP
        ... class Saturation(WindowDetector):
        ...     def judge(self, window): ...
    """

    #: The finding kind produced (set by :func:`window_detector`).
    kind: ClassVar[str]
    #: Gradient statistics mislead when training works, so findings are gated on progress.
    gated: ClassVar[bool] = True
    #: Whether a run NaN/Inf cut short before ``window.min_records`` finite records is judged on
    #: the ones it has (:func:`~gradscope.detect.window.enough_records`): for the detector whose
    #: symptom the NaN is, not for statistics a dying net garbles.
    judges_cut_short: ClassVar[bool] = False

    def __call__(self, run: Run, thresholds: DetectThresholds) -> list[Finding]:
        """Judges a run (the :class:`RunDetector` protocol).

        Args:
            run: a loaded run.
            thresholds: all detector thresholds.

        Returns:
            Zero or one finding.
        """
        window = RunWindow.of(run, thresholds)
        if not enough_records(
            run.records, window.records, thresholds.window, self.judges_cut_short
        ):
            return []
        judged = self.judge(window)
        if judged is None:
            return []
        severity, message, extra = self.settle(window, judged)
        evidence = {
            **judged.evidence,
            **extra,
            "window_records": len(window.last),
            "progress": window.progress.to_evidence(),
        }
        return [make_finding(self.kind, severity, judged.layers, message, evidence, judged.fixes)]

    def settle(
        self, window: RunWindow, judged: Judgement
    ) -> tuple[Severity, str, Mapping[str, Any]]:
        """Applies the severity policy to a judgement: by default the progress gate.

        A run that learns gets its gradient findings at info, with :data:`STILL_LEARNS` appended
        (when :attr:`gated`). Detectors whose symptom may cost nothing (saturation, dying ReLU)
        override this with :func:`gradscope.detect.cost.layer_cost`.

        Args:
            window: the run's window.
            judged: what :meth:`judge` concluded.

        Returns:
            ``(severity, message, extra evidence)``.
        """
        if not self.gated:
            return judged.severity, judged.message, {}
        learning = window.progress.learning
        message = judged.message + (STILL_LEARNS if learning else "")
        return gate(judged.severity, window.progress), message, {}

    @abc.abstractmethod
    def judge(self, window: RunWindow) -> Judgement | None:
        """What this detector alone concludes from the window.

        Args:
            window: the run's window (at least ``window.min_records`` records, or two before
                the NaN/Inf that cut the run short when :attr:`judges_cut_short`).

        Returns:
            The :class:`Judgement`, or None when nothing is wrong.
        """


_D = TypeVar("_D", bound=type[WindowDetector])


def window_detector(kind: str) -> Callable[[_D], _D]:
    """Class decorator: sets a :class:`WindowDetector` subclass's kind and registers an instance.

    Args:
        kind: the registered finding kind it produces.

    Returns:
        The decorator; it returns the class unchanged (but for :attr:`WindowDetector.kind`).

    Raises:
        KeyError: if ``kind`` is not registered in the kind registry.

    Example:
        >>> @window_detector("dying_relu")  # doctest: +SKIP
        ... class DyingRelu(WindowDetector): ...
    """

    def decorator(cls: _D) -> _D:
        cls.kind = kind
        register(kind)(cls())
        return cls

    return decorator
