"""``GradScope``: the Keras callback that records gradient, weight and activation statistics."""

from __future__ import annotations

import contextlib
import warnings
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import keras
import tensorflow as tf
from rich.console import Console

from gradscope.collect.attach import Attachment, abandon_fit, attach, first_step_notes
from gradscope.collect.custom_step import OptimizerGroup, StepWatcher, find_optimizers
from gradscope.collect.diagnose import STOPPING_KINDS, diagnose, print_findings, warn_new_findings
from gradscope.collect.engine import Recorder
from gradscope.collect.hooks import Patches
from gradscope.collect.options import check_options, validate_frequencies
from gradscope.collect.probe_pass import probe_inputs
from gradscope.collect.session import RecordingSession, check_writable, expected_records
from gradscope.collect.session import log_float as _log_float
from gradscope.data.schema import StepRecord, has_nonfinite
from gradscope.findings import Finding

_T = TypeVar("_T")


class GradScope(keras.callbacks.Callback):
    """Records per-layer gradient, weight, update and activation statistics during ``fit``.

    Statistics are computed in the compiled train step from the gradients the optimizer already
    receives (no second backward pass), reduced to a few numbers per layer in a small ring
    buffer the host reads only on recorded steps. The run directory is readable with
    :func:`gradscope.load_run` at any time, even after a crash.

    Each callback object records one run, in its own directory under ``log_dir`` named after
    the UTC time its first fit started (``runs/mlp/20261126-094012``; ``-1``, ``-2`` appended
    if that second is taken), like TensorBoard runs: re-running a script, or resuming a fit in
    a new process, starts a new run beside the old ones and never mixes records. Further fits
    with the same callback object continue its run, with rising steps; if the optimizer's step
    went back (a recompiled model, ``BackupAndRestore`` rolling back), a new run starts instead,
    so steps only rise within a run.

    Args:
        log_dir: the directory runs go under (created if missing); ``load_run(log_dir)`` reads
            its newest run.
        freq: record every ``freq`` optimizer steps (gradients, weights, updates, loss, lr).
        histogram_freq: also record gradient (log10|g|) and activation histograms every
            ``histogram_freq`` steps; 0 disables. Must be a multiple of ``freq``.
        activation_freq: record activation statistics every ``activation_freq`` steps; None
            means ``freq``, 0 disables. Must be a multiple of ``freq``.
        layers: names of the layers to watch; None watches every layer with trainable weights
            and every layer with an activation, nested models included.
        probe_data: optional fixed inputs (array, tuple ``(x, y)`` or dataset); if given,
            activation statistics come from a forward pass on its first 256 examples in inference
            mode, so they are comparable from step to step. If None, they come from the training
            batch inside the train step, at no extra forward pass.
        tensorboard: also write TensorBoard scalars/histograms into ``log_dir``.
        max_records: keep at most this many step records on disk (evenly spaced; TensorBoard
            events follow the same steps); None keeps all.
        on_finding: None (diagnose only at the end of fit), ``"warn"`` (also diagnose at every
            epoch end and as soon as NaN/Inf shows, warning once per new finding) or ``"stop"``
            (like ``"warn"``, and stop training, as EarlyStopping does, on ``nonfinite`` or
            ``exploding_gradients`` findings).
        verbose: 0 silent, 1 prints the findings and the run directory at the end of fit.
        html_report: optional path of a self-contained HTML report (``.html``) written at the
            end of fit, after the findings, as ``gradscope report`` would write it.

    Attributes:
        run_dir: this callback's run directory under ``log_dir``; None before the first step.
        findings: the findings of the last diagnosis.

    Example:
        >>> scope = GradScope("runs/mlp")
        >>> model.fit(x, y, epochs=3, callbacks=[scope])  # doctest: +SKIP
        >>> gradscope.load_run(scope.run_dir).series("grad_norm", "dense")  # doctest: +SKIP
    """

    def __init__(
        self,
        log_dir: str | Path,
        freq: int = 10,
        histogram_freq: int = 0,
        activation_freq: int | None = None,
        layers: Sequence[str] | None = None,
        probe_data: Any = None,
        tensorboard: bool = True,
        max_records: int | None = None,
        on_finding: str | None = None,
        verbose: int = 1,
        html_report: str | Path | None = None,
    ) -> None:
        super().__init__()
        check_options(log_dir, max_records, layers, on_finding, html_report)
        self.freqs = validate_frequencies(freq, activation_freq, histogram_freq)
        self.html_report = None if html_report is None else Path(html_report)
        self.on_finding = on_finding
        self.verbose = int(verbose)
        self.findings: list[Finding] = []
        self.log_dir = Path(log_dir)
        self.layers = None if layers is None else list(layers)
        self.probe_inputs = probe_inputs(probe_data)
        self.tensorboard = bool(tensorboard)
        self.max_records = max_records
        self.run_dir: Path | None = None
        self.session: RecordingSession | None = None
        self._att: Attachment | None = None
        self._watcher: StepWatcher | None = None
        self._installed: list[Patches] = []  # this fit's patches, shared with the finalizer
        self._recorder: Recorder | None = None
        self._optimizer_names: list[str] = []
        self._notes: list[str] = []  # what this fit cannot record
        self._noted: set[str] = set()  # notes already warned about by this callback
        self._calibrate = False
        self._traced_checked = False
        # The fit's session, shared with the finalizer that closes it if the fit is abandoned.
        self._live: list[RecordingSession | None] = [None]
        self._abandon: weakref.finalize | None = None
        self._write_error: OSError | None = None

    # ------------------------------------------------------------------ lifecycle

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Installs the in-graph hooks; the run opens (or continues) after the first step."""
        model = self.model
        # A fit interrupted by an exception never reached on_train_end: undo its hooks first.
        self._unhook()
        if model.optimizer is None:
            raise ValueError(
                "GradScope needs a compiled model: call model.compile(...) before fit. "
                "Received: model.optimizer=None"
            )
        check_writable(self.log_dir)
        self._epoch = 0
        self._epoch_seen = 0
        self._last_loss: float | None = None
        self._warned: set[tuple[str, tuple[str, ...]]] = set()
        self._write_error = None
        self._notes = []
        # Keras skips on_train_end when an exception leaves fit; if this callback is then
        # dropped (or the script dies), unhook the model and mark the run interrupted.
        self._live = [None]
        self._abandon = weakref.finalize(self, abandon_fit, model, self._installed, self._live)
        optimizers = find_optimizers(model)
        self._optimizer_names = [name for name, _ in optimizers]
        if model.built and len(optimizers) == 1:
            self._install(None)
            return
        # A subclassed model built lazily, a custom train step whose outer model is never
        # built, several optimizers: what the step applies, to which variables, shows only
        # when it runs. Watch its first step; recording starts at the next one.
        self._watcher = StepWatcher(model, optimizers)
        self._watcher.install()
        self._installed.append(self._watcher)
        model.make_train_function(force=True)  # a step cached by an earlier fit would skip it

    def _install(self, groups: list[OptimizerGroup] | None) -> None:
        steps = expected_records(self.params, 1)  # this fit's steps: a short one traces one step
        att = attach(
            self.model, self.layers, self.freqs, self.probe_inputs, self._recorder, groups, steps
        )
        self._att = att
        self._recorder = att.recorder
        self._installed.append(att.hooks)
        self._note(att.notes)
        if att.clock is None:
            # Nothing can be recorded: the run opens anyway, marked with why, with its epochs
            # (their steps count this fit's batches).
            self._step = self._epoch_seen
            self._guarded(lambda: self._open_run(0))
            return
        self._step = int(att.clock.numpy())
        self._calibrate = True
        self._traced_checked = False

    def _note(self, notes: list[str]) -> None:
        """Says once what this fit cannot record (a warning) and marks the run with it."""
        for note in notes:
            if note not in self._notes:
                self._notes.append(note)
            if note not in self._noted:
                self._noted.add(note)
                warnings.warn(f"GradScope: {note}.", stacklevel=3)
        session = self._live[0]
        if notes and session is not None:
            self._guarded(lambda: session.note(self._notes))

    def _open_run(self, first_step: int) -> None:
        """Opens this fit's run once its first step is known: new, continued or reopened.

        Decided after the first step, not in on_train_begin: another callback's
        on_train_begin (BackupAndRestore) may still move the optimizer's step back.

        Args:
            first_step: the optimizer step this fit started at.
        """
        session = self.session
        last = session.last_record if session is not None else None
        if session is not None and last is not None and first_step <= last.step:
            # Steps went back (recompiled optimizer, a rollback): continuing would repeat
            # steps in one run, so the old one ends here and a new run starts beside it.
            with contextlib.suppress(OSError):
                session.close("interrupted")
            session = None
        if session is None:
            session = RecordingSession(
                self.log_dir,
                self.model,
                self._att.plan,
                self._att.recorder,
                config=self.get_config(),
                optimizer=self._att.optimizer_meta,
                tensorboard=self.tensorboard,
                max_records=self.max_records,
                expected_records=expected_records(self.params, self.freqs.freq),
            )
            self.run_dir = session.run_dir
        elif session.closed:
            session.reopen(self.model, self._att.plan, self._att.recorder)
        else:
            session.recorder = self._att.recorder  # a fit left by an exception, continued
        self.session = session
        self._live[0] = session
        if self._notes:
            session.note(self._notes)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Tracks the epoch for records."""
        self._epoch = epoch
        self._epoch_seen = 0
        dispatch = self._att.dispatch if self._att is not None else None
        if dispatch is not None:
            dispatch.new_epoch((self.params or {}).get("steps"))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Reads the ring buffer when a recorded step happened since the last read."""
        att = self._att
        if att is None:
            if self._watcher is not None:  # the watched first step ran: hook what it applied
                watcher, self._watcher = self._watcher, None
                watcher.remove()
                self._installed.remove(watcher)
                self._epoch_seen = batch + 1
                self._install(watcher.groups())
            return
        if att.clock is None:
            self._step += batch + 1 - self._epoch_seen
            self._epoch_seen = batch + 1
            return
        # With steps_per_execution > 1, Keras reports the last step of the execution, as if
        # it were full even when the epoch ran out first.
        steps = (self.params or {}).get("steps")
        end = min(batch + 1, steps) if steps else batch + 1
        ran = end - self._epoch_seen
        dispatch = att.dispatch
        if dispatch is not None:
            dispatch.advance(ran)
            dispatch.remaining = steps - end if steps else None
        if self._calibrate:
            # Counted from the clock itself, read once per fit: another callback's
            # on_train_begin may have restored the optimizer after ours (BackupAndRestore).
            self._calibrate = False
            self._step = int(att.clock.numpy()) - ran
            first_step = self._step
            self._guarded(lambda: self._open_run(first_step))
        before = self._step
        self._step += ran
        self._epoch_seen = end
        freq = self.freqs.freq
        if dispatch is not None:
            if not dispatch.recorded:
                return
            dispatch.check()
        elif -(-self._step // freq) <= -(-before // freq):
            return
        if not self._traced_checked and att.hooks.step_traced:
            # What the instrumented step's trace (its first recorded execution) showed.
            self._traced_checked = True
            self._note(first_step_notes(att, self.model, self._optimizer_names))
            att.recorder.loss_known = att.hooks.loss_traced is not False
        self._last_loss = _log_float((logs or {}).get("loss"))
        records = self._guarded(lambda: self._collect(before)) or []
        if self.on_finding and any(has_nonfinite(r) for r in records):
            self._react(kinds=("nonfinite",))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Saves the epoch's logs (with validation metrics) into the run."""
        session = self._live[0]
        if session is not None and self._write_error is None:
            self._guarded(lambda: session.epoch_end(epoch, self._step, logs))
            if self.on_finding and self._write_error is None:
                self._react()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Reads the last records, closes the run and removes every hook from the model."""
        try:
            # Only a run this fit opened: a fit without steps has none (the last one is closed).
            if self._live[0] is not None and self._guarded(self._finish_run):
                if self.verbose:
                    recorded = self.session.last_record is not None
                    print_findings(self.findings, self.session.run_dir, None, self._notes, recorded)
                if self.html_report is not None:
                    self._write_report()
        finally:
            self._unhook()

    def _finish_run(self) -> bool:
        assert self.session is not None
        self._collect(self._step)
        # A run without a step record examined nothing: no findings file says it is healthy.
        self.findings = diagnose(self.session) if self.session.last_record is not None else []
        self.session.close("completed")
        return True

    def _guarded(self, action: Callable[[], _T]) -> _T | None:
        """Runs a write to the run directory; on OSError stops recording, never training.

        The log_dir is checked at on_train_begin, but a disk can still fill up (or a network
        share vanish) at step 10,000: a diagnostics callback must not kill the training it
        watches. It warns once, marks the run ``"failed"`` if it still can, and records nothing
        more in this fit; what was written stays readable.
        """
        if self._write_error is not None:
            return None
        try:
            return action()
        except OSError as err:
            self._write_error = err
            warnings.warn(
                f"GradScope stopped recording: writing to '{self.run_dir or self.log_dir}' failed "
                f"({err.strerror or err}); training continues and the run so far stays readable.",
                stacklevel=3,
            )
            if self.session is not None:
                with contextlib.suppress(Exception):
                    self.session.close("failed")
            return None

    def _unhook(self) -> None:
        if self._abandon is not None:
            self._abandon.detach()
            self._abandon = None
        if self._installed:
            for patches in reversed(self._installed):  # newest first
                patches.remove()  # the model gets Keras's own train function back
            self._installed.clear()
        self._att = None
        self._watcher = None

    # ------------------------------------------------------------------ helpers

    def _write_report(self) -> None:
        # Imported here: matplotlib and Jinja2 load only for users who ask for the report.
        from gradscope.render.html import render_report

        assert self.html_report is not None
        path = render_report(self.run_dir, self.html_report, findings=self.findings)
        if self.verbose:
            Console().print(f"gradscope: HTML report written to {path}", soft_wrap=True)

    def _react(self, kinds: tuple[str, ...] | None = None) -> None:
        """Diagnoses the run so far; warns once per new finding, stops on the fatal kinds."""
        assert self.session is not None
        for finding in warn_new_findings(self.session.run_dir, self._warned, kinds):
            if self.on_finding == "stop" and finding.kind in STOPPING_KINDS:
                self.model.stop_training = True

    def _collect(self, before: int) -> list[StepRecord]:
        session = self._live[0]
        if session is None:
            return []
        act = self.freqs.activation
        probe_fn = self._att.probe_fn if self._att is not None else None
        if probe_fn is not None and act:
            last_due = ((self._step - 1) // act) * act
            if last_due >= before:
                probe_fn(self.probe_inputs, tf.constant(last_due, tf.int64))
        return session.poll(self._epoch, loss_fallback=self._last_loss)

    def get_config(self) -> dict[str, Any]:
        """Returns the callback's options (stored in the run's ``meta.json``)."""
        return {
            "log_dir": str(self.log_dir),
            "freq": self.freqs.freq,
            "histogram_freq": self.freqs.histogram,
            "activation_freq": self.freqs.activation,
            "layers": self.layers,
            "probe_data": self.probe_inputs is not None,
            "tensorboard": self.tensorboard,
            "max_records": self.max_records,
            "on_finding": self.on_finding,
            "html_report": None if self.html_report is None else str(self.html_report),
        }
