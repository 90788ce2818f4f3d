"""Host memory (RSS) and disk use of GradScope over a long fit, against a plain fit.

Issue 3: the callback's host memory must not grow with steps (peak RSS after 20k steps within
50 MB of after 1k steps), and with ``max_records`` the on-disk log is bounded.

Each variant trains a small MLP on digits (an endlessly repeated ``tf.data`` pipeline, epochs of
``--epoch-steps`` steps) for ``--steps`` optimizer steps **in its own fresh Python process**:
peak RSS (``ru_maxrss``) is a high-water mark of the whole process, so variants sharing a process
would hide each other's growth. At every epoch end the child notes the current RSS
(``/proc/self/statm``) and the peak; after ``fit`` returns it notes them again (this includes
GradScope's end-of-fit diagnosis, which loads the run from disk). The parent then measures the
run directory on disk.

Variants: ``plain`` (no callback), ``gs_default`` (``GradScope()``, freq=10), ``gs_freq1``
(``GradScope(freq=1)``: a record every step, the worst case) and ``gs_freq1_maxrec``
(``GradScope(freq=1, max_records=1000)``). Growth is measured from the first epoch end (1k
steps by default) to the last; ratios are to ``plain``'s RSS at the same point.

Run ``python benchmarks/memory.py`` (20k steps per variant, ~8 min on 2 cores) or
``python benchmarks/memory.py --quick`` (200 steps, all variants in this one process: a sanity
check of the code path, not a memory result).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import LoadMeter, fmt_ratio, header, markdown_table

BATCH_SIZE = 32
TARGET_MB = 50.0
MAX_RECORDS = 1000
QUICK_MAX_RECORDS = 50  # so that --quick also exercises the decimation of stats.jsonl
RESULT_PREFIX = "RESULT "


def variants(max_records: int = MAX_RECORDS) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Variant id -> (description, GradScope keyword arguments or None for no callback)."""
    return {
        "plain": ("model.fit, no callback", None),
        "gs_default": ("GradScope() (freq=10)", {}),
        "gs_freq1": ("GradScope(freq=1)", {"freq": 1}),
        "gs_freq1_maxrec": (
            f"GradScope(freq=1, max_records={max_records})",
            {"freq": 1, "max_records": max_records},
        ),
    }


VARIANTS = variants()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def current_rss_mb() -> float:
    """Current resident set size, MiB (NaN where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def dir_sizes_mb(path: Path) -> dict[str, float]:
    """Size per file kind in ``path`` (MiB; event files summed), plus ``"total"``."""
    sizes: dict[str, float] = {}
    if path.exists():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                key = "events.out.tfevents.*" if "tfevents" in p.name else p.name
                sizes[key] = sizes.get(key, 0.0) + p.stat().st_size / 2**20
    sizes["total"] = sum(sizes.values())
    return sizes


def count_lines(path: Path) -> int:
    """Number of lines of a text file (0 if it is missing)."""
    if not path.exists():
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)


def make_dataset(seed: int = 0) -> Any:
    """Standardized digits as an endlessly repeated, shuffled tf.data pipeline of batches."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    y = digits.target.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat()
    return ds.batch(BATCH_SIZE).prefetch(2)


def build_model(seed: int = 0) -> Any:
    """Small MLP: 64 -> 3 x Dense(64, relu) -> softmax(10); steps are cheap, so 20k fit."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(64, activation="relu") for _ in range(3)]
        + [keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def train(
    variant: str, log_dir: Path, steps: int, epoch_steps: int, max_records: int = MAX_RECORDS
) -> dict[str, Any]:
    """Fits ``steps`` steps with the variant's callbacks; returns the RSS trace.

    Returns:
        ``{"variant", "trace": [[step, current MiB, peak MiB], ...], "after_fit": [current,
        peak], "seconds"}``.
    """
    import keras

    from gradscope import GradScope

    trace: list[list[float]] = []

    class Meter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            trace.append([(epoch + 1) * epoch_steps, current_rss_mb(), peak_rss_mb()])

    kwargs = variants(max_records)[variant][1]
    callbacks: list[Any] = [] if kwargs is None else [GradScope(log_dir, verbose=0, **kwargs)]
    model = build_model()
    start = time.perf_counter()
    model.fit(
        make_dataset(),
        epochs=steps // epoch_steps,
        steps_per_epoch=epoch_steps,
        shuffle=False,  # the dataset shuffles itself
        verbose=0,
        callbacks=[*callbacks, Meter()],
    )
    return {
        "variant": variant,
        "trace": trace,
        "after_fit": [current_rss_mb(), peak_rss_mb()],
        "seconds": time.perf_counter() - start,
    }


def run_child(
    variant: str, log_dir: Path, steps: int, epoch_steps: int, max_records: int = MAX_RECORDS
) -> dict[str, Any]:
    """Runs :func:`train` for one variant in a fresh Python process and parses its result."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        variant,
        "--log-dir",
        str(log_dir),
        "--steps",
        str(steps),
        "--epoch-steps",
        str(epoch_steps),
        "--max-records",
        str(max_records),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def rss_table(results: dict[str, dict[str, Any]], names: dict[str, str]) -> str:
    """RSS at the first and last epoch end and after fit, growth, ratios to plain."""
    base = results.get("plain")
    rows = []
    for variant, r in results.items():
        (_, cur0, peak0), (_, cur1, peak1) = r["trace"][0], r["trace"][-1]
        after_peak = r["after_fit"][1]
        base_peak1 = base["trace"][-1][2] if base else float("nan")
        base_growth = base["trace"][-1][2] - base["trace"][0][2] if base else float("nan")
        growth = peak1 - peak0
        rows.append(
            [
                variant,
                names[variant],
                f"{cur0:.0f}",
                f"{cur1:.0f}",
                f"{peak0:.0f}",
                f"{peak1:.0f}",
                f"{growth:+.1f}",
                f"{growth - base_growth:+.1f}",
                f"{after_peak:.0f}",
                fmt_ratio(peak1, base_peak1),
                f"{r['seconds']:.0f}",
            ]
        )
    some = next(iter(results.values()))["trace"]
    first, last = some[0][0], some[-1][0]
    headers = [
        "id",
        "variant",
        f"RSS @{first} [MiB]",
        f"RSS @{last} [MiB]",
        f"peak @{first} [MiB]",
        f"peak @{last} [MiB]",
        "peak growth [MiB]",
        "growth - plain's [MiB]",
        "peak after fit [MiB]",
        "peak ratio",
        "fit [s]",
    ]
    return markdown_table(headers, rows)


def disk_table(root: Path, results: dict[str, dict[str, Any]]) -> str:
    """Run-directory size per file kind for each GradScope variant."""
    from gradscope.data.rundirs import list_runs

    scoped = [v for v in results if VARIANTS[v][1] is not None]
    sizes = {v: dir_sizes_mb(root / v) for v in scoped}
    kinds = [*sorted({k for s in sizes.values() for k in s if k != "total"}), "total"]
    rows = [[kind] + [f"{sizes[v].get(kind, 0.0):.3f}" for v in scoped] for kind in kinds]
    rows.append(
        ["stats.jsonl records"]
        # Each variant's log_dir holds the one run directory GradScope created in it.
        + [str(sum(count_lines(r / "stats.jsonl") for r in list_runs(root / v))) for v in scoped]
    )
    return markdown_table(["file", *(f"{v} [MiB]" for v in scoped)], rows)


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    """Peak growth against the 50 MB target per GradScope variant: during training, and after
    ``fit`` returned (the end-of-fit diagnosis loads the whole ``stats.jsonl``)."""
    lines = []
    for variant, r in results.items():
        if VARIANTS[variant][1] is None:
            continue
        (s0, _, peak0), (s1, _, peak1) = r["trace"][0], r["trace"][-1]
        after = r["after_fit"][1]
        for label, value in ((f"after {s1} steps", peak1), ("after fit (with diagnosis)", after)):
            growth = value - peak0
            ok = "OK" if growth * 2**20 / 1e6 <= TARGET_MB else "ABOVE TARGET"
            lines.append(
                f"{variant}: peak RSS {peak0:.0f} MiB after {s0} steps, {value:.0f} MiB {label}: "
                f"{growth:+.1f} MiB (target <= {TARGET_MB:.0f} MB: {ok})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Runs every variant and prints the RSS and disk tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="optimizer steps per variant")
    parser.add_argument("--epoch-steps", type=int, default=1_000, help="steps per epoch")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated subset of variant ids"
    )
    parser.add_argument(
        "--max-records", type=int, default=None, help="for gs_freq1_maxrec (default 1000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="200 steps, all variants in this process"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # inside a fresh process: train one variant, print the trace as JSON
        result = train(
            args.child, Path(args.log_dir), args.steps, args.epoch_steps, args.max_records
        )
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    steps, epoch_steps = (200, 50) if args.quick else (args.steps, args.epoch_steps)
    max_records = args.max_records or (QUICK_MAX_RECORDS if args.quick else MAX_RECORDS)
    table = variants(max_records)
    if steps % epoch_steps or steps < 2 * epoch_steps:
        parser.error("--steps must be a multiple of --epoch-steps and at least two epochs")
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in chosen:
        if v not in table:
            parser.error(f"unknown variant {v!r}; choose from {list(VARIANTS)}")

    print(header("GradScope host memory and disk use", argv))
    mode = "in this process (quick)" if args.quick else "one fresh process per variant"
    print(f"settings: {steps} steps, epochs of {epoch_steps}, batch {BATCH_SIZE}; {mode}")
    root = Path(tempfile.mkdtemp(prefix="gs-memory-"))
    runner: Callable[..., dict[str, Any]] = train if args.quick else run_child
    results: dict[str, dict[str, Any]] = {}
    try:
        with LoadMeter() as meter:
            for v in chosen:
                with LoadMeter() as one:
                    results[v] = runner(v, root / v, steps, epoch_steps, max_records)
                assert one.window is not None
                print(f"  {v}: {one.window.wall:.0f} s; {one.window.describe()}", file=sys.stderr)
        assert meter.window is not None
        print(f"load during the run ({meter.window.wall:.0f} s): {meter.window.describe()}\n")
        print("## RSS (peak = ru_maxrss high-water mark; RSS = current, /proc/self/statm)\n")
        print(rss_table(results, {k: d for k, (d, _) in table.items()}))
        print()
        for line in verdicts(results):
            print(line)
        print("\n## run directory on disk\n")
        print(disk_table(root, results))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\nload after: loadavg {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
