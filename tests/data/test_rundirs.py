"""One run directory per recording session: naming, collisions, listing, reading a parent."""

from __future__ import annotations

import datetime as dt
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from gradscope import list_runs, load_run
from gradscope.data import LayerInfo, RunFormatError, RunMeta, RunWriter, StepRecord, new_run_dir
from gradscope.data.rundirs import is_run_name, resolve_run

NOON = dt.datetime(2026, 11, 26, 9, 40, 12, tzinfo=dt.timezone.utc)
META = RunMeta(layers=(LayerInfo("dense", "Dense"),), created="2026-11-26T09:40:12+00:00")


def _run(path: Path, created: str, steps: range) -> Path:
    writer = RunWriter(path, replace(META, created=created))
    for step in steps:
        writer.append(StepRecord(step=step, epoch=0, loss=1.0, lr=0.1, layers={}))
    writer.close()
    return path


def test_run_name_is_the_utc_time_and_collisions_get_a_suffix(tmp_path) -> None:
    names = [new_run_dir(tmp_path / "runs", now=NOON).name for _ in range(3)]
    assert names == ["20261126-094012", "20261126-094012-1", "20261126-094012-2"]
    assert all(is_run_name(n) for n in names) and not is_run_name("sick")
    # The UTC time, whatever the local zone of the clock passed in.
    later = dt.datetime(2026, 11, 26, 10, 40, 13, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert new_run_dir(tmp_path / "runs", now=later).name == "20261126-094013"


def test_concurrent_sessions_never_share_a_directory(tmp_path) -> None:
    # 16 threads racing for the same second: mkdir(exist_ok=False) gives each its own.
    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: new_run_dir(tmp_path, now=NOON), range(16)))
    assert len(set(dirs)) == 16
    assert all(d.is_dir() and not any(d.iterdir()) for d in dirs)


def test_list_runs_in_creation_order_and_load_run_reads_the_newest(tmp_path) -> None:
    a = _run(tmp_path / "20261126-094012", "2026-11-26T09:40:12+00:00", range(0, 3))
    # Same second: the suffix orders them, numerically ("-2" before "-10").
    c = _run(tmp_path / "20261126-094012-10", "2026-11-26T09:40:12+00:00", range(10, 12))
    b = _run(tmp_path / "20261126-094012-2", "2026-11-26T09:40:12+00:00", range(5, 7))
    (tmp_path / "train").mkdir()  # Keras's TensorBoard folder: not a run
    (tmp_path / ".hidden").mkdir()
    assert list_runs(tmp_path) == [a, b, c]
    newest = load_run(tmp_path)
    assert newest.path == c and [r.step for r in newest.records] == [10, 11]
    assert load_run(a).path == a  # a run directory is read as itself
    assert resolve_run(tmp_path) == (c, [a, b])
    assert list_runs(tmp_path / "missing") == []


def test_created_stamp_outranks_the_name(tmp_path) -> None:
    # A run renamed by hand ("best") is still ordered by when it was recorded.
    old = _run(tmp_path / "best", "2026-11-25T08:00:00+00:00", range(2))
    new = _run(tmp_path / "20261126-094012", "2026-11-26T09:40:12+00:00", range(2))
    assert list_runs(tmp_path) == [old, new]
    assert load_run(tmp_path).path == new


def test_an_old_run_dir_holding_newer_runs_competes_by_age(tmp_path) -> None:
    # A log_dir written by an older gradscope (meta.json in it) that a new version re-ran into.
    _run(tmp_path, "2026-11-20T00:00:00+00:00", range(2))
    newer = _run(tmp_path / "20261126-094012", "2026-11-26T09:40:12+00:00", range(4))
    assert load_run(tmp_path).path == newer
    assert resolve_run(tmp_path) == (newer, [tmp_path])


def test_parent_without_runs_fails_with_one_line_naming_it(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFormatError) as err:
        load_run(tmp_path / "empty")
    message = str(err.value)
    assert "\n" not in message and "has no meta.json and no run directories" in message
    assert f"Received: path='{tmp_path / 'empty'}'" in message
    with pytest.raises(RunFormatError, match="No run directory.*Received: path="):
        load_run(tmp_path / "absent")


def test_append_reports_the_kept_stride_and_its_total_is_logarithmic(tmp_path) -> None:
    # TensorBoard writes what append() kept when it was offered: bounded by max_records plus
    # max_records/2 per halving of the store, never one entry per record.
    max_records, n = 16, 20_000
    writer = RunWriter(tmp_path, META, max_records=max_records)
    kept_at_offer = [s for s in range(n) if writer.append(StepRecord(s, 0, 1.0, 0.1, {}))]
    writer.close()
    halvings = math.ceil(math.log2(n / max_records))
    assert len(kept_at_offer) <= max_records + 1 + halvings * (max_records // 2 + 1)
    assert len(kept_at_offer) < n / 50
    final = [json.loads(line)["step"] for line in (tmp_path / "stats.jsonl").open()]
    assert set(final) <= set(kept_at_offer)  # whatever the store keeps was written then
    assert kept_at_offer == sorted(kept_at_offer) and kept_at_offer[0] == 0
