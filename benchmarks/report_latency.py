"""Latency of the HTML report for a large run: 50 layers × 1,000 records (issue 6 target: < 2 s).

Builds a synthetic run with RunWriter (ReLU layers whose gradients shrink with depth, so the
report has a vanishing-gradient finding and every section has data), then times
``render_report`` several times and prints the median and the best.

Run ``python benchmarks/report_latency.py`` (``--layers``/``--records``/``--repeats`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gradscope.data import EpochRecord, LayerInfo, RunMeta, RunWriter, StepRecord
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
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
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            render_report(run_dir, out, findings=findings)
            times.append(time.perf_counter() - start)
        size = out.stat().st_size
    print(
        f"report for {args.layers} layers x {args.records} records: "
        f"median {statistics.median(times):.2f} s, best {min(times):.2f} s "
        f"over {args.repeats} runs; {size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
