"""The chapter's story on scikit-learn's bundled digits.

A deep sigmoid net whose early layers barely get a gradient, next to the same net with He
initialization and ReLU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from rich.console import Console

from gradscope.collect.callback import GradScope
from gradscope.data.store import Run, load_run
from gradscope.detect.summary import gradient_ratio
from gradscope.scenarios import mlp

#: Depth of the chapter's deep stack of dense layers.
DEPTH = 10
WIDTH = 64
#: The demo saves its untrained sick model under this name in ``out``.
MODEL_FILE = "deep_sigmoid.keras"


def load_digits_data() -> tuple[np.ndarray, np.ndarray]:
    """Returns scikit-learn's bundled 8×8 digits, standardized per feature (no download).

    Returns:
        ``(x, y)``: float32 inputs of shape (1797, 64) with zero mean and unit variance per
        feature (constant pixels stay 0), and int32 labels 0–9.

    Example:
        >>> x, y = load_digits_data()
        >>> x.shape, int(y.max())
        ((1797, 64), 9)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype("float32")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return x.astype("float32"), digits.target.astype("int32")


def sick_model(depth: int = DEPTH, width: int = WIDTH) -> keras.Model:
    """The chapter's sick network: a deep sigmoid MLP as naively written in Keras.

    Keras's default Glorot-uniform init assumes a unit derivative; sigmoid's is at most 0.25 and
    its outputs are not zero-centred, so each layer shrinks the backward signal (measured on
    digits at init: first-layer gradient ~1e-6 of the output layer's).

    Args:
        depth: number of hidden Dense layers.
        width: units per hidden layer.

    Returns:
        An uncompiled Sequential model for 64 inputs and 10 classes.

    Example:
        >>> len(sick_model(depth=3).layers)
        4
    """
    return mlp(depth, width, "sigmoid", "glorot_uniform", name="deep_sigmoid", compiled=False)


def healthy_model(depth: int = DEPTH, width: int = WIDTH) -> keras.Model:
    """The same depth with the chapter's cure: ReLU with He initialization.

    Args:
        depth: number of hidden Dense layers.
        width: units per hidden layer.

    Returns:
        An uncompiled Sequential model for 64 inputs and 10 classes.

    Example:
        >>> healthy_model(depth=2).layers[0].activation.__name__
        'relu'
    """
    return mlp(depth, width, "relu", "he_normal", name="deep_relu_he", compiled=False)


@dataclass(frozen=True)
class DemoResult:
    """Where the demo's outputs went and what it measured.

    Attributes:
        model_file: the untrained sick model, saved before training (``deep_sigmoid.keras``).
        before_run: run directory of the chapter's sick network.
        after_run: run directory of the network gradscope fixed.
        report: the HTML report (before/after).
        applied: fix ids gradscope applied and verified.
        before_findings: finding kinds on the sick network.
        after_findings: finding kinds on the fixed network.
        before_ratio: first/last gradient ratio (:func:`first_last_ratio`), sick network.
        after_ratio: the same, fixed network.
        before_accuracy: final training accuracy of the sick network.
        after_accuracy: final training accuracy of the fixed network.
    """

    model_file: Path
    before_run: Path
    after_run: Path
    report: Path
    applied: tuple[str, ...]
    before_findings: tuple[str, ...]
    after_findings: tuple[str, ...]
    before_ratio: float
    after_ratio: float
    before_accuracy: float
    after_accuracy: float


def _compile(model: keras.Model) -> keras.Model:
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _train(
    model: keras.Model, x: np.ndarray, y: np.ndarray, run_dir: Path, epochs: int
) -> GradScope:
    callback = GradScope(run_dir, freq=5, histogram_freq=50, verbose=0)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[callback])
    return callback


def median_grad_norms(run: Run) -> dict[str, float]:
    """Median gradient norm of every watched layer over a run.

    Args:
        run: a loaded run.

    Returns:
        layer name -> median gradient L2 norm, in forward order.

    Example:
        >>> median_grad_norms(load_run("reports/demo/before"))  # doctest: +SKIP
    """
    out = {}
    for info in run.layers:
        if info.watched:
            _, values = run.series("grad_norm", info.name)
            if len(values):
                out[info.name] = float(np.median(values))
    return out


def first_last_ratio(run: Run) -> float:
    """The run's first/last gradient ratio, as every view defines it (the demo's headline).

    See :mod:`gradscope.detect.summary`: per-weight gradient RMS of the first weight layer over
    the last one's, medians over the detectors' window.

    Args:
        run: a loaded run.

    Returns:
        The ratio (the chapter's "vanishing" number: ≪ 1 when early layers starve), NaN when
        the run has none.

    Example:
        >>> first_last_ratio(load_run("reports/demo/before"))  # doctest: +SKIP
        6.2e-07
    """
    ratio = gradient_ratio(run)
    return float("nan") if ratio is None else ratio.value


def _accuracy(run: Run) -> float:
    return run.epochs[-1].logs.get("accuracy", float("nan")) if run.epochs else float("nan")


def run_demo(
    out: Path, epochs: int = 10, trial_steps: int = 40, console: Console | None = None
) -> DemoResult:
    """The chapter's story: train the sick net, diagnose, fix a copy, train it, report.

    Args:
        out: output folder; ``before/``, ``after/``, ``trials/``, ``report.html`` and
            ``deep_sigmoid.keras`` in it are replaced.
        epochs: training epochs per model.
        trial_steps: steps of each verification trial while fixing.
        console: where to print (a default rich console if None).

    Returns:
        The :class:`DemoResult`.

    Example:
        >>> run_demo(Path("reports/demo"), epochs=2)  # doctest: +SKIP
    """
    from gradscope.fix import auto_fix
    from gradscope.fix.save import save_model_atomically
    from gradscope.render.fmt import grad_ratio
    from gradscope.render.html import render_report
    from gradscope.render.terminal import print_summary

    console = console or Console()
    keras.utils.set_random_seed(42)
    x, y = load_digits_data()
    before_dir, after_dir, trials = out / "before", out / "after", out / "trials"
    for path in (before_dir, after_dir, trials):
        shutil.rmtree(path, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    console.rule("1. The chapter's sick network: 10 × Dense(64, sigmoid), Keras defaults")
    sick = _compile(sick_model())
    # The untrained model as a file, so the CLI tour can audit and fix what the demo started from.
    model_file = save_model_atomically(sick, out / MODEL_FILE)
    with console.status(f"Training {epochs} epochs on digits with GradScope..."):
        before = _train(sick, x, y, before_dir, epochs)
    print_summary(before.run_dir, before.findings, console=console)

    console.rule("2. gradscope fixes a copy and verifies each fix on a short trial")
    with console.status("Planning fixes and running verification trials..."):
        result = auto_fix(sick, x, y, steps=trial_steps, run_dir=trials, findings=before.findings)
    for outcome in result.outcomes:
        mark = "[green]kept[/]" if outcome.kept else "[dim]skipped[/]"
        console.print(f"  {mark} {outcome.fix_id}: {outcome.reason}", soft_wrap=True)

    console.rule("3. The fixed network, trained the same way")
    fixed = _compile(result.model)
    with console.status(f"Training the fixed network {epochs} epochs..."):
        after = _train(fixed, x, y, after_dir, epochs)
    print_summary(after.run_dir, after.findings, console=console)

    report = render_report(
        {"before": before.run_dir, "after": after.run_dir},
        out / "report.html",
        title="gradscope demo: deep sigmoid network, before and after the fix",
    )
    before_run, after_run = load_run(before.run_dir), load_run(after.run_dir)
    demo = DemoResult(
        model_file=model_file,
        before_run=before_run.path,
        after_run=after_run.path,
        report=report,
        applied=tuple(result.applied),
        before_findings=tuple(f.kind for f in before.findings),
        after_findings=tuple(f.kind for f in after.findings),
        before_ratio=first_last_ratio(before_run),
        after_ratio=first_last_ratio(after_run),
        before_accuracy=_accuracy(before_run),
        after_accuracy=_accuracy(after_run),
    )
    console.rule("Result")
    console.print(
        f"first/last gradient ratio {grad_ratio(demo.before_ratio)} → "
        f"{grad_ratio(demo.after_ratio)}; "
        f"training accuracy {demo.before_accuracy:.2f} → {demo.after_accuracy:.2f} "
        f"(fixes applied: {', '.join(demo.applied) or 'none'})."
    )
    # soft_wrap: paths and the command must stay copy-pasteable, never wrapped mid-path.
    console.print(f"HTML report: {report}", soft_wrap=True)
    console.print(f"TensorBoard: tensorboard --logdir {out}", soft_wrap=True)
    console.print(f"The sick model, to try the CLI on: {model_file}", soft_wrap=True)
    return demo
