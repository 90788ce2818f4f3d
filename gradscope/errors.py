"""Exceptions gradscope raises for bad user input."""

from __future__ import annotations

import re


class GradscopeInputError(ValueError):
    """Bad input from the user (a model file, data file or option).

    The message is one line saying what was wrong and what to do; the CLI prints it to stderr
    without a traceback and exits with code 2.

    Example:
        >>> raise GradscopeInputError("No file at 'x.h5'. Check the path.")  # doctest: +SKIP
    """


def first_line(err: BaseException, limit: int = 160) -> str:
    r"""The first non-empty line of an exception's message, shortened, for one-line messages.

    TensorFlow prefixes op errors with ``{{function_node ...}}`` and wraps errors raised inside
    a compiled step in "Graph execution error:" plus a Python stack; the prefix is dropped and,
    for the latter, the op's own message (after the stack) is the line kept, so the part a user
    can act on survives the shortening.

    Args:
        err: the exception.
        limit: the most characters kept.

    Returns:
        The line, or the exception's class name if it has no message.

    Example:
        >>> first_line(ValueError("bad shape\nmore detail"))
        'bad shape'
    """
    text = str(err)
    if text.startswith("{{function_node") and "}}" in text:
        text = text.split("}}", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        noise = ("File ", "[[", "Detected at node", "Graph execution error")
        useful = [line for line in lines if not line.startswith(noise)]
        lines = useful[-1:] or lines
    return lines[0][:limit] if lines else type(err).__name__


class TrialNotRunError(GradscopeInputError):
    """A trial could not train the model, and the data it was given is not the cause.

    Raised when the copy of the model cannot be made or compiled, or when gradscope's own
    synthetic inputs do not fit it. Callers that can go on without the trial (the audit keeps
    its static findings) catch this; everywhere else it is bad input like any other (exit 2).

    Attributes:
        stage: where the trial stopped: ``"copy"``, ``"compile"``, ``"inputs"`` or ``"train"``.

    Example:
        >>> raise TrialNotRunError("Cannot copy 'net' ...", stage="copy")  # doctest: +SKIP
    """

    def __init__(self, message: str, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class ModelNotSerializableError(GradscopeInputError):
    """Keras cannot describe the model (its ``get_config()`` fails), so gradscope cannot read it.

    Typically a subclassed model whose ``__init__`` takes arguments Keras cannot serialize and
    that does not override ``get_config()``. The message says what to do instead.

    Example:
        >>> raise ModelNotSerializableError("'net' (Net) cannot be described ...")
        ... # doctest: +SKIP
    """


#: Where Keras's messages stop being readable: a dump of the config follows these markers.
_DUMP_MARKERS = (" Full object config:", "\n\nconfig=", " config={", " Received: config=")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_summary(err: BaseException, limit: int = 400) -> str:
    """The cause of an exception in whole sentences, for notes that are printed in full.

    Keras wraps a deserialization failure in a message that repeats the whole model config and
    puts the actual cause last ("Exception encountered: ..."); the cause is what a user can act
    on. Unlike :func:`first_line`, the text is never cut inside a word: past ``limit`` it ends at
    the last full sentence (or, failing that, the last full word and "...").

    Args:
        err: the exception.
        limit: the most characters kept.

    Returns:
        ``"ClassName: message"`` of the innermost readable cause.

    Example:
        >>> error_summary(TypeError("Could not locate class 'Scale'. Full object config: {}"))
        "TypeError: Could not locate class 'Scale'."
    """
    text = _ANSI.sub("", str(err))
    if "Exception encountered:" in text:
        text = text.rsplit("Exception encountered:", 1)[1]
    for marker in _DUMP_MARKERS:
        text = text.split(marker, 1)[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        # Keras's call context names the layer; the op's own message is the next line.
        text = f"{lines[0]} {first_line(ValueError(chr(10).join(lines[1:])), limit=limit)}"
    else:
        text = first_line(ValueError(text), limit=len(text) + 1) if lines else ""
    if len(text) > limit:
        cut = text[:limit]
        end = cut.rfind(". ")
        text = cut[: end + 1] if end > limit // 3 else cut.rsplit(" ", 1)[0] + " ..."
    name = type(err).__name__
    return f"{name}: {text}" if text else name
