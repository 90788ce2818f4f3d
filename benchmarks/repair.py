"""Does ``fix --auto`` repair broken networks? Accuracy before/after, each trained its own way.

For every sick network of the chapter's scenario suite (:mod:`gradscope.scenarios`) and of the
zoo's sick twins (when the zoo module is installed), on scikit-learn digits split into train and
test (seeded):

1. the original, compiled as its builder compiles it (optimizer, learning rate, loss), is
   trained ``--epochs`` epochs at batch size 32 on the train split and scored on the test split;
2. :func:`gradscope.fix.auto_fix` runs on it with the train split as ``--data`` (its trials
   take 256 of those examples) and the default budget;
3. the returned model (the original when nothing was kept) is trained exactly the same way,
   with the compile settings the fixed copy carries (so a lower learning rate or clipping
   chosen by the fix is used), and scored on the same test split.

Accuracy is the share of test digits classified right (the regression scenario: predictions
rounded to the nearest digit). A model is **repaired** when the fixed copy's test accuracy is at
least 0.15 higher than the original's, or reaches 0.75 from below it (the criterion of issue
17's user report); **worse** when it is more than 0.02 lower. Prints markdown: one row per
model (findings of the original's trial, candidates tried, fixes kept, accuracy before/after,
seconds), then the totals.

Run ``python benchmarks/repair.py --out reports/repair.md`` (about 15 minutes on 2 cores),
``--quick`` for two scenarios, two epochs of training and a 30 s budget.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from benchutil import header, markdown_table

#: Scenarios of the quick run: one dying-ReLU and one diverging network (the fastest sick ones).
QUICK = ("negative_bias_relu", "regression_high_lr")
#: Repaired: accuracy up by this much, or reaching REPAIRED_LEVEL from below (issue 17).
REPAIRED_GAIN = 0.15
REPAIRED_LEVEL = 0.75
#: Worse: accuracy down by more than this (test-set noise on ~600 digits is about 0.02).
WORSE_DROP = 0.02


@dataclass(frozen=True)
class Sick:
    """One broken network of the benchmark.

    Attributes:
        name: its id (``scenario:<name>`` or ``zoo:<name>``).
        build: returns a fresh compiled model.
        regression: True if it regresses the digit value (accuracy from rounded predictions).
    """

    name: str
    build: Callable[[], object]
    regression: bool = False


@dataclass(frozen=True)
class Row:
    """One model's result."""

    name: str
    findings: str
    tried: str
    kept: str
    before: float
    after: float
    seconds: float

    @property
    def repaired(self) -> bool:
        """Clearly better after the fix (see the module docstring)."""
        gain = self.after - self.before
        return gain >= REPAIRED_GAIN or (self.before < REPAIRED_LEVEL <= self.after)

    @property
    def worse(self) -> bool:
        """Clearly worse after the fix."""
        return self.after < self.before - WORSE_DROP


def sick_models(quick: bool) -> Iterator[Sick]:
    """The scenario suite's sick networks, then the zoo's sick twins if the zoo is installed."""
    from gradscope.scenarios import SCENARIOS

    for name, scenario in SCENARIOS.items():
        if scenario.sick and (not quick or name in QUICK):
            yield Sick(f"scenario:{name}", scenario.build, scenario.regression)
    if quick:
        return
    yield from zoo_twins()


def zoo_twins() -> Iterator[Sick]:
    """The zoo's sick twins on digits, if a zoo module with ``TWINS`` is on main yet."""
    try:
        zoo = importlib.import_module("gradscope.zoo")
    except ImportError:
        return
    for twin in getattr(zoo, "TWINS", {}).values():
        sick = getattr(twin, "sick", None)
        if sick is None:
            continue
        yield Sick(f"zoo:{twin.name}", sick, bool(getattr(twin, "regression", False)))


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits standardized, split 2:1 into train and test by a seeded permutation."""
    from gradscope.demo import load_digits_data

    x, y = load_digits_data()
    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) * 2 // 3
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


def train_and_score(model, sick: Sick, data, epochs: int, seed: int = 0) -> float:
    """Trains a fresh copy with the model's own compile settings; returns its test accuracy."""
    import keras

    x, y, xt, yt = data
    keras.utils.set_random_seed(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile_from_config(model.get_compile_config())
    target = y.astype("float32") if sick.regression else y
    copy.fit(x, target, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
    pred = np.asarray(copy.predict(xt, verbose=0))
    if not np.isfinite(pred).all():
        return 0.0
    if sick.regression:
        return float(np.mean(np.rint(pred[:, 0]) == yt))
    return float(np.mean(np.argmax(pred, axis=1) == yt))


def run_one(sick: Sick, data, epochs: int, budget: float | None, root: Path) -> Row:
    """The original trained, fixed, the fixed copy trained: one row."""
    import keras

    from gradscope.fix import auto_fix

    keras.utils.set_random_seed(0)
    model = sick.build()
    before = train_and_score(model, sick, data, epochs)
    x, y = data[0], data[1]
    started = time.monotonic()
    result = auto_fix(
        model, x, y.astype("float32") if sick.regression else y, budget=budget, run_dir=root
    )
    seconds = time.monotonic() - started
    after = train_and_score(result.model, sick, data, epochs) if result.applied else before
    findings = sorted(result.overall.before.kinds())
    tried = [o.fix_id for o in result.outcomes if o.verification is not None]
    return Row(
        sick.name,
        ", ".join(findings) or "none",
        ", ".join(tried) or "none",
        ", ".join(result.applied) or "none",
        before,
        after,
        seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints (and optionally writes) the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two scenarios, short runs")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 10)")
    parser.add_argument("--budget", type=float, default=None, help="fix --auto budget, seconds")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 10)
    budget = args.budget if args.budget is not None else (30.0 if args.quick else None)
    data = digits_split()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gradscope-repair-") as tmp:
        for i, sick in enumerate(sick_models(args.quick)):
            rows.append(run_one(sick, data, epochs, budget, Path(tmp) / str(i)))
            print(f"done {sick.name}", file=sys.stderr, flush=True)
    table = markdown_table(
        [
            "model",
            "findings (trial)",
            "candidates tried",
            "kept",
            "acc before",
            "acc after",
            "repaired",
            "worse",
            "fix seconds",
        ],
        [
            [
                r.name,
                r.findings,
                r.tried,
                r.kept,
                f"{r.before:.3f}",
                f"{r.after:.3f}",
                "yes" if r.repaired else "no",
                "yes" if r.worse else "no",
                f"{r.seconds:.0f}",
            ]
            for r in rows
        ],
    )
    repaired = sum(r.repaired for r in rows)
    worse = sum(r.worse for r in rows)
    share = repaired / len(rows) if rows else 0.0
    summary = (
        f"repaired {repaired} of {len(rows)} ({share:.0%}); made worse {worse}; "
        f"training: {epochs} epochs, batch size 32, {len(data[0])} train / {len(data[2])} test "
        f"digits; fix budget {budget if budget is not None else 'default'} s"
    )
    text = "\n\n".join([header("gradscope fix --auto: repair benchmark", argv), table, summary])
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
