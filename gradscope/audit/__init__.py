"""Audit a model without training it yourself: static rules plus a short probe on a clone.

The result says what was examined (:class:`~gradscope.audit.coverage.Coverage`): a probe that
could not run leaves the static findings and ``status == "probe_not_run"``, never a silent pass.

Example::

    from gradscope.audit import audit
    result = audit("model.h5")            # or a live keras.Model
    print(result.status)                  # "examined", "static_only", "probe_not_run", ...
    for f in result.findings:
        print(f.severity, f.kind, f.message)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradscope.audit.coverage import AuditStatus, Coverage
from gradscope.config import DETECT_THRESHOLDS, DetectThresholds
from gradscope.data.store import Run
from gradscope.detect.evidence import Measurements, reconcile
from gradscope.detect.rank import ModelTraits
from gradscope.detect.static import _RULES, selu_input_findings, static_findings
from gradscope.errors import (
    GradscopeInputError,
    ModelNotSerializableError,
    TrialNotRunError,
    error_summary,
)
from gradscope.findings import Finding, Severity, write_findings
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
        coverage: what was examined and what was not (:attr:`status`).
        run: the probe's recorded run (None if the probe did not run).
        run_dir: the probe's run directory (holds ``findings.json``), or None.
        notes: plain-language notes, e.g. why the probe did not run.
    """

    findings: list[Finding]
    spec: ModelSpec
    coverage: Coverage
    run: Run | None = None
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> Severity | None:
        """The highest severity found, or None without findings."""
        return max((f.severity for f in self.findings), default=None)

    @property
    def status(self) -> AuditStatus:
        """``"examined"``, ``"static_only"``, ``"probe_not_run"`` or ``"not_examined"``."""
        return self.coverage.status


def audit(
    model_or_path: Any,
    data: tuple[Any, np.ndarray] | None = None,
    steps: int | None = None,
    unsafe: bool = False,
    log_dir: str | os.PathLike[str] | None = None,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    custom_objects: dict[str, Any] | None = None,
) -> AuditResult:
    """Audits a model: static rules on its architecture, then a short training probe.

    Args:
        model_or_path: a Keras model, or the path of a ``.keras``/``.h5`` file (loaded safely).
        data: ``(x, y)`` for the probe (x a list of arrays for a multi-input model); None for
            synthetic inputs the model accepts (see :mod:`gradscope.trial.synthetic`).
        steps: probe training steps; 0 skips the probe. None (the default) runs
            :data:`gradscope.audit.probe.DEFAULT_STEPS` steps of the light probe
            (:mod:`gradscope.audit.light`: Keras's own step, traced once); an explicit number
            runs the recorded probe (a fit under ``GradScope(freq=1)``).
        unsafe: allow files with Lambda layers / unknown custom objects (runs their code).
        log_dir: where the probe's run goes (a new run directory under it, ``run_dir``); a
            temporary folder if None.
        thresholds: detector and static-rule thresholds.
        custom_objects: custom classes/functions by name, for files that need them.

    Returns:
        The :class:`AuditResult`. Neither the file nor the given model is modified. When the
        probe cannot run (a model Keras cannot rebuild or copy, synthetic inputs the model does
        not take), the static findings are kept, a note says why and ``status`` is
        ``"probe_not_run"``.

    Raises:
        GradscopeInputError: for bad input (missing/corrupt file, refused file, bad data).
        ModelNotSerializableError: for a live model Keras cannot describe (a subclassed model
            without ``get_config()``); the message says what to do.

    Example:
        >>> result = audit("model.h5", steps=10)  # doctest: +SKIP
        >>> [f.kind for f in result.findings]  # doctest: +SKIP
        ['vanishing_gradients', 'saturation', 'deep_saturating_stack']
    """
    from gradscope.audit.probe import DEFAULT_STEPS, PROBE_SEED

    light = steps is None
    steps = DEFAULT_STEPS if steps is None else steps
    if steps < 0:
        raise GradscopeInputError(f"--steps must be >= 0. Received: {steps}")
    stored: StoredModel | None = None
    model: Any = None
    probe_error: str | None = None
    if isinstance(model_or_path, (str, os.PathLike)):
        try:
            # Seeded as the probe seeds its copy: the probe can then train this model, which
            # nobody else holds, instead of copying it (the copy cost as much as the load).
            loaded: LoadedModel = load_model_safely(
                model_or_path, unsafe, custom_objects, seed=PROBE_SEED
            )
        except ModelRebuildError as err:
            stored = err.stored
            probe_error = _rebuild_error(err, model_or_path)
        else:
            from gradscope.trial.policy import compile_as_saved

            # Compiled as saved, so the probe trains with the file's loss and optimizer (the
            # trial policy's first rule), like `gradscope fix` does.
            stored, model = loaded.stored, compile_as_saved(loaded)
        spec = stored.spec
    else:
        model = model_or_path
        if not model.trainable_weights:
            raise GradscopeInputError(
                "The model has no trainable weights; there is nothing to audit."
            )
        spec = _describe(model)
    rules = tuple(_RULES)
    findings = static_findings(spec, thresholds.static)
    if data is not None:
        from gradscope.trial.data import check_arrays

        # Validated before any statistic is taken of it (strings, zero rows, NaN would crash).
        data = check_arrays(*data)
        # Several inputs: their features side by side, as the model's first layers see them.
        arrays = data[0] if isinstance(data[0], tuple) else (data[0],)
        x = np.concatenate([np.asarray(a, np.float64).reshape(len(a), -1) for a in arrays], 1)
        if len(x) > 1:
            findings += selu_input_findings(spec, x.mean(0), x.std(0), thresholds.static)
    run = None
    dynamic: list[Finding] = []
    measured: Measurements | None = None
    if model is not None and steps > 0:
        try:
            owned = model is not model_or_path
            run = _probe(model, data, steps, log_dir, custom_objects, light, owned)
        except TrialNotRunError as err:
            # Not the user's fault (their data's failures stay GradscopeInputError): what the
            # static rules found stands, and the status says the probe did not run.
            probe_error = str(err)
        else:
            from gradscope.detect import detect

            dynamic = detect(run, thresholds)
            measured = Measurements.of(run, thresholds)
    # Measurement outranks priors: a static finding the probe confirmed becomes the cause of
    # the dynamic one, one it measured and did not see drops to info (detect/evidence.py).
    findings = reconcile(findings, dynamic, measured, ModelTraits.from_spec(spec))
    if run is not None:
        write_findings(run.path, findings)
    notes: list[str] = []
    if probe_error is not None and steps > 0:
        notes.append(f"The probe did not run, only static rules did: {probe_error}")
    coverage = Coverage.of(spec, rules, steps, run, data is None, probe_error)
    return AuditResult(findings, spec, coverage, run, None if run is None else run.path, notes)


def _rebuild_error(err: ModelRebuildError, path: str | os.PathLike[str]) -> str:
    # The loader's message shortens Keras's (which repeats the whole config) to a fixed width;
    # the note is printed whole, so it carries the cause in full sentences instead.
    cause = error_summary(err.__cause__) if err.__cause__ is not None else str(err)
    return (
        f"Keras could not rebuild the model in '{path}' ({cause.rstrip('.')}). If it uses "
        "custom layers, name them with --custom-objects MODULE:NAME (custom_objects= in Python) "
        "and check that their get_config() returns every __init__ argument."
    )


def _describe(model: Any) -> ModelSpec:
    from gradscope.model.extract import spec_from_model

    try:
        return spec_from_model(model)
    except GradscopeInputError:
        raise
    except Exception as err:
        # Keras serializes the model to describe it; a subclass that cannot be serialized can
        # be neither described nor copied, so nothing could be examined.
        cls = type(model).__name__
        why = (
            "its __init__ takes arguments Keras cannot serialize and it does not implement "
            "get_config()"
            if isinstance(err, NotImplementedError)
            else f"Keras cannot serialize it ({error_summary(err)})"
        )
        raise ModelNotSerializableError(
            f"Cannot audit '{model.name}' ({cls}): {why}, so gradscope can neither read its "
            f"layers nor copy it for the probe. Implement get_config() on {cls} (returning every "
            "__init__ argument; from_config() too if it takes objects), or record a real "
            "training run instead: model.fit(..., callbacks=[gradscope.GradScope('runs/x')])."
        ) from err


def _probe(
    model: Any,
    data: tuple[Any, np.ndarray] | None,
    steps: int,
    log_dir: str | os.PathLike[str] | None,
    custom_objects: dict[str, Any] | None,
    light: bool,
    owned: bool,
) -> Run:
    import keras

    from gradscope.audit.probe import PROBE_SEED, probe

    # A live model's custom classes must be known by name for Keras to copy it.
    with keras.saving.custom_object_scope(custom_objects or {}):
        return probe(
            model,
            data=data,
            steps=steps,
            log_dir=log_dir,
            seed=PROBE_SEED,
            light=light,
            owned=owned,
        )


__all__ = [
    "AuditResult",
    "AuditStatus",
    "Coverage",
    "GradscopeInputError",
    "LoadedModel",
    "ModelNotSerializableError",
    "StoredModel",
    "audit",
    "inspect_model_file",
    "load_model_safely",
]
