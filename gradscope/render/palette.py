"""The colours every gradscope view shares: the HTML report's figures and the TensorBoard dashboard.

Defined once here; the dashboard's JavaScript receives them from the plugin's ``/runs`` route, so
a run compared in the report and the same run in TensorBoard have the same colour.

Compared runs use the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"), which
stays distinguishable under the common colour-vision deficiencies; its vermilion and blue differ
in hue for every kind of colour vision and both contrast with white at least 3:1 (WCAG's minimum
for graphics), so a thin line of either stays visible.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Before/after: the run being diagnosed (vermilion) and the run after the fix (blue).
BEFORE: str = "#D55E00"
AFTER: str = "#0072B2"
#: More compared runs continue with the Okabe–Ito colours that keep 3:1 against white.
MORE_RUNS: tuple[str, ...] = ("#009E73", "#CC79A7", "#000000")

#: Dead ReLU units and saturated sigmoid/tanh units (the two bars of the fractions chart): a dark
#: wine (Tol's "muted" scheme) and a light orange differ in lightness for every colour vision.
DEAD: str = "#882255"
SATURATED: str = "#E69F00"
#: The output layer's saturation is its confidence, never judged: drawn neutral grey.
CONFIDENCE: str = "#A0A0A0"
#: The healthy band and target line of the update ratio.
HEALTHY: str = "#009E73"
#: Cells and bars without a recorded value.
MISSING: str = "#BBBBBB"


def run_colours(n: int) -> tuple[str, ...]:
    """Colours of ``n`` compared runs, in order: before, after, then the rest of the palette.

    Args:
        n: number of runs.

    Returns:
        ``n`` hex colours; they repeat only beyond five runs.

    Example:
        >>> run_colours(2)
        ('#D55E00', '#0072B2')
    """
    cycle: Sequence[str] = (BEFORE, AFTER, *MORE_RUNS)
    return tuple(cycle[i % len(cycle)] for i in range(n))


def as_json() -> dict[str, object]:
    """The palette for the dashboard's JavaScript.

    Returns:
        ``{"runs": [...], "dead", "saturated", "confidence", "missing"}`` as hex strings.

    Example:
        >>> as_json()["confidence"]
        '#A0A0A0'
    """
    return {
        "runs": list(run_colours(2 + len(MORE_RUNS))),
        "dead": DEAD,
        "saturated": SATURATED,
        "confidence": CONFIDENCE,
        "missing": MISSING,
    }
