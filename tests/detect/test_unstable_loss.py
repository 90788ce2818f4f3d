"""unstable_loss (GS106): a learning rate too high, on real fits and on runs set by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lr_runs import fit
from synthetic_runs import dense, make_run

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds, UnstableLossThresholds
from gradscope.detect import detect
from gradscope.detect.base import RunWindow
from gradscope.detect.step_size import StepSizes
from gradscope.findings import KINDS, Severity

KIND = "unstable_loss"
TH = DETECT_THRESHOLDS.unstable_loss
LAYERS = [dense("h1"), dense("h2"), dense("out", kind="softmax")]


def _numpy_medians(run, records, stat):
    # Independent of gradscope.detect: per-layer median over records, then median over layers.
    per_layer = []
    for name in ("h1", "h2", "out"):
        values = [r.layers[name][stat] for r in records if name in r.layers]
        per_layer.append(np.median(values))
    return float(np.median(per_layer)), per_layer


# -- real fits ---------------------------------------------------------------------------------


def test_sgd_at_100x_the_rate_is_unstable():
    sick = fit("sgd_100x_high")
    finding = sick.serious()[KIND]
    assert finding.code == "GS106" and finding.fixes[0] == "lower_learning_rate"
    assert {"nonfinite", "exploding_gradients"}.isdisjoint(sick.serious())
    # Keras's own epoch losses: the loss rose instead of falling.
    assert sick.history["loss"][-1] > sick.history["loss"][0]
    # The evidence is the median over layers of each layer's window median (numpy here).
    last = sick.run.records[len(sick.run.records) // 2 :]
    median, _ = _numpy_medians(sick.run, last, "update_ratio")
    assert finding.evidence["update_ratio_median"] == pytest.approx(median)
    assert median >= TH.high_update_ratio
    # The steps add up: the kernels moved far from where they started (numpy, before/after).
    moved = [
        np.linalg.norm(sick.model.get_layer(n).kernel.numpy() - w) / np.linalg.norm(w)
        for n, w in sick.before.items()
    ]
    assert min(moved) > 0.5
    assert finding.evidence["weight_growth_median"] >= TH.min_weight_growth
    assert finding.evidence["learning_rate"] == pytest.approx(sick.lr)
    assert "learning rate (1) is likely too high" in finding.message


@pytest.mark.parametrize(
    "name", ["adam", "sgd_momentum", "noisy_small_batch", "converged_sgd", "frozen_backbone"]
)
def test_healthy_fits_are_not_unstable(name):
    healthy = fit(name)
    assert KIND not in healthy.serious()
    assert {f.kind for f in healthy.serious()}.isdisjoint({"slow_convergence"})


def test_noisy_small_batches_take_large_steps_that_cancel():
    # The case the weight-growth condition exists for: 60 % random labels, batches of 4. The
    # steps are as large as the threshold and the loss hardly falls, but the steps are noise.
    noisy = fit("noisy_small_batch")
    window = RunWindow.of(noisy.run, DETECT_THRESHOLDS)
    steps = StepSizes.of(window)
    assert steps.median >= TH.high_update_ratio
    assert window.progress.loss_drop < TH.max_loss_drop
    first, last = window.first, window.last
    growth = [
        np.median([r.layers[n]["weight_norm"] for r in last])
        / np.median([r.layers[n]["weight_norm"] for r in first])
        for n in ("h1", "h2", "out")
    ]
    assert abs(float(np.median(growth)) - 1.0) < 0.02
    assert steps.weight_growth == pytest.approx(float(np.median(growth)))
    assert noisy.kind(KIND) is None


def test_a_run_that_went_nan_belongs_to_nonfinite():
    diverged = fit("nan")
    assert "nonfinite" in diverged.serious()
    assert diverged.kind(KIND) is None


# -- runs set by hand --------------------------------------------------------------------------


def _stats(update=3e-2, growth=1.5, grad=1.0, steps=40):
    def stats(step):
        weight = 1.0 + (growth - 1.0) * step / (steps - 1)
        return {
            n: {"grad_norm": grad, "weight_norm": weight, "update_ratio": update, "nonfinite": 0.0}
            for n in ("h1", "h2", "out")
        }

    return stats


def test_flat_loss_with_large_growing_steps(tmp_path):
    run = make_run(tmp_path, LAYERS, _stats(), loss=lambda s: 1.4 + 0.3 * math.sin(s))
    (finding,) = detect(run, kinds=[KIND])
    assert finding.severity is Severity.WARNING
    assert finding.fixes == KINDS[KIND].fixes == ("lower_learning_rate", "lr_schedule")
    assert finding.layers == ("h1", "h2", "out")
    assert finding.evidence["update_ratio_median"] == pytest.approx(3e-2)
    # Weight norm rises linearly from 1 to 1.5 over 40 steps: window medians by hand.
    first = np.median([1 + 0.5 * s / 39 for s in range(8)])
    last = np.median([1 + 0.5 * s / 39 for s in range(20, 40)])
    assert finding.evidence["weight_growth_median"] == pytest.approx(last / first)
    loud = make_run(tmp_path / "loud", LAYERS, _stats(update=0.2), loss=lambda s: 2.0)
    assert detect(loud, kinds=[KIND])[0].severity is Severity.ERROR


@pytest.mark.parametrize(
    ("case", "stats", "loss"),
    [
        ("loss falls", _stats(), lambda s: 2.0 * 0.95**s),
        ("steps near 1e-3", _stats(update=2e-3), lambda s: 2.0),
        ("steps cancel", _stats(growth=1.0), lambda s: 2.0),
        ("gradients explode", _stats(grad=5e3), lambda s: 2.0),
    ],
)
def test_quiet_when_one_condition_is_missing(tmp_path, case, stats, loss):
    run = make_run(tmp_path, LAYERS, stats, loss=loss)
    assert detect(run, kinds=[KIND]) == [], case
    if case == "gradients explode":
        assert detect(run, kinds=["exploding_gradients"])


def test_quiet_when_the_run_went_nonfinite_or_the_model_performs(tmp_path):
    nan = make_run(tmp_path / "nan", LAYERS, _stats(), loss=lambda s: math.nan if s == 35 else 2.0)
    assert detect(nan, kinds=[KIND]) == []
    assert detect(nan, kinds=["nonfinite"])
    epochs = [{"loss": 0.2, "accuracy": 0.93}, {"loss": 0.2, "accuracy": 0.93}]
    performs = make_run(tmp_path / "acc", LAYERS, _stats(), loss=lambda s: 0.2, epochs=epochs)
    assert detect(performs, kinds=[KIND]) == []


def test_an_epoch_loss_that_oscillates_counts_even_when_it_fell(tmp_path):
    # The zoo's LSTM at Adam(1.0): the epoch losses fall 29 % overall but rise once in four
    # epochs (0.88 -> 0.92, +4 %: AutoTrainer's 0.2 x epochs); the step medians fall too.
    epochs = [{"loss": v} for v in (1.05, 0.88, 0.92, 0.75)]
    falling = [1.05] * 10 + [0.88] * 10 + [0.92] * 10 + [0.75] * 10
    run = make_run(tmp_path, LAYERS, _stats(), loss=lambda s: falling[s], epochs=epochs)
    (finding,) = detect(run, kinds=[KIND])
    assert finding.evidence["epoch_loss_rises"] == 1
    assert "rose in 1 of 4 epochs" in finding.message
    smooth = [{"loss": v} for v in (1.05, 0.95, 0.85, 0.75)]
    run = make_run(tmp_path / "s", LAYERS, _stats(), loss=lambda s: falling[s], epochs=smooth)
    assert detect(run, kinds=[KIND]) == []


def test_a_loss_thrown_up_by_the_first_step_that_ends_above_its_start(tmp_path):
    # The zoo's LSTM at Adam(1.0) in the audit's 8-step probe: the first step throws the loss
    # from 0.69 to 2.53 and it falls back only part of the way. The window medians "fall" and
    # the trend falls (the progress gate says learning), yet it ends above where it started.
    thrown = [0.69, *np.linspace(2.53, 1.14, 15)]
    run = make_run(tmp_path, LAYERS, _stats(steps=16), steps=16, loss=lambda s: thrown[s])
    (finding,) = detect(run, kinds=[KIND])
    progress = finding.evidence["progress"]
    assert progress["loss_drop"] >= 0.1  # the window medians fell: that rule alone is quiet
    assert progress["learning"]  # and the progress gate alone would have made it info
    assert finding.severity is Severity.WARNING
    assert finding.evidence["loss_first"] == pytest.approx(0.69)
    assert finding.evidence["loss_ended_above_start"] is True
    assert "ended above its first value, 0.69," in finding.message
    # Falling back below where it started is learning: quiet.
    back = [0.69, 2.53, 1.5, 0.9, *[0.5] * 12]
    run = make_run(tmp_path / "back", LAYERS, _stats(steps=16), steps=16, loss=lambda s: back[s])
    assert detect(run, kinds=[KIND]) == []


def test_thresholds_override(tmp_path):
    run = make_run(tmp_path, LAYERS, _stats(update=5e-3), loss=lambda s: 2.0)
    assert detect(run, kinds=[KIND]) == []
    looser = DetectThresholds(unstable_loss=UnstableLossThresholds(high_update_ratio=1e-3))
    assert detect(run, thresholds=looser, kinds=[KIND])[0].severity is Severity.WARNING
