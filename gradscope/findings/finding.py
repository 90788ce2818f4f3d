"""Finding and Severity: what a detector or static rule concluded, as plain JSON-safe data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """How bad a finding is; ordered so ``max()`` and ``>=`` work (info < warning < error)."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Returns the Severity named by a lowercase string (as in JSON), an int or a Severity.

        Args:
            value: ``"info"``, ``"warning"``, ``"error"``, 0-2, or a Severity.

        Returns:
            The Severity.

        Raises:
            ValueError: for an unknown name or number.

        Example:
            >>> Severity.parse("warning") is Severity.WARNING
            True
        """
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                names = [str(s) for s in cls]
                raise ValueError(
                    f"Unknown severity {value!r}; expected one of {names}. Received: {value!r}"
                ) from None
        return cls(int(value))


def json_safe(value: Any) -> Any:
    """Converts a value to strict-JSON-safe Python data.

    NumPy scalars and arrays become Python numbers and lists, tuples become lists, mapping keys
    become strings, and NaN/±Inf become None (strict JSON has no NaN).

    Args:
        value: numbers, strings, None, sequences, mappings or NumPy values, nested.

    Returns:
        An equivalent value made of dict, list, str, int, float (finite), bool and None.

    Raises:
        TypeError: for values with no JSON form (objects, functions, ...).

    Example:
        >>> json_safe({"ratio": float("nan"), "norms": (1, 2.5)})
        {'ratio': None, 'norms': [1, 2.5]}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    # NumPy values without importing NumPy here: arrays have tolist(), scalars have item().
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if hasattr(value, "item"):
        return json_safe(value.item())
    raise TypeError(f"Evidence values must be JSON-safe data. Received: {type(value).__name__}")


@dataclass(frozen=True)
class Finding:
    """One diagnosis.

    Attributes:
        code: stable code of the kind, e.g. ``"GS101"`` (see :mod:`gradscope.findings.kinds`).
        kind: stable kind string, e.g. ``"vanishing_gradients"``.
        severity: info, warning or error.
        layers: names of the layers concerned, in forward order (may be empty).
        message: one or two plain-language sentences for the user.
        evidence: JSON-safe numbers behind the finding (converted on construction; NaN -> None).
        fixes: fix ids from :mod:`gradscope.remedies`, most recommended first.

    Example:
        >>> f = Finding("GS105", "nonfinite", Severity.ERROR, ("dense",), "NaN loss.", {"step": 3})
        >>> f.severity >= Severity.WARNING
        True
    """

    code: str
    kind: str
    severity: Severity
    layers: tuple[str, ...] = ()
    message: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    fixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Normalise once here so every Finding is JSON-safe and round-trips exactly.
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "layers", tuple(str(x) for x in self.layers))
        object.__setattr__(self, "fixes", tuple(str(x) for x in self.fixes))
        object.__setattr__(self, "evidence", json_safe(dict(self.evidence)))

    def to_json(self) -> dict[str, Any]:
        """Returns the strict-JSON-ready dict of this finding.

        Returns:
            A dict with code, kind, severity (lowercase string), layers, message, evidence, fixes.
        """
        return {
            "code": self.code,
            "kind": self.kind,
            "severity": str(self.severity),
            "layers": list(self.layers),
            "message": self.message,
            "evidence": dict(self.evidence),
            "fixes": list(self.fixes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        """Builds a Finding from :meth:`to_json` output.

        Args:
            data: the parsed dict.

        Returns:
            The Finding.
        """
        return cls(
            code=str(data["code"]),
            kind=str(data["kind"]),
            severity=Severity.parse(data["severity"]),
            layers=tuple(data.get("layers", ())),
            message=str(data.get("message", "")),
            evidence=dict(data.get("evidence", {})),
            fixes=tuple(data.get("fixes", ())),
        )


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Sorts findings most severe first, then by code and first layer (stable, deterministic).

    Args:
        findings: findings in any order.

    Returns:
        A new sorted list.

    Example:
        >>> [str(f.severity) for f in sort_findings([Finding("A", "a", 0), Finding("B", "b", 2)])]
        ['error', 'info']
    """
    return sorted(findings, key=lambda f: (-int(f.severity), f.code, f.layers[:1]))
