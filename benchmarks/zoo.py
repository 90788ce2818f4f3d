"""The zoo through gradscope: everyday Keras models (healthy and sick twins), findings and cost.

Every model of :mod:`gradscope.zoo` (13 healthy architectures on learnable synthetic data, 6 sick
twins) goes through gradscope the ways a user would:

* ``callback``: a fit with ``GradScope(freq=1)`` (every step recorded, the tests' setting) and one
  with ``GradScope()`` defaults; their findings at warning or above, and whether the model
  learned (held-out error before/after, computed in NumPy, criterion fixed in gradscope/zoo);
* ``audit`` / ``audit --data``: the untrained model saved as ``.keras``, audited in-process like
  ``gradscope audit FILE [--data D.npz]`` (static rules + the default probe), with its status;
* fit overhead: wall time of the ``GradScope()`` fit over a plain fit of the same model, same
  process, after a warm-up fit; medians of alternating rounds (each fit builds a fresh model, so
  both include Keras's tracing, and the GradScope one its retrace and end-of-fit diagnosis).

A finding counts when its severity is warning or error (what makes ``gradscope audit`` exit 1).
For a healthy model every such finding is a false alarm; for a sick twin the expected kinds are
set by construction in gradscope/zoo/__init__.py.

Run ``python benchmarks/zoo.py`` (about 10 minutes on 2 cores), ``--quick`` for 1 healthy
model and 1 twin, one epoch a fit, without the warm-up fit (a sanity check: its ratios and
verdicts are not a result),
``--out reports/zoo.md`` to also write the markdown to a file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchutil import LoadMeter, fmt_ratio, header, markdown_table, publish

from gradscope.findings import Severity
from gradscope.zoo import HEALTHY, SICK, ZOO, ZooModel, fit_zoo

QUICK = ("cnn_dropout", "negative_bias_mlp")
#: Audit modes, in table order.
AUDITS = ("audit", "audit --data")


@dataclass
class Row:
    """One zoo model through every mode."""

    name: str
    params: int = 0
    learned: bool = False
    errors: str = ""
    found: dict[str, str] = field(default_factory=dict)  # mode -> "kind (severity), ..."
    kinds: dict[str, frozenset[str]] = field(default_factory=dict)  # mode -> kinds >= warning
    notes: dict[str, str] = field(default_factory=dict)
    plain: list[float] = field(default_factory=list)
    scoped: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _serious(findings) -> list:
    return [f for f in findings if f.severity >= Severity.WARNING]


def _show(findings) -> str:
    shown = [f"{f.kind} ({f.severity.name.lower()})" for f in _serious(findings)]
    return ", ".join(shown) or "—"


def _custom_objects() -> dict[str, object]:
    from gradscope.zoo.generative import GAN, VAE
    from gradscope.zoo.sequence import PositionEmbedding

    return {c.__name__: c for c in (GAN, VAE, PositionEmbedding)}


def run_callbacks(
    entry: ZooModel,
    row: Row,
    root: Path,
    rounds: int,
    warmup: bool = True,
    epochs: int | None = None,
) -> None:
    if warmup:  # the first fit of a model pays one-time costs
        fit_zoo(entry, None, epochs=epochs)
    for i in range(rounds):
        # Alternating order, so a burst of load on the shared machine hits both kinds of fit.
        order = ("plain", "scoped") if i % 2 == 0 else ("scoped", "plain")
        for kind in order:
            if kind == "plain":
                row.plain.append(fit_zoo(entry, None, epochs=epochs).seconds)
            else:
                done = fit_zoo(entry, root / f"{entry.name}-default-{i}", epochs=epochs)
                row.scoped.append(done.seconds)
                row.found["callback (defaults)"] = _show(done.findings)
                row.kinds["callback (defaults)"] = frozenset(
                    f.kind for f in _serious(done.findings)
                )
    start = time.perf_counter()
    done = fit_zoo(entry, root / f"{entry.name}-freq1", epochs=epochs, freq=1)
    row.seconds["callback"] = time.perf_counter() - start
    row.params = done.model.count_params()
    row.learned = done.learned(entry)
    row.errors = f"{done.error_before:.3f} → {done.error_after:.3f}"
    row.found["callback (freq=1)"] = _show(done.findings)
    row.kinds["callback (freq=1)"] = frozenset(f.kind for f in _serious(done.findings))


def run_audits(entry: ZooModel, row: Row, root: Path) -> None:
    import keras

    from gradscope.audit import audit

    keras.utils.set_random_seed(0)
    path = root / f"{entry.name}.keras"
    entry.build().save(path)
    for mode in AUDITS:
        data = entry.train_data() if mode.endswith("--data") else None
        start = time.perf_counter()
        try:
            result = audit(path, data=data, custom_objects=_custom_objects())
        except Exception as err:  # a crash is a result to report, not a reason to stop
            row.found[mode] = "—"
            row.kinds[mode] = frozenset()
            row.notes[mode] = f"{type(err).__name__}: {str(err)[:90]}"
        else:
            row.found[mode] = _show(result.findings)
            row.kinds[mode] = frozenset(f.kind for f in _serious(result.findings))
            if result.status != "examined":
                row.notes[mode] = f"status {result.status}"
        row.seconds[mode] = time.perf_counter() - start


MODES = ("callback (freq=1)", "callback (defaults)", *AUDITS)


def _verdict(entry: ZooModel, kinds: frozenset[str], note: str = "") -> str:
    if note:
        # Crashed, or the probe did not run: nothing was shown clean or caught.
        return "not examined"
    if not entry.sick:
        return "clean" if not kinds else "FALSE ALARM"
    if not entry.expected & kinds:
        return "missed"
    extra = kinds - entry.allowed()
    return "caught" + (f", extra {', '.join(sorted(extra))}" if extra else "")


def tables(rows: list[Row]) -> list[str]:
    summary = []
    for name in ("healthy", "sick"):
        mine = [r for r in rows if ZOO[r.name].sick == (name == "sick")]
        if not mine:
            continue
        cells = []
        for mode in MODES:
            good = sum(
                _verdict(
                    ZOO[r.name], r.kinds.get(mode, frozenset()), r.notes.get(mode, "")
                ).startswith(("clean", "caught"))
                for r in mine
            )
            cells.append(f"{good}/{len(mine)}")
        summary.append([f"{name} ({'clean' if name == 'healthy' else 'caught'})", *cells])
    overhead = [statistics.median(r.scoped) / statistics.median(r.plain) for r in rows if r.plain]
    out = [
        "## Summary",
        "",
        markdown_table(["models", *MODES], summary),
        "",
        f"- learned (held-out criterion): {sum(r.learned for r in rows if not ZOO[r.name].sick)}/"
        f"{sum(not ZOO[r.name].sick for r in rows)} healthy models",
        f"- fit overhead of `GradScope()` over a plain fit, median over models: "
        f"{statistics.median(overhead):.2f}x (range {min(overhead):.2f}x–{max(overhead):.2f}x)",
        "",
        "## Per model",
        "",
    ]
    headers = ["model", "architecture", "params", "learned (error before → after)"]
    headers += [f"{m} ≥ warning" for m in MODES] + ["fit s (plain)", "fit ratio", "notes"]
    body = []
    for r in rows:
        entry = ZOO[r.name]
        label = r.name + (f" (twin of {entry.twin_of})" if entry.sick else "")
        cells = [
            label,
            entry.architecture,
            r.params,
            f"{'yes' if r.learned else 'no'} ({r.errors})",
        ]
        for mode in MODES:
            cells.append(
                f"{r.found.get(mode, '—')}: "
                f"{_verdict(entry, r.kinds.get(mode, frozenset()), r.notes.get(mode, ''))}"
            )
        plain = statistics.median(r.plain)
        cells += [f"{plain:.2f}", fmt_ratio(statistics.median(r.scoped), plain)]
        cells.append("; ".join(f"{m}: {n}" for m, n in r.notes.items()))
        body.append(cells)
    out.append(markdown_table(headers, body))
    expected = [
        [n, ", ".join(sorted(ZOO[n].expected)), ", ".join(sorted(ZOO[n].expected_static)) or "—"]
        for n in (r.name for r in rows)
        if ZOO[n].sick
    ]
    if expected:
        out += ["", "## Sick twins: expected kinds (by construction)", ""]
        out.append(
            "Static kinds are priors: when the probe or the run confirms them they are the "
            "cause attached to the run finding, so only the run kinds are required."
        )
        out += ["", markdown_table(["twin", "run kinds", "static kinds (priors)"], expected)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 models, 1 epoch a fit, 1 timing round, no warm-up fit",
    )
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--date", default=None, help="date printed in the header")
    args = parser.parse_args(argv)

    names = QUICK if args.quick else (*HEALTHY, *SICK)
    rounds = 1 if args.quick else 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="gradscope-zoo-") as tmp, LoadMeter() as meter:
        root = Path(tmp)
        for name in names:
            row = Row(name)
            epochs = 1 if args.quick else None
            run_callbacks(ZOO[name], row, root, rounds, warmup=not args.quick, epochs=epochs)
            run_audits(ZOO[name], row, root)
            rows.append(row)
            print(f"done {name}", file=sys.stderr, flush=True)
    assert meter.window is not None
    date = args.date or dt.date.today().isoformat()
    text = "\n".join(
        [
            header("The zoo: everyday Keras models, their findings and fit overhead", argv),
            f"date: {date}",
            f"load during the run: {meter.window.describe()}",
            "",
            *tables(rows),
            "",
        ]
    )
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
