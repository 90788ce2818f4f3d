import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import gradscope
from gradscope.detect.static import static_rule
from gradscope.findings import (
    CODES,
    KINDS,
    Finding,
    Severity,
    dumps_findings,
    findings_from_json,
    findings_to_json,
    kind_title,
    make_finding,
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


# -- the kind registry: one source of codes, titles and the fixes that answer each kind ----------

PACKAGE = Path(gradscope.__file__).parent
#: Calls whose first argument is a finding kind.
_KIND_CALLS = frozenset({"register", "static_rule", "make_finding", "_finding", "kind_info"})


def _strings(node: ast.AST) -> list[str]:
    # A kind literal, or the literals of a tuple/list/set/frozenset({...}) of them.
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for e in node.elts for s in _strings(e)]
    if isinstance(node, ast.Call) and node.args:
        return _strings(node.args[0])
    return []


def _is_kind_attribute(node: ast.AST) -> bool:
    # ``finding.kind == ...``; NumPy's ``x.dtype.kind`` is a type code, not a finding kind.
    if not isinstance(node, ast.Compare) or getattr(node.left, "attr", None) != "kind":
        return False
    return getattr(getattr(node.left, "value", None), "attr", None) != "dtype"


def kinds_named_in(source: str) -> set[str]:
    """Finding kinds a module names, wherever it names one as a kind.

    Args:
        source: Python source.

    Returns:
        The kinds in ``KIND = ...``/``kind = ...``, in the first argument of the registering and
        finding-building calls, in ``kinds=`` arguments, in ``*_KINDS`` constants, in
        ``x.kind ==``/``in`` comparisons and in the keys of the ``_EVIDENCE`` figure registry.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", "")
            if name.lower() == "kind" or name.endswith("KINDS"):
                found.update(_strings(node.value))
            if name == "_EVIDENCE" and isinstance(node.value, ast.Dict):
                found.update(s for k in node.value.keys if k is not None for s in _strings(k))
        elif isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "id", None) or getattr(func, "attr", "")
            if name in _KIND_CALLS and node.args:
                found.update(_strings(node.args[0]))
            found.update(s for kw in node.keywords if kw.arg == "kinds" for s in _strings(kw.value))
        elif _is_kind_attribute(node):
            found.update(s for c in node.comparators for s in _strings(c))
    return found


def test_every_kind_used_anywhere_is_registered() -> None:
    used: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for kind in kinds_named_in(path.read_text(encoding="utf-8")):
            used.setdefault(kind, set()).add(path.relative_to(PACKAGE).as_posix())
    # The registries the package fills at import, and what the scenario suite expects.
    from gradscope.detect import registered
    from gradscope.detect.static import _RULES
    from gradscope.scenarios import SCENARIOS

    runtime = set(registered()) | set(_RULES)
    for scenario in SCENARIOS.values():
        runtime |= scenario.expected_run | scenario.expected_static
    assert set(registered()) == {k for k, i in KINDS.items() if i.code.startswith("GS1")}
    assert set(_RULES) == {k for k, i in KINDS.items() if i.code.startswith("GS2")}
    assert len(used) >= 9  # the scan sees the detectors, rules, views and callback
    unknown = {k: sorted(v) for k, v in used.items() if k not in KINDS}
    assert unknown == {}
    assert runtime <= set(KINDS)


def test_the_kind_scan_can_fail() -> None:
    control = (
        'KIND = "vanishing_gradient"\n'
        'STOP_KINDS = frozenset({"nan_loss"})\n'
        'x = make_finding("dead_relu", 2, (), "", {})\n'
        'ok = [f for f in fs if f.kind in ("saturaton",)]\n'
        'numeric = x.dtype.kind in "biuf"\n'
        'detect(run, kinds=("explode",))\n'
    )
    assert kinds_named_in(control) == {
        "vanishing_gradient",
        "nan_loss",
        "dead_relu",
        "saturaton",
        "explode",
    }


def test_every_registered_fix_exists_and_answers_something() -> None:
    for kind, info in KINDS.items():
        assert info.answers, kind
        assert len(set(info.answers)) == len(info.answers), kind  # no fix listed twice
        assert set(info.answers) <= set(CATALOG), (kind, set(info.answers) - set(CATALOG))
        assert info.title and info.title == kind_title(kind)
    assert len({i.code for i in KINDS.values()}) == len(KINDS)
    assert dict(CODES) == {k: i.code for k, i in KINDS.items()}
    # Every catalog fix answers some kind, and the catalog's view is the registry's.
    for fix in CATALOG.values():
        assert fix.answers == {k for k, i in KINDS.items() if fix.id in i.answers}, fix.id
        assert fix.answers, fix.id
    assert [f.id for f in fixes_for("vanishing_gradients")] == list(
        KINDS["vanishing_gradients"].answers
    )


def test_make_finding_reads_the_registry() -> None:
    f = make_finding("dying_relu", Severity.WARNING, ["d"], "m", {})
    assert (f.code, f.fixes) == ("GS103", KINDS["dying_relu"].fixes)
    assert make_finding("dying_relu", 1, (), "", {}, ("selu_activation",)).fixes == (
        "selu_activation",
    )
    with pytest.raises(ValueError, match="do not answer 'dying_relu'"):
        make_finding("dying_relu", Severity.WARNING, (), "m", {}, ("clip_norm",))
    with pytest.raises(KeyError, match="Registered"):
        make_finding("dead_units", Severity.WARNING, (), "m", {})
    with pytest.raises(KeyError, match="Registered"):
        static_rule("not_a_kind")
    assert kind_title("some_new_kind") == "Some new kind"  # a kind from another version
