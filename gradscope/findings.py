"""Findings: what a detector or static rule concluded, with evidence and fix ids.

A :class:`Finding` is plain data (no Keras objects, no HTML): renderers, the CLI and the fix
planner all consume the same objects or their JSON form (``findings.json``)::

    {"schema_version": 1, "findings": [{"code": "GS101", "kind": "vanishing_gradients",
      "severity": "error", "layers": [...], "message": "...", "evidence": {...},
      "fixes": ["he_init", ...]}]}

The JSON is strict: NaN and ±Inf in evidence become ``null`` so any JSON parser reads it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from gradscope.data.store import atomic_write_bytes

#: Version of the ``findings.json`` document.
FINDINGS_SCHEMA_VERSION = 1
#: File name of the findings document inside a run directory.
FINDINGS_FILE = "findings.json"

#: Stable finding codes by kind. GS1xx: judged from a run; GS2xx: static rules on the model.
CODES: Mapping[str, str] = {
    "vanishing_gradients": "GS101",
    "exploding_gradients": "GS102",
    "dying_relu": "GS103",
    "saturation": "GS104",
    "nonfinite": "GS105",
    "init_activation_mismatch": "GS201",
    "selu_misconfigured": "GS202",
    "deep_saturating_stack": "GS203",
    "missing_clipping": "GS204",
}


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
        code: stable code, e.g. ``"GS101"`` (see :data:`CODES`).
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


def findings_to_json(findings: Iterable[Finding]) -> dict[str, Any]:
    """Returns the findings document.

    Args:
        findings: the findings, in the order to keep.

    Returns:
        ``{"schema_version": 1, "findings": [...]}``, strict-JSON-safe.

    Example:
        >>> findings_to_json([])
        {'schema_version': 1, 'findings': []}
    """
    return {"schema_version": FINDINGS_SCHEMA_VERSION, "findings": [f.to_json() for f in findings]}


def findings_from_json(document: Mapping[str, Any]) -> list[Finding]:
    """Parses a findings document.

    Args:
        document: the parsed JSON of :func:`findings_to_json`.

    Returns:
        The findings in document order.

    Raises:
        ValueError: if the document is malformed or written by a newer schema version.

    Example:
        >>> findings_from_json({"schema_version": 1, "findings": []})
        []
    """
    try:
        version = int(document["schema_version"])
        items = list(document["findings"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"Not a gradscope findings document. Received keys: {list(document)}"
        ) from err
    if version > FINDINGS_SCHEMA_VERSION:
        raise ValueError(
            f"Findings schema version {version} is newer than this gradscope understands "
            f"({FINDINGS_SCHEMA_VERSION}); upgrade gradscope. Received: schema_version={version}"
        )
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Finding.from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # A hand-edited or foreign document: say which entry, never a bare KeyError.
            raise ValueError(f"Finding #{i} is malformed ({type(err).__name__}: {err})") from err
    return out


def dumps_findings(findings: Iterable[Finding], indent: int | None = 1) -> str:
    """Serializes findings to strict JSON text (``allow_nan=False``).

    Args:
        findings: the findings.
        indent: JSON indentation, None for one line.

    Returns:
        The JSON text.

    Example:
        >>> dumps_findings([], indent=None)
        '{"schema_version": 1, "findings": []}'
    """
    return json.dumps(findings_to_json(findings), indent=indent, allow_nan=False)


def write_findings(run_dir: str | os.PathLike[str], findings: Iterable[Finding]) -> Path:
    """Atomically writes ``findings.json`` into a run directory.

    Args:
        run_dir: the run directory.
        findings: the findings to write (replaces any previous document).

    Returns:
        The path written.

    Example:
        >>> write_findings(tempfile.mkdtemp(), [])  # doctest: +SKIP
    """
    path = Path(run_dir) / FINDINGS_FILE
    atomic_write_bytes(path, dumps_findings(findings).encode("utf-8"))
    return path


def read_findings(run_dir: str | os.PathLike[str]) -> list[Finding]:
    """Reads ``findings.json`` from a run directory.

    Args:
        run_dir: the run directory.

    Returns:
        The findings, or an empty list if the run has no findings document yet.

    Raises:
        ValueError: if the document is corrupt or newer than this gradscope.

    Example:
        >>> read_findings("runs/x")  # doctest: +SKIP
    """
    path = Path(run_dir) / FINDINGS_FILE
    if not path.exists():
        return []
    return findings_from_json(json.loads(path.read_text(encoding="utf-8")))
