"""The findings document, ``findings.json`` in a run directory: strict, versioned JSON.

::

    {"schema_version": 1, "findings": [{"code": "GS101", "kind": "vanishing_gradients",
      "severity": "error", "layers": [...], "message": "...", "evidence": {...},
      "fixes": ["he_init", ...]}]}

The JSON is strict: NaN and ±Inf in evidence become ``null`` so any JSON parser reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gradscope.data.schema import check_schema_version
from gradscope.data.store import atomic_write_bytes
from gradscope.findings.finding import Finding

#: Version of the ``findings.json`` document.
FINDINGS_SCHEMA_VERSION = 1
#: File name of the findings document inside a run directory.
FINDINGS_FILE = "findings.json"


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
    check_schema_version(version, FINDINGS_SCHEMA_VERSION, "The findings document")
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
