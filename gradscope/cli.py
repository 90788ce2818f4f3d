"""Command line: ``gradscope demo``, ``gradscope --version`` (audit, fix, report follow).

The CLI only parses arguments and calls library functions.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gradscope._version import __version__

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


@app.command()
def demo(
    out: Path = typer.Option(Path("reports/demo"), "--out", help="Where the demo writes its runs."),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Training epochs per model."),
    quick: bool = typer.Option(False, "--quick", help="A few epochs only (used by tests)."),
) -> None:
    """Trains the chapter's deep sigmoid network on scikit-learn digits with GradScope."""
    from gradscope.demo import run_demo

    run_demo(out=out, epochs=2 if quick else epochs)


if __name__ == "__main__":  # pragma: no cover
    app()
