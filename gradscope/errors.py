"""Exceptions gradscope raises for bad user input."""

from __future__ import annotations


class GradscopeInputError(ValueError):
    """Bad input from the user (a model file, data file or option).

    The message is one line saying what was wrong and what to do; the CLI prints it to stderr
    without a traceback and exits with code 2.

    Example:
        >>> raise GradscopeInputError("No file at 'x.h5'. Check the path.")  # doctest: +SKIP
    """
