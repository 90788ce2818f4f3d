"""Latency of the HTML report for a large run: 50 layers × 1,000 records (issue 6 target: < 2 s).

Builds a synthetic run with RunWriter (ReLU layers whose gradients shrink with depth, so the
report has a vanishing-gradient finding and every section has data), then, after one warm-up,
times alternately ``load_run`` (the baseline: reading the data the report shows) and
``render_report`` (load, view model, figures, template, atomic write), and prints the medians,
the best times, the CPU times (fairer on a busy machine) and the ratios to the baseline, plus
the verdicts against the absolute 2 s target.

Run ``python benchmarks/report_latency.py`` (``--layers``/``--records``/``--repeats`` to change)
or ``python benchmarks/report_latency.py --quick`` (5 layers × 50 records, 1 repeat).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the report's imports pull in TensorFlow

import numpy as np
from benchutil import LoadMeter, fmt_ratio, header, markdown_table

from gradscope.data import EpochRecord, LayerInfo, RunMeta, RunWriter, StepRecord, load_run
from gradscope.findings import Finding, Severity
from gradscope.render.html import render_report


def build_run(path: Path, n_layers: int, n_records: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    names = [f"dense_{i}" for i in range(n_layers)]
    layers = tuple(
        LayerInfo(
            name=n,
            class_name="Dense",
            activation="relu",
            activation_kind="relu",
            kernel_initializer="GlorotUniform",
            units=64,
            params=64 * 65,
            variables=("kernel", "bias"),
        )
        for n in names
    )
    writer = RunWriter(path, RunMeta(layers=layers, model_name="synthetic_mlp", status="completed"))
    depth_scale = np.logspace(-6, 0, n_layers)  # vanishing towards the input
    for step in range(n_records):
        noise = rng.lognormal(0.0, 0.3, n_layers)
        stats = {
            n: {
                "grad_norm": float(depth_scale[i] * noise[i]),
                "update_ratio": float(1e-3 * depth_scale[i] * noise[i]),
                "weight_norm": 8.0,
                "nonfinite": 0.0,
                "act_mean": float(0.5 + 0.1 * noise[i]),
                "act_std": float(0.3 * noise[i]),
                "dead_frac": float(min(1.0, 0.02 * i * noise[i] / 2)),
            }
            for i, n in enumerate(names)
        }
        loss = float(2.3 * np.exp(-step / 800) + 0.05 * rng.random())
        writer.append(
            StepRecord(step=step * 10, epoch=step // 100, loss=loss, lr=1e-3, layers=stats)
        )
        if step % 100 == 99:
            writer.append_epoch(
                EpochRecord(step // 100, step * 10, {"loss": loss, "accuracy": 0.5})
            )
    writer.close()


TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5 layers x 50 records, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.records, args.repeats = 5, 50, 1
    print(header("HTML report latency", argv, with_frameworks=False), flush=True)
    with tempfile.TemporaryDirectory() as tmp, LoadMeter() as meter:
        run_dir = Path(tmp) / "run"
        build_run(run_dir, args.layers, args.records)
        names = [f"dense_{i}" for i in range(args.layers)]
        findings = [
            Finding(
                "GS101",
                "vanishing_gradients",
                Severity.ERROR,
                tuple(names[:10]),
                "Vanishing.",
                {"ratio_first_last": 1e-6},
                ("he_init", "batch_norm"),
            ),
            Finding(
                "GS103",
                "dying_relu",
                Severity.WARNING,
                tuple(names[-5:]),
                "Dying ReLU.",
                {"dead_frac": 0.6},
                ("leaky_relu_activation",),
            ),
        ]
        out = Path(tmp) / "report.html"
        render_report(run_dir, out, findings=findings)  # warm-up: imports, font cache, templates
        times: dict[str, list[float]] = {"load_run": [], "render_report": []}
        cpu: dict[str, list[float]] = {"load_run": [], "render_report": []}
        for _ in range(args.repeats):
            for name in times:
                start, start_cpu = time.perf_counter(), time.process_time()
                if name == "load_run":
                    load_run(run_dir)
                else:
                    render_report(run_dir, out, findings=findings)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        size = out.stat().st_size
    assert meter.window is not None
    print(
        f"settings: {args.layers} layers x {args.records} records, {args.repeats} repeats; "
        f"report {size / 1e6:.2f} MB\n"
        f"load during the run ({meter.window.wall:.0f} s): {meter.window.describe()}\n"
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    rows = [
        [
            name,
            f"{med[name]:.3f}",
            f"{min(times[name]):.3f}",
            fmt_ratio(med[name], med["load_run"]),
            f"{med_cpu[name]:.3f}",
            fmt_ratio(med_cpu[name], med_cpu["load_run"]),
        ]
        for name in times
    ]
    headers = ["step", "median [s]", "best [s]", "ratio", "CPU median [s]", "CPU ratio"]
    print(markdown_table(headers, rows))
    print()
    # On a busy machine the CPU time (this process's threads only) is the fairer figure.
    for label, value in (("wall", med["render_report"]), ("CPU", med_cpu["render_report"])):
        verdict = "met" if value < TARGET_S else "MISSED"
        print(f"render_report median {label} {value:.2f} s (target < {TARGET_S:.0f} s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
