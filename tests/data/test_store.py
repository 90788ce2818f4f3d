"""Run directory format: round trip, bounds, torn lines, schema versions."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradscope.data import (
    SCHEMA_VERSION,
    EpochRecord,
    LayerInfo,
    RunFormatError,
    RunMeta,
    RunWriter,
    StepRecord,
    load_run,
)
from gradscope.data.schema import has_nonfinite
from gradscope.data.store import STATS_FILE, atomic_write_bytes
from gradscope.findings import FINDINGS_SCHEMA_VERSION, findings_from_json

META = RunMeta(
    layers=(
        LayerInfo(
            "dense", "Dense", "relu", "relu", "GlorotUniform", 4, 20, True, True, ("kernel", "bias")
        ),
        LayerInfo("frozen", "Dense", None, None, None, 2, 10, False, False, ()),
    ),
    model_name="m",
    optimizer={"class": "SGD", "config": {"learning_rate": 0.1}},
    config={"freq": 1},
    created="2026-01-01T00:00:00+00:00",
)


def _record(step: int, loss: float = 1.0) -> StepRecord:
    return StepRecord(
        step=step,
        epoch=0,
        loss=loss,
        lr=0.1,
        layers={"dense": {"grad_norm": float(step) + 0.5, "dead_frac": 0.25}},
        variables={"dense/kernel": {"grad_norm": 1.0, "weight_norm": 2.0}},
    )


def test_round_trip(tmp_path) -> None:
    writer = RunWriter(tmp_path, META)
    for step in range(5):
        writer.append(_record(step, loss=float("nan") if step == 3 else 1.0 / (step + 1)))
    writer.append_epoch(EpochRecord(epoch=0, step=5, logs={"loss": 0.5, "val_loss": 0.6}))
    writer.set_status("completed")
    writer.close()
    run = load_run(tmp_path)
    assert run.meta == META.__class__(**{**META.__dict__, "status": "completed"})
    assert run.layer_names == ["dense", "frozen"]
    assert run.layer("frozen").trainable is False
    steps, values = run.series("grad_norm", "dense")
    assert steps.tolist() == [0, 1, 2, 3, 4]
    assert values.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    _, losses = run.series("loss")
    assert math.isnan(losses[3]) and losses[4] == pytest.approx(0.2)
    assert run.epochs[0].logs["val_loss"] == 0.6
    assert run.records[0].variables["dense/kernel"]["weight_norm"] == 2.0
    with pytest.raises(KeyError, match="Known layers"):
        run.layer("nope")
    with pytest.raises(ValueError, match="per layer"):
        run.series("grad_norm")


def test_newer_schema_fails_clearly(tmp_path) -> None:
    RunWriter(tmp_path, META).close()
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match="newer than this gradscope understands") as run_err:
        load_run(tmp_path)
    # findings.json is refused by the same check, in the same words.
    doc = {"schema_version": FINDINGS_SCHEMA_VERSION + 1, "findings": []}
    with pytest.raises(ValueError, match="newer than this gradscope understands") as doc_err:
        findings_from_json(doc)
    tail = "Upgrade gradscope to read it. Received: schema_version=2"
    assert str(run_err.value).endswith(tail) and str(doc_err.value).endswith(tail)


def test_has_nonfinite_is_the_one_test_of_a_nan_step() -> None:
    def record(loss: float = 1.0, **stats: float) -> StepRecord:
        return StepRecord(0, 0, loss, 0.1, {"d": {"grad_norm": 1.0, "weight_norm": 1.0, **stats}})

    assert not has_nonfinite(record())
    assert has_nonfinite(record(loss=math.nan))
    assert has_nonfinite(record(nonfinite=3.0))
    # A norm that overflowed while every entry was finite, or corrupted weights, count too.
    assert has_nonfinite(record(grad_norm=math.inf))
    assert has_nonfinite(record(weight_norm=math.nan))
    assert not has_nonfinite(StepRecord(0, 0, None, 0.1, {"d": {}}))


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"model": {}}'])
def test_corrupt_meta_fails_clearly(tmp_path, content: str) -> None:
    (tmp_path / "meta.json").write_text(content)
    with pytest.raises(RunFormatError, match="corrupt"):
        load_run(tmp_path)


def test_missing_run_fails_clearly(tmp_path) -> None:
    with pytest.raises(RunFormatError, match="No run directory"):
        load_run(tmp_path / "absent")
    with pytest.raises(RunFormatError, match="has no meta.json"):
        load_run(tmp_path)


def test_torn_last_line_is_skipped_and_counted(tmp_path) -> None:
    writer = RunWriter(tmp_path, META)
    for step in range(3):
        writer.append(_record(step))
    writer.close()
    with open(tmp_path / STATS_FILE, "a") as fh:
        fh.write('{"step": 3, "epoch": 0, "loss": 1.0, "la')  # killed mid-write
    run = load_run(tmp_path)
    assert [r.step for r in run.records] == [0, 1, 2]
    assert run.skipped_lines == 1


def test_max_records_bounds_the_log_and_keeps_even_spacing(tmp_path) -> None:
    writer = RunWriter(tmp_path, META, max_records=10)
    for step in range(1000):
        writer.append(_record(step))
        assert writer.records_kept <= 10
    writer.close()
    steps = load_run(tmp_path).steps
    assert 5 <= len(steps) <= 10
    assert steps[0] == 0
    gaps = np.diff(steps)
    assert len(set(gaps.tolist())) == 1  # evenly spaced
    assert steps[-1] >= 1000 - gaps[0]  # covers the whole run


def test_thinned_read_keeps_spacing_the_end_and_the_first_nonfinite_step(tmp_path) -> None:
    writer = RunWriter(tmp_path, META)
    # Step 5 has a NaN that is not a non-finite step (update_ratio of a zero weight): parsed,
    # not kept. Step 537 is the first non-finite one, 543 the second.
    for step in range(1000):
        record = _record(step, loss=math.nan if step in (537, 543) else 1.0)
        if step == 5:
            record.layers["dense"]["update_ratio"] = math.nan
        writer.append(record)
    writer.close()
    full = load_run(tmp_path)
    thin = load_run(tmp_path, max_records=100)
    steps = [r.step for r in thin.records]
    assert steps == sorted({*range(0, 1000, 10), 537, 999})
    kept = {r.step: r for r in full.records}
    assert all(r == kept[r.step] for r in thin.records)  # the same records, parsed the same
    assert [r.step for r in thin.records if has_nonfinite(r)] == [537]
    assert load_run(tmp_path, max_records=5000).records == full.records
    with pytest.raises(ValueError, match="max_records"):
        load_run(tmp_path, max_records=0)


def test_atomic_write_respects_umask(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640


def test_atomic_write_replaces_whole_file(tmp_path) -> None:
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp files left


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.integers(min_value=0, max_value=10_000), junk=st.binary(max_size=40))
def test_reader_survives_truncation_and_garbage(tmp_path_factory, cut: int, junk: bytes) -> None:
    path = tmp_path_factory.mktemp("run")
    writer = RunWriter(path, META)
    for step in range(20):
        writer.append(_record(step))
    writer.close()
    data = (path / STATS_FILE).read_bytes()
    cut = min(cut, len(data))
    (path / STATS_FILE).write_bytes(data[:cut] + junk)
    run = load_run(path)
    complete_lines = data[:cut].count(b"\n")
    steps = [r.step for r in run.records]
    # Every complete line written survives, in order; garbage never becomes a record out of order.
    assert steps[:complete_lines] == list(range(complete_lines))
    assert len(steps) <= complete_lines + 1
