"""Number formatting shared by the HTML report (as Jinja filters) and the terminal summary."""

from __future__ import annotations

import math

# The first/last gradient ratio's one formatter lives next to its one definition (detect sits
# below render and its finding messages use it too); views import it from here as grad_ratio.
from gradscope.detect.summary import format_grad_ratio as grad_ratio

__all__ = ["MISSING", "grad_ratio", "num", "pct", "sci"]

#: Shown for a value that was not recorded or is not finite.
MISSING = "–"


def sci(value: float | None, digits: int = 2) -> str:
    """Formats a magnitude in scientific notation (gradient norms span 15 orders of magnitude).

    Args:
        value: the number, or None.
        digits: digits after the decimal point.

    Returns:
        e.g. ``"1.23e-06"``; ``"NaN"``/``"inf"`` for non-finite values; :data:`MISSING` for None.

    Example:
        >>> sci(0.000001234)
        '1.23e-06'
    """
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}e}"


def pct(value: float | None) -> str:
    """Formats a fraction in [0, 1] as a percentage.

    Args:
        value: the fraction, or None.

    Returns:
        e.g. ``"70 %"``; :data:`MISSING` for None or non-finite values.

    Example:
        >>> pct(0.705)
        '70 %'
    """
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{100 * value:.0f} %"


def num(value: float | int | None) -> str:
    """Formats a plain number: integers with thousands separators, floats with 4 significant digits.

    Args:
        value: the number, or None.

    Returns:
        The text; :data:`MISSING` for None.

    Example:
        >>> num(12345), num(0.123456)
        ('12,345', '0.1235')
    """
    if value is None:
        return MISSING
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return sci(value)
    return f"{value:.4g}"
