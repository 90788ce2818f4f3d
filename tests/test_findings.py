import json
import math

import numpy as np
import pytest

from gradscope.findings import (
    CODES,
    Finding,
    Severity,
    dumps_findings,
    findings_from_json,
    findings_to_json,
    read_findings,
    sort_findings,
    write_findings,
)
from gradscope.remedies import CATALOG, fixes_for, get_fix


def _finding(**kw):
    base = dict(
        code="GS101",
        kind="vanishing_gradients",
        severity=Severity.ERROR,
        layers=("dense", "dense_1"),
        message="m",
        evidence={"ratio": np.float32(1e-7), "norms": np.array([1.0, 2.0]), "nan": math.nan},
        fixes=("he_init",),
    )
    base.update(kw)
    return Finding(**base)


def test_severity_order_and_json_names():
    assert Severity.INFO < Severity.WARNING < Severity.ERROR
    assert max([Severity.WARNING, Severity.ERROR, Severity.INFO]) is Severity.ERROR
    assert [str(s) for s in Severity] == ["info", "warning", "error"]
    assert Severity.parse("WARNING") is Severity.WARNING
    with pytest.raises(ValueError, match="Unknown severity"):
        Severity.parse("fatal")


def test_evidence_is_normalised_to_strict_json():
    f = _finding()
    assert f.evidence["nan"] is None
    assert f.evidence["norms"] == [1.0, 2.0]
    assert isinstance(f.evidence["ratio"], float)
    assert f.evidence["ratio"] == pytest.approx(1e-7, rel=1e-6)
    text = dumps_findings([f])
    # Strict parsers reject NaN: parse with a hook that fails on any NaN/Infinity constant.
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert doc["findings"][0]["severity"] == "error"
    assert doc["findings"][0]["evidence"]["nan"] is None


def test_evidence_rejects_objects():
    with pytest.raises(TypeError, match="JSON-safe"):
        _finding(evidence={"model": object()})


def test_json_round_trip_and_file(tmp_path):
    findings = [
        _finding(),
        _finding(code="GS104", kind="saturation", severity="warning", layers=["a"]),
    ]
    assert findings_from_json(findings_to_json(findings)) == findings
    path = write_findings(tmp_path, findings)
    assert path.name == "findings.json"
    assert read_findings(tmp_path) == findings
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file
    assert read_findings(tmp_path / "missing") == []


def test_newer_schema_is_refused():
    with pytest.raises(ValueError, match="newer"):
        findings_from_json({"schema_version": 99, "findings": []})
    with pytest.raises(ValueError, match="Not a gradscope findings"):
        findings_from_json({"foo": 1})


def test_sort_most_severe_first():
    a = _finding(severity="info", code="GS105")
    b = _finding(severity="error", code="GS104")
    c = _finding(severity="error", code="GS101")
    assert sort_findings([a, b, c]) == [c, b, a]


def test_codes_are_unique():
    assert len(set(CODES.values())) == len(CODES)


def test_catalog_lookups():
    assert get_fix("he_init").id == "he_init"
    with pytest.raises(KeyError, match="Known"):
        get_fix("nope")
    ids = {f.id for f in fixes_for("selu_misconfigured")}
    assert {"alpha_dropout", "lecun_init", "remove_batch_norm"} <= ids
    assert fixes_for("no_such_kind") == ()
    required = {
        "he_init",
        "lecun_init",
        "glorot_init",
        "relu_activation",
        "leaky_relu_activation",
        "elu_activation",
        "selu_activation",
        "batch_norm",
        "clip_norm",
        "clip_value",
        "lower_learning_rate",
        "standardize_inputs",
    }
    assert required <= set(CATALOG)
