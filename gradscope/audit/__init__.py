"""Audit a model without training it yourself: static rules plus a short probe on a clone.

Example::

    from gradscope.audit import audit
    result = audit("model.h5")            # or a live keras.Model
    for f in result.findings:
        print(f.severity, f.kind, f.message)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.static import selu_input_findings, static_findings
from gradscope.errors import GradscopeInputError
from gradscope.findings import Finding, Severity, sort_findings, write_findings
from gradscope.model.loader import (
    LoadedModel,
    ModelRebuildError,
    StoredModel,
    inspect_model_file,
    load_model_safely,
)
from gradscope.model.spec import ModelSpec


@dataclass
class AuditResult:
    """What an audit found.

    Attributes:
        findings: static and probe findings, most severe first.
        spec: the static description of the model.
        run: the probe's recorded run (None if the probe did not run).
        run_dir: the probe's run directory (holds ``findings.json``), or None.
        notes: plain-language notes, e.g. why the probe was skipped.
    """

    findings: list[Finding]
    spec: ModelSpec
    run: Run | None = None
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, or None without findings."""
        return max((f.severity for f in self.findings), default=None)


def audit(
    model_or_path: Any,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    steps: int | None = None,
    unsafe: bool = False,
    log_dir: str | os.PathLike[str] | None = None,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    custom_objects: dict[str, Any] | None = None,
) -> AuditResult:
    """Audits a model: static rules on its architecture, then a probe on a clone.

    Args:
        model_or_path: a Keras model, or the path of a ``.keras``/``.h5`` file (loaded safely).
        data: ``(x, y)`` for the probe; None for synthetic standard-normal inputs.
        steps: probe training steps (default :data:`gradscope.audit.probe.DEFAULT_STEPS`); 0 skips
            the probe.
        unsafe: allow files with Lambda layers / unknown custom objects (runs their code).
        log_dir: where the probe's run goes (a new run directory under it, ``run_dir``); a
            temporary folder if None.
        thresholds: detector and static-rule thresholds.
        custom_objects: custom classes/functions by name, for files that need them.

    Returns:
        The :class:`AuditResult`. Neither the file nor the given model is modified.

    Raises:
        GradscopeInputError: for bad input (missing/corrupt file, refused file, bad data).

    Example:
        >>> result = audit("model.h5", steps=10)  # doctest: +SKIP
        >>> [f.kind for f in result.findings]  # doctest: +SKIP
        ['vanishing_gradients', 'saturation', 'deep_saturating_stack']
    """
    from gradscope.audit.probe import DEFAULT_STEPS

    steps = DEFAULT_STEPS if steps is None else steps
    if steps < 0:
        raise GradscopeInputError(f"--steps must be >= 0. Received: {steps}")
    notes: list[str] = []
    stored: StoredModel | None = None
    model: Any = None
    if isinstance(model_or_path, (str, os.PathLike)):
        try:
            loaded: LoadedModel = load_model_safely(model_or_path, unsafe, custom_objects)
        except ModelRebuildError as err:
            stored = err.stored
            notes.append(str(err))
        else:
            from gradscope.trial.policy import compile_as_saved

            # Compiled as saved, so the probe trains with the file's loss and optimizer (the
            # trial policy's first rule), like `gradscope fix` does.
            stored, model = loaded.stored, compile_as_saved(loaded)
        spec = stored.spec
    else:
        from gradscope.model.extract import spec_from_model

        model = model_or_path
        if not model.trainable_weights:
            raise GradscopeInputError(
                "The model has no trainable weights; there is nothing to audit."
            )
        spec = spec_from_model(model)
    findings = static_findings(spec, thresholds.static)
    if data is not None:
        from gradscope.trial.data import check_arrays

        # Validated before any statistic is taken of it (strings, zero rows, NaN would crash).
        data = check_arrays(*data)
        x = np.asarray(data[0], dtype=np.float64).reshape(len(data[0]), -1)
        if len(x) > 1:
            findings += selu_input_findings(spec, x.mean(0), x.std(0), thresholds.static)
    run = None
    if model is not None and steps > 0:
        run = _probe(model, data, steps, log_dir)
        from gradscope.detect import detect

        findings += detect(run, thresholds)
    findings = sort_findings(findings)
    if run is not None:
        write_findings(run.path, findings)
    return AuditResult(findings, spec, run, None if run is None else run.path, notes)


def _probe(
    model: Any,
    data: tuple[np.ndarray, np.ndarray] | None,
    steps: int,
    log_dir: str | os.PathLike[str] | None,
) -> Run:
    from gradscope.audit.probe import probe

    return probe(model, data=data, steps=steps, log_dir=log_dir)


__all__ = [
    "AuditResult",
    "GradscopeInputError",
    "LoadedModel",
    "StoredModel",
    "audit",
    "inspect_model_file",
    "load_model_safely",
]
