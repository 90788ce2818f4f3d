"""Findings: what a detector or static rule concluded, with evidence and fix ids.

A :class:`Finding` is plain data (no Keras objects, no HTML): renderers, the CLI and the fix
planner all consume the same objects or their JSON form (``findings.json``, see
:mod:`gradscope.findings.document`). Each finding's kind is registered in
:data:`~gradscope.findings.kinds.KINDS` with its code, title and the fixes that answer it.
"""

from gradscope.findings.document import (
    FINDINGS_FILE,
    FINDINGS_SCHEMA_VERSION,
    dumps_findings,
    findings_from_json,
    findings_to_json,
    read_findings,
    write_findings,
)
from gradscope.findings.finding import Finding, Severity, json_safe, sort_findings
from gradscope.findings.kinds import CODES, KINDS, KindInfo, kind_info, kind_title, make_finding

__all__ = [
    "CODES",
    "FINDINGS_FILE",
    "FINDINGS_SCHEMA_VERSION",
    "KINDS",
    "Finding",
    "KindInfo",
    "Severity",
    "dumps_findings",
    "findings_from_json",
    "findings_to_json",
    "json_safe",
    "kind_info",
    "kind_title",
    "make_finding",
    "read_findings",
    "sort_findings",
    "write_findings",
]
