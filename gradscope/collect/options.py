"""Checks of the recording options (of GradScope and Scope), failing with what was received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Accepted values of ``on_finding``.
ON_FINDING = (None, "warn", "stop")
#: File suffixes accepted for ``html_report``.
HTML_SUFFIXES = (".html", ".htm")


@dataclass(frozen=True)
class Frequencies:
    """How often each kind of statistic is recorded, in optimizer steps (0 = never).

    Attributes:
        freq: gradients, weights, updates, loss and learning rate.
        activation: activations; a multiple of ``freq`` (or 0).
        histogram: histograms; a multiple of ``freq`` (or 0).
    """

    freq: int
    activation: int
    histogram: int


def validate_frequencies(
    freq: int, activation_freq: int | None, histogram_freq: int
) -> Frequencies:
    """Checks the ``*_freq`` options and resolves defaults.

    Args:
        freq: record every ``freq`` steps; must be >= 1.
        activation_freq: None (same as ``freq``), 0 (off) or a multiple of ``freq``.
        histogram_freq: 0 (off) or a multiple of ``freq``.

    Returns:
        The resolved :class:`Frequencies`.

    Raises:
        ValueError: naming the bad option and the received value.

    Example:
        >>> validate_frequencies(10, None, 0).activation
        10
    """
    if isinstance(freq, bool) or not isinstance(freq, int) or freq < 1:
        raise ValueError(f"`freq` must be an integer >= 1. Received: freq={freq!r}")
    act = freq if activation_freq is None else activation_freq
    for name, value in (("activation_freq", act), ("histogram_freq", histogram_freq)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
        if value and value % freq:
            raise ValueError(
                f"`{name}` must be 0 or a multiple of `freq` ({freq}), so that its statistics "
                f"land on recorded steps. Received: {name}={value}"
            )
    return Frequencies(freq=freq, activation=act, histogram=histogram_freq)


def check_options(
    log_dir: Any,
    max_records: Any,
    layers: Sequence[str] | None,
    on_finding: Any,
    html_report: Any,
) -> None:
    """Checks GradScope's options other than the ``*_freq`` ones (see ``validate_frequencies``).

    Args:
        log_dir: must be a non-empty path.
        max_records: None or an integer >= 2.
        layers: None or a list of names (not one string).
        on_finding: one of :data:`ON_FINDING`.
        html_report: None or the path of an ``.html`` file.

    Raises:
        ValueError: naming the option and the value received.

    Example:
        >>> check_options("runs/x", None, None, "halt", None)
        Traceback (most recent call last):
        ...
        ValueError: `on_finding` must be one of (None, 'warn', 'stop'). Received: on_finding='halt'
    """
    if not isinstance(log_dir, str | Path) or not str(log_dir):
        raise ValueError(f"`log_dir` must be a non-empty path. Received: log_dir={log_dir!r}")
    if max_records is not None and (
        isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 2
    ):
        raise ValueError(
            f"`max_records` must be None or an integer >= 2. Received: max_records={max_records!r}"
        )
    if isinstance(layers, str):
        raise ValueError(f"`layers` must be a list of layer names. Received: layers={layers!r}")
    if on_finding not in ON_FINDING:
        raise ValueError(
            f"`on_finding` must be one of {ON_FINDING}. Received: on_finding={on_finding!r}"
        )
    if html_report is not None and (
        not isinstance(html_report, str | Path)
        or Path(html_report).suffix.lower() not in HTML_SUFFIXES
        or Path(html_report).is_dir()
    ):
        raise ValueError(
            "`html_report` must be None or the path of an .html file to write. "
            f"Received: html_report={html_report!r}"
        )
