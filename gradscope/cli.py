"""Command line: ``gradscope demo``, ``gradscope fix``, ``gradscope --version``.

The CLI only parses arguments and calls library functions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gradscope._version import __version__

# TensorFlow's C++ start-up chatter (oneDNN, a failed cuInit on CPU machines) drowns the CLI's
# output, and real failures reach the CLI as Python exceptions anyway; the user's
# own setting wins. Set before any command imports TensorFlow (gradscope's package imports are
# lazy for this reason).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_tensorflow_quietly() -> None:
    # TF ≥ 2.18 prints oneDNN/CUDA notices through absl before its log level is read, so the
    # variable above cannot silence them; stderr is muted for the import only. An import error
    # still surfaces: the exception is raised after stderr is restored.
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] < "2":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _bad_input(command: str, err: BaseException) -> typer.Exit:
    # Exactly one line on stderr, whatever the message held, then exit 2; GRADSCOPE_DEBUG=1
    # re-raises so the traceback shows.
    if os.environ.get("GRADSCOPE_DEBUG") == "1":
        raise err
    message = " ".join(str(err).split())
    typer.echo(f"gradscope {command}: {message}", err=True)
    return typer.Exit(2)


app = typer.Typer(
    name="gradscope",
    help="Tells you why your TensorFlow/Keras network is not learning, and fixes it.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradscope {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Tells you why your TensorFlow/Keras network is not learning, and fixes it."""


#: ``--custom-objects``, the same option on ``audit`` and ``fix``.
CUSTOM_OBJECTS_OPTION = typer.Option(
    None,
    "--custom-objects",
    metavar="MODULE:NAME",
    help="A custom class/function the file needs, imported from an installed module or one "
    "on PYTHONPATH (repeatable). Nothing from the file runs.",
)


@app.command()
def demo(
    # runs/ is git-ignored: the quickstart must leave a clone's `git status` clean. The committed
    # sample in reports/demo is regenerated on purpose with `--out reports/demo`.
    out: Path = typer.Option(
        Path("runs/demo"), "--out", help="Where the demo writes its runs and report."
    ),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Training epochs per model."),
    quick: bool = typer.Option(
        False, "--quick", help="2 epochs and short trials, under 30 s (used by tests)."
    ),
) -> None:
    """The chapter's story on digits: sick deep sigmoid net, diagnosis, verified fix, report."""
    _import_tensorflow_quietly()
    from gradscope.demo import run_demo

    if quick:
        run_demo(out=out, epochs=2, trial_steps=20)
    else:
        run_demo(out=out, epochs=epochs)


@app.command()
def audit(
    model: Path = typer.Argument(..., help="Model file to audit (.keras or legacy .h5)."),
    data: Path | None = typer.Option(None, "--data", help="An .npz with arrays x and y."),
    steps: int | None = typer.Option(
        None, "--steps", min=0, help="Probe training steps on a clone (0: static rules only)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON to stdout."),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Allow Lambda layers / custom objects (runs code from the file)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report of the probe run here."
    ),
    custom_objects: list[str] | None = CUSTOM_OBJECTS_OPTION,
) -> None:
    """Audits a saved model: static rules, then a short probe on a clone.

    Exit codes: 0 examined, no finding at warning or above; 1 findings; 2 bad input;
    3 not examined (the probe could not run; --json says what was left out and why).
    """
    _import_tensorflow_quietly()
    from gradscope.audit.command import audit_command

    raise typer.Exit(
        audit_command(
            model,
            data=data,
            steps=steps,
            as_json=as_json,
            unsafe=unsafe,
            html=html,
            custom_objects=custom_objects or (),
        )
    )


@app.command()
def fix(
    model: Path = typer.Argument(..., help="The model file (.keras or .h5); never modified."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Where to write FIXED.keras."),
    apply: str | None = typer.Option(
        None, "--apply", help="Comma-separated fix ids to apply, e.g. he_init,batch_norm."
    ),
    auto: bool = typer.Option(False, "--auto", help="Apply the plan, keeping verified fixes only."),
    data: Path | None = typer.Option(
        None, "--data", help="An .npz with arrays x and y for the trials (default: synthetic)."
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=3, help="Trial steps per model (default: --epochs passes)."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Passes over the 256 trial examples per trial (default 8)."
    ),
    optimizer: str | None = typer.Option(
        None, "--optimizer", help="Keras optimizer name for the trials and FIXED.keras (e.g. adam)."
    ),
    learning_rate: float | None = typer.Option(
        None, "--learning-rate", help="Learning rate for the trials and FIXED.keras."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Examples per trial step (default 32)."
    ),
    budget: float | None = typer.Option(
        None, "--budget", min=0, help="Seconds for --auto's search of fixes (default 120)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed shared by the trials."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    unsafe: bool = typer.Option(False, "--unsafe", help="Load files that run code (trusted only)."),
    html: Path | None = typer.Option(
        None, "--html", help="Also write an HTML report of the trials (before/after) here."
    ),
    custom_objects: list[str] | None = CUSTOM_OBJECTS_OPTION,
) -> None:
    """Plans fixes for a model, applies them to a copy, verifies by trial, writes FIXED.keras.

    Without --apply or --auto only the findings and the plan are shown. Exit codes: 0 success,
    1 nothing verified, 2 bad input.
    """
    _import_tensorflow_quietly()
    from gradscope.fix.command import fix_command

    raise typer.Exit(
        fix_command(
            model,
            fix_ids=[f.strip() for f in apply.split(",") if f.strip()] if apply else [],
            auto=auto,
            output=output,
            data=data,
            steps=steps,
            seed=seed,
            as_json=as_json,
            unsafe=unsafe,
            html=html,
            custom_objects=custom_objects or (),
            epochs=epochs,
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            budget=budget,
        )
    )


@app.command()
def report(
    run_dirs: list[Path] = typer.Argument(
        ...,
        metavar="RUN_DIR...",
        help="Run directories, or log_dirs (their newest run); two are before/after.",
    ),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="The HTML file to write."),
    title: str | None = typer.Option(None, "--title", help="Report title."),
) -> None:
    """Writes a self-contained HTML report of one run, or compares several (exit 0, 2 bad input)."""
    _import_tensorflow_quietly()  # the report's findings may need the detectors (TensorFlow)
    from gradscope.errors import GradscopeInputError
    from gradscope.render.html import render_report
    from gradscope.render.sources import choice_note

    try:
        # A log_dir stands for its newest run; say so when it holds others (as TensorBoard
        # would show them all), so nobody reads the wrong run's report.
        for note in filter(None, map(choice_note, run_dirs)):
            typer.echo(f"gradscope report: {note}", err=True)
        path = render_report(run_dirs, out, title=title)
    except GradscopeInputError as err:
        raise _bad_input("report", err) from None
    typer.echo(f"Report written to {path}")


if __name__ == "__main__":  # pragma: no cover
    app()
