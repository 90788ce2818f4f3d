"""Exceptions gradscope raises for bad user input."""

from __future__ import annotations


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
