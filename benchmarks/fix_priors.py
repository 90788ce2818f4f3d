"""How often each automatic fix verifies: the measured priors of the fix catalog (issue 12).

For every sick network below (the chapter's scenario suite, the demo's net and two ReLU nets
with a too-small initialization), on scikit-learn digits:

1. trial the original (``run_trial``: the fix trial, 8 passes over 256 of the digits at batch 32,
   seed 0, ``GradScope(freq=1)``, scored on 256 other digits after each pass);
2. for every automatic fix that answers one of the trial's findings (warning or worse), apply it
   alone to the original (a fix that has nothing to change counts as *not applicable*, not as
   a failure) and verify it against that trial (same batches, same seed): *verified* when the
   targeted findings are gone and it learns measurably better (the held-out loss 5 % lower or
   the accuracy 0.05 higher, neither worse), as ``gradscope fix --auto`` decides.

Prints markdown: one row per (network, fix) and the verified / tried count per fix, which
``gradscope/remedies.py`` cites as each fix's prior. Run ``python benchmarks/fix_priors.py``
(about 10 minutes on 2 busy cores), ``--out reports/fix_priors.md`` to also write the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
from benchutil import header, markdown_table

from gradscope.demo import load_digits_data, sick_model
from gradscope.findings import Severity
from gradscope.fix.transforms import TRANSFORMS, FixNotApplicable, apply_fix
from gradscope.fix.verify import run_trial, trial_steps, verify
from gradscope.remedies import CATALOG
from gradscope.scenarios import SCENARIOS, mlp

#: The fix trial's default: 8 passes over 256 examples at batch size 32 (64 steps).
STEPS = trial_steps()
SEED = 0


def _demo_sick() -> keras.Model:
    model = sick_model()
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


#: The sick networks: name -> (builder, description).
NETWORKS: dict[str, tuple[Callable[[], keras.Model], str]] = {
    **{
        name: (s.build, s.description)
        for name, s in SCENARIOS.items()
        if s.sick and not s.regression
    },
    "regression_high_lr": (
        SCENARIOS["regression_high_lr"].build,
        SCENARIOS["regression_high_lr"].description,
    ),
    "demo_deep_sigmoid": (_demo_sick, "the demo: 10 x sigmoid, glorot_uniform, SGD(0.05)"),
    "relu_tiny_init": (
        lambda: mlp(
            8,
            64,
            "relu",
            keras.initializers.RandomNormal(stddev=0.01),
            optimizer=keras.optimizers.SGD(0.01),
        ),
        "8 x ReLU, RandomNormal(0.01), SGD(0.01)",
    ),
    "relu_glorot_deep": (
        lambda: mlp(16, 64, "relu", "glorot_normal", optimizer=keras.optimizers.SGD(0.01)),
        "16 x ReLU, glorot_normal, SGD(0.01)",
    ),
}


def measure(name: str, root: Path, x, y) -> list[tuple[str, str, str, str]]:
    """Rows ``(network, fix, outcome, detail)`` for one network."""
    build, _ = NETWORKS[name]
    keras.utils.set_random_seed(SEED)
    model = build()
    targets_y = y.astype("float32") if name == "regression_high_lr" else y
    before = run_trial(model, x, targets_y, root / name / "original", STEPS, SEED)
    kinds = before.kinds(Severity.WARNING)
    rows = []
    for fix_id in TRANSFORMS:
        answers = sorted(kinds & CATALOG[fix_id].answers)
        if not answers:
            continue
        try:
            fixed = apply_fix(model, fix_id)
        except FixNotApplicable as err:
            rows.append((name, fix_id, "not applicable", str(err).split(":", 1)[-1].strip()))
            continue
        v = verify(
            model,
            fixed,
            x,
            targets_y,
            steps=STEPS,
            seed=SEED,
            targets=answers,
            run_dir=root / name / fix_id,
            before=before,
        )
        outcome = "verified" if v.verified else "not verified"
        detail = f"targets {', '.join(answers)}; remaining {', '.join(v.remaining) or 'none'}"
        detail += f"; {v.learning}"
        rows.append((name, fix_id, outcome, detail))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--only", nargs="*", help="network names (default: all)")
    parser.add_argument("--date", default=dt.date.today().isoformat())
    args = parser.parse_args()
    x, y = load_digits_data()
    names = args.only or list(NETWORKS)
    rows: list[tuple[str, str, str, str]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gradscope-priors-") as tmp:
        for name in names:
            rows += measure(name, Path(tmp), x, y)
            print(f"{name}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    tried = Counter(f for _, f, o, _ in rows if o != "not applicable")
    verified = Counter(f for _, f, o, _ in rows if o == "verified")
    na = Counter(f for _, f, o, _ in rows if o == "not applicable")
    summary = [
        (f, f"{verified[f]} / {tried[f]}", na[f])
        for f in sorted(set(tried) | set(na), key=lambda f: (-verified[f], f))
    ]
    text = "\n\n".join(
        [
            header("Fix priors: how often each automatic fix verifies", with_frameworks=True),
            f"date: {args.date}; {STEPS}-step trials, batch 32, seed {SEED}, digits; "
            f"{time.perf_counter() - start:.0f} s",
            "## Networks\n\n"
            + markdown_table(["network", "what"], [(n, NETWORKS[n][1]) for n in names]),
            "## Per fix (cited by gradscope/remedies.py)\n\n"
            + markdown_table(["fix", "verified / tried", "not applicable"], summary),
            "## Per network and fix\n\n"
            + markdown_table(["network", "fix", "outcome", "detail"], rows),
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
