"""Precision and recall of gradscope's diagnosis on the chapter's scenario suite (issue 4).

Every scenario of :mod:`gradscope.scenarios` (4 sick, 6 healthy networks on scikit-learn digits)
goes through gradscope the ways a user would:

* ``callback``: a short fit (2 epochs, batch 64, ``GradScope(freq=1)``); the run detectors'
  findings are compared with the scenario's expected run kinds (static rules do not run there);
* ``audit .h5`` / ``audit .keras``: the untrained, compiled model saved in that format, then
  ``gradscope audit FILE --json`` (static rules + the default probe on synthetic data); compared
  with the expected run and static kinds;
* ``audit .keras --data``: the same with ``--data digits.npz`` (the probe trains on real data).

A finding counts when its severity is warning or error (what makes ``gradscope audit`` exit 1),
with the static rules the probe confirmed and attached to it as causes.
Prints markdown: per-scenario rows (expected, found, TP/FP/FN), then precision and recall per
detector and overall for each mode. The expected kinds are set by construction in
gradscope/scenarios.py, not from gradscope's output. The model files are checked to be
byte-identical after each audit.

Run ``python benchmarks/scenarios.py`` (about 5 minutes on 2 cores), ``--quick`` for 2 sick and
1 healthy scenario, ``--out reports/scenarios.md`` to also write the markdown to a file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import header, markdown_table, publish

from gradscope.detect.evidence import reported_kinds
from gradscope.findings import Finding
from gradscope.scenarios import SCENARIOS, Scenario, fit_scenario

#: The modes, in table order.
MODES = ("callback", "audit .h5", "audit .keras", "audit .keras --data")
QUICK = ("deep_sigmoid", "negative_bias_relu", "he_relu")


@dataclass(frozen=True)
class Outcome:
    """One scenario through one mode.

    Attributes:
        scenario: the scenario id.
        mode: one of :data:`MODES`.
        expected: kinds that should be reported (warning or above).
        found: kinds reported at warning or above.
        seconds: wall time of the fit or the audit.
        note: anything odd (exit code, changed file).
    """

    scenario: str
    mode: str
    expected: frozenset[str]
    found: frozenset[str]
    seconds: float
    note: str = ""

    @property
    def tp(self) -> set[str]:
        return set(self.expected & self.found)

    @property
    def fp(self) -> set[str]:
        return set(self.found - self.expected)

    @property
    def fn(self) -> set[str]:
        return set(self.expected - self.found)


def run_callback(scenario: Scenario, x: np.ndarray, y: np.ndarray, root: Path) -> Outcome:
    start = time.perf_counter()
    done = fit_scenario(scenario, x, y, root / f"{scenario.name}-run")
    found = frozenset(reported_kinds(done.findings))
    return Outcome(
        scenario.name, "callback", scenario.expected_run, found, time.perf_counter() - start
    )


def run_audit(scenario: Scenario, path: Path, mode: str, data: Path | None) -> Outcome:
    from typer.testing import CliRunner

    from gradscope.cli import app

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    args = ["audit", str(path), "--json"] + (["--data", str(data)] if data else [])
    start = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - start
    note = ""
    found: frozenset[str] = frozenset()
    if result.exit_code in (0, 1):
        doc = json.loads(result.stdout)
        # A static rule the probe confirmed is reported as the cause of the dynamic finding
        # (gradscope.detect.evidence): it counts where it is.
        found = frozenset(reported_kinds([Finding.from_json(f) for f in doc["findings"]]))
    else:
        note = f"exit {result.exit_code}: {result.stderr.strip()[:120]}"
    if (result.exit_code == 1) != bool(found) and not note:
        note = f"exit {result.exit_code} disagrees with the findings"
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        note += " MODEL FILE CHANGED"
    expected = scenario.expected_run | scenario.expected_static
    return Outcome(scenario.name, mode, expected, found, seconds, note.strip())


def save_models(scenario: Scenario, root: Path) -> tuple[Path, Path]:
    import keras

    paths = root / f"{scenario.name}.h5", root / f"{scenario.name}.keras"
    for path in paths:
        # A fresh build per file, with the seed the callback mode uses (same weights): Keras
        # drops the optimizer from a .keras compile_config once the model was saved as .h5.
        keras.utils.set_random_seed(0)
        scenario.build().save(path)
    return paths


def _kinds(kinds: set[str] | frozenset[str]) -> str:
    return ", ".join(sorted(kinds)) or "—"


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "n/a"


def scenario_table(outcomes: list[Outcome]) -> str:
    rows = [
        [
            o.scenario,
            o.mode,
            _kinds(o.expected),
            _kinds(o.found),
            len(o.tp),
            len(o.fp),
            len(o.fn),
            f"{o.seconds:.1f}",
            o.note,
        ]
        for o in outcomes
    ]
    headers = ["scenario", "mode", "expected", "found (≥ warning)", "TP", "FP", "FN", "s", "note"]
    return markdown_table(headers, rows)


def detector_table(outcomes: list[Outcome]) -> str:
    kinds = sorted({k for o in outcomes for k in o.expected | o.found})
    rows = []
    for mode in MODES:
        mine = [o for o in outcomes if o.mode == mode]
        if not mine:
            continue
        tp, fp, fn = Counter(), Counter(), Counter()
        for o in mine:
            tp.update(o.tp)
            fp.update(o.fp)
            fn.update(o.fn)
        for kind in kinds:
            if tp[kind] + fp[kind] + fn[kind] == 0:
                continue
            rows.append(
                [
                    kind,
                    mode,
                    tp[kind],
                    fp[kind],
                    fn[kind],
                    _ratio(tp[kind], tp[kind] + fp[kind]),
                    _ratio(tp[kind], tp[kind] + fn[kind]),
                ]
            )
        t, f, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
        rows.append(["**overall**", mode, t, f, n, _ratio(t, t + f), _ratio(t, t + n)])
    headers = ["detector", "mode", "TP", "FP", "FN", "precision", "recall"]
    return markdown_table(headers, rows)


def summary_lines(outcomes: list[Outcome], scenarios: list[Scenario]) -> list[str]:
    lines = []
    sick = {s.name for s in scenarios if s.sick}
    for mode in MODES:
        mine = [o for o in outcomes if o.mode == mode]
        if not mine:
            continue
        # In callback mode a scenario is sick only if run kinds are expected.
        sick_here = [o for o in mine if o.expected]
        healthy_here = [o for o in mine if not o.expected]
        flagged = sum(bool(o.found & o.expected) for o in sick_here)
        clean = sum(not o.found for o in healthy_here)
        lines.append(
            f"- {mode}: sick scenarios with at least one expected finding {flagged}/"
            f"{len(sick_here)}; healthy scenarios with no finding ≥ warning {clean}/"
            f"{len(healthy_here)}"
        )
    lines.append(f"- scenarios: {len(sick)} sick, {len(scenarios) - len(sick)} healthy")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 scenarios only")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--date", default=None, help="date printed in the header")
    args = parser.parse_args(argv)

    from gradscope.demo import load_digits_data

    names = QUICK if args.quick else tuple(SCENARIOS)
    scenarios = [SCENARIOS[n] for n in names]
    x, y = load_digits_data()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="gradscope-scenarios-") as tmp:
        root = Path(tmp)
        for s in scenarios:
            data = root / f"{s.name}-digits.npz"
            np.savez(data, x=x, y=s.targets(y))
            h5, keras_file = save_models(s, root)
            outcomes.append(run_callback(s, x, y, root))
            outcomes.append(run_audit(s, h5, "audit .h5", None))
            outcomes.append(run_audit(s, keras_file, "audit .keras", None))
            outcomes.append(run_audit(s, keras_file, "audit .keras --data", data))
            print(f"done {s.name}", file=sys.stderr, flush=True)
    outcomes.sort(key=lambda o: (names.index(o.scenario), MODES.index(o.mode)))
    date = args.date or dt.date.today().isoformat()
    text = "\n".join(
        [
            header("Scenario suite: precision and recall of the diagnosis", argv),
            f"date: {date}",
            "",
            *summary_lines(outcomes, scenarios),
            "",
            "## Per scenario",
            "",
            scenario_table(outcomes),
            "",
            "## Per detector",
            "",
            detector_table(outcomes),
            "",
        ]
    )
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
