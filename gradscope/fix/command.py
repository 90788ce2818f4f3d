"""``gradscope fix``: the command's behaviour as a plain function (the CLI only parses options).

Without fix ids or ``auto`` the original is trialled and the findings and the plan are shown.
With fix ids (``--apply``) or ``auto`` the fixes are applied to a copy, verified by trial, and the
fixed model is written to ``output`` (``--apply`` writes what was asked for even if unverified;
``--auto`` writes only a verified model). The original file is never written.

Exit codes: 0 success, 1 nothing verified, 2 bad input (one line on stderr, no traceback unless
``GRADSCOPE_DEBUG=1``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import keras
import numpy as np
from rich.console import Console

from gradscope.config import REPAIR_THRESHOLDS
from gradscope.errors import GradscopeInputError
from gradscope.fix import TRANSFORMS, auto_fix, fix_model, plan_fixes
from gradscope.fix.auto import FixResult
from gradscope.fix.load import load_for_fix
from gradscope.fix.report import write_fix_report, write_trial_report
from gradscope.fix.save import save_model_atomically
from gradscope.fix.summary import print_plan, print_result, print_setup
from gradscope.fix.verify import fix_data, fix_trial, trial_steps
from gradscope.model.custom import import_custom_objects
from gradscope.render.html import check_html_path
from gradscope.trial.data import load_npz_data
from gradscope.trial.setup import TrainingSetup, training_setup

EXIT_OK = 0
EXIT_UNVERIFIED = 1
EXIT_BAD_INPUT = 2


def _bad_input(error: KeyError | ValueError, err: TextIO) -> int:
    if os.environ.get("GRADSCOPE_DEBUG") == "1":
        raise error
    message = " ".join(str(error).split())  # exactly one line, whatever the message held
    if isinstance(error, KeyError):
        message = message.strip("'\"")  # str(KeyError) quotes its message
    print(f"gradscope fix: {message}", file=err)
    return EXIT_BAD_INPUT


def check_options(
    model: Path, fix_ids: Sequence[str], auto: bool, output: Path | None, html: Path | None
) -> None:
    """Refuses option combinations that cannot work, before any model is loaded or trained.

    Args:
        model: the model file.
        fix_ids: fix ids to apply (``--apply``).
        auto: ``--auto``.
        output: where the fixed model goes (``-o``), or None.
        html: where the HTML report goes, or None.

    Raises:
        GradscopeInputError: naming the problem and what to pass instead.

    Example:
        >>> check_options(Path("m.keras"), ["he_init"], False, None, None)
        Traceback (most recent call last):
        ...
        gradscope.errors.GradscopeInputError: Pass -o FIXED.keras to say where the fixed model goes.
    """
    if html is not None:
        check_html_path(html)
    unknown = [f for f in fix_ids if f not in TRANSFORMS]
    if unknown:
        raise GradscopeInputError(f"Unknown fix ids {unknown}; choose from {sorted(TRANSFORMS)}.")
    if fix_ids and auto:
        raise GradscopeInputError("Pass either --apply or --auto, not both.")
    if (fix_ids or auto) and output is None:
        raise GradscopeInputError("Pass -o FIXED.keras to say where the fixed model goes.")
    if output is not None and output.resolve() == model.resolve():
        raise GradscopeInputError("-o must differ from MODEL; the original is never overwritten.")
    if output is not None and output.suffix != ".keras":
        raise GradscopeInputError(f"-o must end in .keras. Received: '{output}'")


def _show_plan(
    original: keras.Model,
    setup: TrainingSetup,
    x: np.ndarray | None,
    y: np.ndarray | None,
    steps: int | None,
    epochs: int | None,
    seed: int,
    as_json: bool,
    html: Path | None,
    out: TextIO,
    console: Console,
) -> None:
    # No fix asked for: trial the original, then show what was found and what would be done.
    data = fix_data(original, x, y, seed=seed)
    bs = setup.batch_size
    steps = steps or trial_steps(len(data), bs, epochs or REPAIR_THRESHOLDS.trial_epochs)
    trial = fix_trial(original, data, Path(tempfile.mkdtemp()) / "original", steps, seed, bs)
    plan = plan_fixes(trial.findings, original)
    if as_json:
        doc = {
            "findings": [f.to_json() for f in trial.findings],
            "plan": plan.to_json(),
            "setup": setup.to_json(),
        }
        print(json.dumps(doc, indent=1), file=out)
    else:
        print_setup(setup, console)
        for f in trial.findings:
            console.print(f"{f.severity} {f.code} {f.kind}: {f.message}", soft_wrap=True)
        print_plan(plan, console)
    if html is not None:
        write_trial_report(trial, html)
        console.print(f"HTML report written to {html}", soft_wrap=True)


def _show_result(
    result: FixResult,
    output: Path | None,
    written: bool,
    as_json: bool,
    html: Path | None,
    out: TextIO,
    console: Console,
) -> None:
    # The outcome, where the fixed model went, and the HTML report. The JSON "output" is set
    # whenever fixes were applied, as before this module existed (even when --auto did not write
    # an unverified model).
    if as_json:
        doc = result.to_json() | {"output": str(output) if result.applied else None}
        print(json.dumps(doc, indent=1, allow_nan=False), file=out)
    else:
        print_result(result, console)
        if written:
            console.print(f"Fixed model written to {output}.", soft_wrap=True)
    if html is not None:
        write_fix_report(result, html)
        console.print(f"HTML report written to {html}", soft_wrap=True)


def fix_command(
    model: Path,
    fix_ids: Sequence[str] = (),
    auto: bool = False,
    output: Path | None = None,
    data: Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    as_json: bool = False,
    unsafe: bool = False,
    html: Path | None = None,
    custom_objects: Sequence[str] = (),
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    *,
    epochs: int | None = None,
    optimizer: str | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    budget: float | None = None,
) -> int:
    """Runs ``gradscope fix`` and returns its exit code.

    Args:
        model: the ``.keras`` or ``.h5`` file (never modified).
        fix_ids: fix ids to apply and verify as a whole (``--apply``).
        auto: apply the plan step by step, keeping verified fixes only (``--auto``).
        output: where the fixed ``.keras`` model goes; required with ``fix_ids`` or ``auto``.
        data: optional ``.npz`` with arrays ``x`` and ``y`` for the trials (default: synthetic);
            the trials use a seeded subset of
            :attr:`~gradscope.config.RepairThresholds.trial_examples` examples.
        steps: trial training steps per model (default: ``epochs`` passes over the examples).
        seed: seed shared by the trials.
        as_json: print JSON to stdout instead of tables (tables and notes go to stderr).
        unsafe: allow Lambda layers and unknown custom objects (runs code from the file).
        html: also write the HTML report of the trials here.
        custom_objects: ``"module:name"`` of custom classes/functions the file needs (see
            :func:`gradscope.model.custom.import_custom_objects`).
        stdout: where results go (default ``sys.stdout``).
        stderr: where the one-line error goes (default ``sys.stderr``).
        epochs: passes over the trial examples per trial (default
            :attr:`~gradscope.config.RepairThresholds.trial_epochs`); ignored with ``steps``.
        optimizer: a Keras optimizer name replacing the model's for the trials and the fixed file.
        learning_rate: replaces the optimizer's learning rate.
        batch_size: examples per trial step (model files store none; default 32).
        budget: seconds for ``--auto``'s search (default
            :attr:`~gradscope.config.RepairThresholds.budget_seconds`).

    Returns:
        0 on success (plan shown, or the fixed model verified), 1 if nothing verified, 2 for bad
        input.

    Example:
        >>> fix_command(Path("model.h5"), auto=True, output=Path("fixed.keras"))  # doctest: +SKIP
        0
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    console = Console(file=err if as_json else out)
    try:
        check_options(model, fix_ids, auto, output, html)
        custom = import_custom_objects(custom_objects)
        loaded = load_for_fix(model, unsafe=unsafe, custom_objects=custom)
        original, setup = training_setup(loaded, optimizer, learning_rate, batch_size)
        x, y = load_npz_data(data) if data is not None else (None, None)
        if not (fix_ids or auto):
            _show_plan(original, setup, x, y, steps, epochs, seed, as_json, html, out, console)
            return EXIT_OK
        common = {"steps": steps, "seed": seed, "batch_size": setup.batch_size}
        if auto:
            result = auto_fix(original, x, y, **common, epochs=epochs, budget=budget, setup=setup)
        else:
            result = fix_model(
                original, list(fix_ids), x=x, y=y, **common, epochs=epochs, setup=setup
            )
    except (KeyError, ValueError) as error:  # GradscopeInputError is a ValueError
        return _bad_input(error, err)
    # --apply writes what was asked for even if unverified (exit 1 says so); --auto writes only
    # a verified model.
    written = bool(result.applied and (result.verified or fix_ids))
    if written:
        assert output is not None
        save_model_atomically(result.model, output)
    try:
        _show_result(result, output, written, as_json, html, out, console)
    except GradscopeInputError as error:
        return _bad_input(error, err)
    out.flush()
    return EXIT_OK if result.verified else EXIT_UNVERIFIED
