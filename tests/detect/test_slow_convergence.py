"""slow_convergence (GS107): a learning rate far too low, on real fits and runs set by hand."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import reference_layer_grad_norms
from lr_runs import data, fit
from synthetic_runs import dense, make_run

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds, SlowConvergenceThresholds
from gradscope.detect import detect
from gradscope.detect.base import RunWindow
from gradscope.detect.step_size import StepSizes
from gradscope.findings import KINDS, Severity

KIND = "slow_convergence"
TH = DETECT_THRESHOLDS.slow_convergence
LAYERS = [dense("h1"), dense("h2"), dense("out", kind="softmax")]


# -- real fits ---------------------------------------------------------------------------------


def test_sgd_at_1e_6_converges_slowly():
    sick = fit("sgd_too_low")
    finding = sick.serious()[KIND]
    assert finding.code == "GS107" and finding.fixes[0] == "raise_learning_rate"
    assert finding.layers == ("h1", "h2", "out")
    # Keras's own epoch losses: flat.
    first, last = sick.history["loss"][0], sick.history["loss"][-1]
    assert abs(last - first) / first < TH.max_loss_drop
    # Plain SGD moves each layer by lr * |gradient|: an independent GradientTape on the data
    # gives the size of each layer's step relative to its weights, to within batch noise.
    x, y = data()
    grads = reference_layer_grad_norms(sick.model, x[:16], y[:16])
    expected = [
        sick.lr * grads[layer.name] / np.sqrt(sum(float(np.sum(w**2)) for w in layer.get_weights()))
        for layer in sick.model.layers
    ]
    measured = finding.evidence["update_ratio_median"]
    assert float(np.median(expected)) / 3 < measured < 3 * float(np.median(expected))
    assert measured < TH.low_update_ratio
    assert finding.evidence["relative_gradient_median"] >= TH.min_relative_gradient
    assert finding.evidence["learning_rate"] == pytest.approx(1e-6)
    assert "learning rate (1e-06) is likely far too low" in finding.message


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "noisy_small_batch", "frozen_backbone"])
def test_healthy_fits_do_not_converge_slowly(name):
    assert fit(name).kind(KIND) is None


@pytest.mark.parametrize("name", ["converged_sgd", "fine_tune_low_rate"])
def test_a_converged_model_moves_little_on_purpose(name):
    # Continuing a trained model (plain SGD; Keras's fine-tuning rate Adam(1e-5)), no accuracy
    # metric: steps below 1e-5 and a flat loss, as with a rate too low, but the gradient is
    # small too (a minimum), which tells the two apart.
    converged = fit(name)
    steps = StepSizes.of(RunWindow.of(converged.run, DETECT_THRESHOLDS))
    assert steps.median < TH.low_update_ratio
    assert steps.relative_gradient < TH.min_relative_gradient
    assert converged.kind(KIND) is None


def test_frozen_backbone_is_not_judged():
    tuned = fit("frozen_backbone")
    judged = StepSizes.of(RunWindow.of(tuned.run, DETECT_THRESHOLDS)).by_layer
    assert list(judged) == ["new_head"]
    assert judged["new_head"] > TH.low_update_ratio


# -- runs set by hand --------------------------------------------------------------------------


def _stats(update=1e-4, out_update=None, grad=0.5, weight=5.0):
    def stats(step):
        return {
            n: {
                "grad_norm": grad,
                "weight_norm": weight,
                "update_ratio": out_update if (n == "out" and out_update) else update,
                "nonfinite": 0.0,
            }
            for n in ("h1", "h2", "out")
        }

    return stats


def test_tiny_steps_despite_a_large_gradient(tmp_path):
    run = make_run(tmp_path, LAYERS, _stats(), loss=lambda s: 1.4)
    (finding,) = detect(run, kinds=[KIND])
    assert finding.severity is Severity.WARNING
    assert finding.fixes == KINDS[KIND].fixes == ("raise_learning_rate", "lr_schedule")
    assert finding.evidence["update_ratio_median"] == pytest.approx(1e-4)
    assert finding.evidence["relative_gradient_median"] == pytest.approx(0.5 / 5.0)
    tinier = make_run(tmp_path / "e", LAYERS, _stats(update=1e-6), loss=lambda s: 1.4)
    assert detect(tinier, kinds=[KIND])[0].severity is Severity.ERROR


@pytest.mark.parametrize(
    ("case", "stats", "loss", "epochs"),
    [
        ("loss falls", _stats(), lambda s: 2.0 * 0.95**s, ()),
        ("steps above 3e-4", _stats(update=5e-4), lambda s: 1.4, ()),
        ("one layer at 1e-3", _stats(out_update=1e-3), lambda s: 1.4, ()),
        ("at a minimum", _stats(grad=1e-3), lambda s: 1.4, ()),
        ("accuracy reached", _stats(), lambda s: 0.1, ({"accuracy": 0.95},) * 2),
    ],
)
def test_quiet_when_one_condition_is_missing(tmp_path, case, stats, loss, epochs):
    run = make_run(tmp_path, LAYERS, stats, loss=loss, epochs=epochs)
    assert detect(run, kinds=[KIND]) == [], case


def test_output_layer_training_is_vanishing_not_slow(tmp_path):
    # Stalled hidden layers under a training output layer: the gradient does not reach them.
    # Every step is small (median 1e-7, output 5e-4), but vanishing owns the run.
    run = make_run(tmp_path, LAYERS, _stats(update=1e-7, out_update=5e-4), loss=lambda s: 1.4)
    assert detect(run, kinds=[KIND]) == []
    (vanishing,) = detect(run, kinds=["vanishing_gradients"])
    assert vanishing.evidence["stalled_updates"] is True


def test_frozen_layers_do_not_count(tmp_path):
    # Counted, four motionless frozen layers would pull the median of seven to 0.
    frozen = [f"frozen{i}" for i in range(4)]
    layers = [*(dense(n, trainable=False) for n in frozen), dense("h1"), dense("h2"), dense("out")]

    def stats(step):
        return {**_stats(update=5e-4)(step), **{n: {"update_ratio": 0.0} for n in frozen}}

    run = make_run(tmp_path, layers, stats, loss=lambda s: 1.4)
    assert detect(run, kinds=[KIND]) == []


def test_thresholds_override(tmp_path):
    run = make_run(tmp_path, LAYERS, _stats(update=5e-4), loss=lambda s: 1.4)
    assert detect(run, kinds=[KIND]) == []
    looser = DetectThresholds(slow_convergence=SlowConvergenceThresholds(low_update_ratio=1e-3))
    assert detect(run, thresholds=looser, kinds=[KIND])[0].severity is Severity.WARNING
