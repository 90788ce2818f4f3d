"""Latency of ``gradscope audit`` versus bare ``load_model`` + one forward/backward pass.

Issue 16's targets: audit time (without ``--steps``, i.e. the default light probe) at most 2x the
time of ``keras.models.load_model`` plus one forward/backward pass on the same file in one
process, and at most 1.3x end to end in fresh processes (issue 4 asked 1.5x in-process).

Model files (written once into a temporary directory, compiled, in both formats):

* ``sigmoid_mlp``: the chapter's sick network, 10 x Dense(256, sigmoid) with RandomNormal(1.0)
  init, SGD(0.01), 32 inputs (the audit tests' model);
* ``cnn``: a small CNN on 28x28x1 images (2 conv + pool + 2 dense, ReLU/He, Adam).

Per file, in one process, alternating and rotated repeats after one warm-up of each:

* ``bare``: ``keras.models.load_model(path, compile=False)`` + one eager forward/backward
  (``GradientTape``) on 32 standard-normal examples -- issue 4's baseline;
* ``traced``: the same load + ``compile`` + ``train_on_batch`` on the same batch: a
  baseline that, like the audit, traces a compiled train step (context, not the target);
* ``traced_own``: the same with a fresh optimizer of the file's own class and settings (Adam for
  the CNN, as the audit's probe trains it);
* ``audit``: ``gradscope.audit.audit(path, log_dir=tmp)`` with its defaults (static rules + the
  light probe: 8 steps of Keras's own train step, traced once, reduced on the host);
* ``audit_recorded``: ``audit(path, steps=8)``: the same 8 steps by the recorded probe (a fit of
  a copy under ``GradScope(freq=1)``, which traces an instrumented train step), the default
  before issue 16;
* ``audit_static``: ``audit(path, steps=0)``, static rules only (safe load, no probe).

Ratios are medians of each variant over the median of ``bare``, in wall time and in CPU time of
this process (all threads; the fairer figure when other processes compete for the cores). A
phase table then shows where the audit's time goes: the audit's own functions (and, for the
recorded probe, GradScope's callback hooks) are wrapped with timers for one extra (un-counted)
run of each probe per file. With ``--cli`` the same
comparison is made end to end in fresh processes (``python -m gradscope.cli audit FILE`` vs a
``python -c`` that does the bare baseline): what a user waits for, including importing
TensorFlow.

The models and runners are in ``audit_variants.py``, the phase timers in ``audit_phases.py``.

Run ``python benchmarks/audit_latency.py`` (4 files, 5 rounds, ``--cli``) or
``python benchmarks/audit_latency.py --quick`` (cnn.h5, 1 round, no warm-up: a sanity check).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from audit_phases import phase_order, profile_audit
from audit_variants import PROBE_STEPS, RUNNERS, write_models
from benchutil import LoadMeter, fmt_ratio, header, markdown_table, wait_for_quiet

TARGET = 2.0  # in-process, issue 16
PROCESS_TARGET = 1.3  # fresh processes, issue 16
FILES_FULL = ("sigmoid_mlp.keras", "sigmoid_mlp.h5", "cnn.keras", "cnn.h5")
FILES_QUICK = ("cnn.h5",)
VARIANTS = ("bare", "traced", "traced_own", "audit", "audit_recorded", "audit_static")


#: (wall seconds, CPU seconds) of one call.
Sample = tuple[float, float]


def bench_files(
    paths: dict[str, Path], rounds: int, warmup: bool, max_wait: float
) -> dict[str, dict[str, list[Sample]]]:
    """Alternating, rotated repeats of every variant on every file; (wall, CPU) per call."""
    results: dict[str, dict[str, list[Sample]]] = {f: {v: [] for v in VARIANTS} for f in paths}
    if warmup:  # imports, h5py/zip readers, oneDNN kernels
        for path in paths.values():
            for v in VARIANTS:
                RUNNERS[v](path)
    for r in range(rounds):
        if max_wait > 0:
            wait_for_quiet(max_wait)
        with LoadMeter() as meter:
            for name, path in paths.items():
                shift = r % len(VARIANTS)
                for v in VARIANTS[shift:] + VARIANTS[:shift]:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    RUNNERS[v](path)
                    results[name][v].append(
                        (time.perf_counter() - start, time.process_time() - start_cpu)
                    )
        assert meter.window is not None
        print(
            f"  round {r + 1}/{rounds}: {meter.window.wall:.0f} s; {meter.window.describe()}",
            file=sys.stderr,
            flush=True,
        )
    return results


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_times(path: Path, repeats: int) -> dict[str, list[Sample]]:
    """End-to-end (wall, CPU) of fresh processes: ``gradscope audit`` vs the bare baseline."""
    here = Path(__file__).resolve().parent
    bare_cmd = [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(here)!r}); import audit_variants as a, pathlib; "
        f"a.bare(pathlib.Path({str(path)!r}))",
    ]
    audit_cmd = [sys.executable, "-m", "gradscope.cli", "audit", str(path), "--json"]
    out: dict[str, list[Sample]] = {"bare process": [], "gradscope audit process": []}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _ in range(repeats):
        for key, cmd in (("bare process", bare_cmd), ("gradscope audit process", audit_cmd)):
            start, start_cpu = time.perf_counter(), _children_cpu()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            out[key].append((time.perf_counter() - start, _children_cpu() - start_cpu))
            if proc.returncode not in (0, 1):  # audit exits 1 when it has findings
                raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return out


SUMMARY_HEADERS = ("median [s]", "min [s]", "ratio", "CPU median [s]", "CPU ratio")


def _median(samples: list[Sample], k: int) -> float:
    return statistics.median(s[k] for s in samples)


def summary_rows(name: str, by_key: dict[str, list[Sample]], base: str) -> list[list[str]]:
    """Rows of ``<name> <key>``: wall median, wall min, ratio, CPU median, CPU ratio."""
    rows = []
    for key, samples in by_key.items():
        wall, cpu = _median(samples, 0), _median(samples, 1)
        rows.append(
            [
                f"{name} {key}",
                f"{wall:.3f}",
                f"{min(s[0] for s in samples):.3f}",
                fmt_ratio(wall, _median(by_key[base], 0)),
                f"{cpu:.3f}",
                fmt_ratio(cpu, _median(by_key[base], 1)),
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Writes the model files, runs the comparison and prints the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cnn.h5, 1 round, no warm-up")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 5)")
    parser.add_argument(
        "--cli", action=argparse.BooleanOptionalAction, default=None, help="process-level table"
    )
    parser.add_argument("--max-wait", type=float, default=None, help="wait for a quiet machine")
    args = parser.parse_args(argv)
    names = FILES_QUICK if args.quick else FILES_FULL
    rounds = args.rounds or (1 if args.quick else 5)
    cli = args.cli if args.cli is not None else not args.quick
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else 20.0)

    print(header("gradscope audit latency", argv), flush=True)
    root = Path(tempfile.mkdtemp(prefix="gs-audit-latency-"))
    try:
        with LoadMeter() as meter:
            paths = write_models(root, names)
            results = bench_files(paths, rounds, warmup=not args.quick, max_wait=max_wait)
            phases = {}
            for name, path in paths.items():
                phases[name] = profile_audit(path)
                phases[f"{name} recorded"] = profile_audit(path, PROBE_STEPS)
        assert meter.window is not None
        print(f"settings: {rounds} rounds, warm-up {'off' if args.quick else 'on'}")
        print(
            f"load during the in-process runs ({meter.window.wall:.0f} s): "
            f"{meter.window.describe()}\n"
        )
        print("## in-process: median seconds per call, ratios to bare\n")
        rows = [row for name, by in results.items() for row in summary_rows(name, by, "bare")]
        print(markdown_table(["file variant", *SUMMARY_HEADERS], rows))
        print()
        for name, by_variant in results.items():
            for label, k in (("wall", 0), ("CPU", 1)):
                ratio = _median(by_variant["audit"], k) / _median(by_variant["bare"], k)
                verdict = "met" if ratio <= TARGET else "MISSED"
                print(
                    f"{name}: audit / bare = {ratio:.2f}x {label} (target <= {TARGET}x: {verdict})"
                )
            for base in ("traced", "traced_own"):
                cpu = _median(by_variant["audit"], 1) / _median(by_variant[base], 1)
                print(f"{name}: audit / {base} = {cpu:.2f}x CPU")
        print("\n## where the audit's time goes (one extra run per file, phase timers)\n")
        phase_names = sorted({p for _, t in phases.values() for p in t}, key=phase_order)
        rows = [[p, *(f"{phases[n][1].get(p, 0.0):.3f}" for n in phases)] for p in phase_names]
        rows.append(["audit (total)", *(f"{phases[n][0]:.3f}" for n in phases)])
        print(markdown_table(["phase", *(f"{n} [s]" for n in phases)], rows))
        if cli:
            print("\n## end to end: fresh processes (includes importing TensorFlow)\n")
            with LoadMeter() as cli_meter:
                cli_results = {
                    name: cli_times(path, max(3, rounds // 2)) for name, path in paths.items()
                }
            assert cli_meter.window is not None
            print(
                f"load during the process runs ({cli_meter.window.wall:.0f} s): "
                f"{cli_meter.window.describe()}\n"
            )
            rows = [
                row
                for name, by in cli_results.items()
                for row in summary_rows(name, by, "bare process")
            ]
            print(markdown_table(["file command", *SUMMARY_HEADERS], rows))
            print()
            for name, by in cli_results.items():
                for label, k in (("wall", 0), ("CPU", 1)):
                    ratio = _median(by["gradscope audit process"], k) / _median(
                        by["bare process"], k
                    )
                    verdict = "met" if ratio <= PROCESS_TARGET else "MISSED"
                    print(
                        f"{name}: audit process / bare process = {ratio:.2f}x {label} "
                        f"(target <= {PROCESS_TARGET}x: {verdict})"
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload after: loadavg {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
