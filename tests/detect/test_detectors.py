"""Detector unit tests on synthetic runs whose statistics are set by hand."""

import math

import numpy as np
import pytest
from synthetic_runs import dense, make_run, uniform_stats

from gradscope.config import DETECT_THRESHOLDS, DetectThresholds, VanishingThresholds
from gradscope.detect import detect, registered
from gradscope.detect.base import STILL_LEARNS, Judgement, RunWindow, WindowDetector
from gradscope.detect.progress import assess_progress
from gradscope.detect.window import last_window, usable_records
from gradscope.findings import CODES, KINDS, Severity
from gradscope.remedies import CATALOG

NAMES = ["d0", "d1", "d2", "out"]
LAYERS = [dense("d0"), dense("d1"), dense("d2"), dense("out", kind="sigmoid")]


def _kinds(findings, at_least=Severity.INFO):
    return {f.kind for f in findings if f.severity >= at_least}


def _grad_chain(first, last, upd_first=1e-3, upd_last=1e-3):
    # grad_norm per layer, geometric from first to last; params=100 so RMS = norm / 10.
    def stats(step):
        out = {}
        for i, n in enumerate(NAMES):
            t = i / (len(NAMES) - 1)
            out[n] = {
                "grad_norm": first ** (1 - t) * last**t,
                "weight_norm": 1.0,
                "update_ratio": upd_first ** (1 - t) * upd_last**t,
                "nonfinite": 0.0,
            }
        return out

    return stats


def test_all_kinds_registered_and_fixes_known():
    assert set(registered()) == {
        "vanishing_gradients",
        "exploding_gradients",
        "dying_relu",
        "saturation",
        "nonfinite",
        "unstable_loss",
        "slow_convergence",
    }


def test_healthy_synthetic_run_is_quiet(tmp_path):
    run = make_run(tmp_path, LAYERS, _grad_chain(0.5, 1.0), loss=lambda s: 2.0 * 0.97**s)
    assert detect(run) == []


def test_vanishing_ratio_and_severity(tmp_path):
    run = make_run(tmp_path, LAYERS, _grad_chain(1e-6, 1.0))
    (f,) = detect(run, kinds=["vanishing_gradients"])
    assert f.code == CODES["vanishing_gradients"] == "GS101"
    assert f.severity is Severity.ERROR  # 1e-6 < error_ratio 1e-5, and the loss is flat
    # Independent computation: RMS = norm / sqrt(100) for both layers, so the ratio is 1e-6.
    assert f.evidence["first_last_grad_ratio"] == pytest.approx(1e-6)
    assert f.evidence["first_last_grad_ratio_text"] == "1.0e-06 (6.0 orders of magnitude)"
    assert "1.0e-06 (6.0 orders of magnitude)" in f.message
    assert f.evidence["orders_of_magnitude"] == pytest.approx(6.0)
    assert f.layers[0] == "d0" and "out" not in f.layers
    assert set(f.fixes) <= set(CATALOG)
    assert f.evidence["grad_rms"]["d0"] == pytest.approx(1e-7)


def test_vanishing_warning_band_and_threshold_override(tmp_path):
    run = make_run(tmp_path, LAYERS, _grad_chain(1e-4, 1.0))
    (f,) = detect(run, kinds=["vanishing_gradients"])
    assert f.severity is Severity.WARNING
    strict = DetectThresholds(vanishing=VanishingThresholds(warning_ratio=1e-5, error_ratio=1e-7))
    assert detect(run, thresholds=strict, kinds=["vanishing_gradients"]) == []


def test_vanishing_by_stalled_updates(tmp_path):
    # Gradient ratio healthy (0.1) but the hidden layers' updates stalled (SGD-like picture).
    run = make_run(tmp_path, LAYERS, _grad_chain(0.1, 1.0, upd_first=1e-7, upd_last=3e-3))
    (f,) = detect(run, kinds=["vanishing_gradients"])
    assert f.evidence["stalled_updates"] is True
    assert f.severity is Severity.WARNING
    assert "barely move" in f.message
    # Independent: geometric update ratios over 4 layers; median of the 3 below the output.
    ups = [1e-7 ** (1 - t) * 3e-3**t for t in (0, 1 / 3, 2 / 3)]
    assert f.evidence["hidden_update_ratio_median"] == pytest.approx(np.median(ups))
    assert f.evidence["update_ratio_hidden_over_last"] == pytest.approx(np.median(ups) / 3e-3)


def test_one_fast_first_layer_does_not_hide_stalled_hidden_layers(tmp_path):
    def stats(step):
        ups = {"d0": 5e-4, "d1": 4e-6, "d2": 3e-6, "out": 3e-3}
        return {n: {"grad_norm": 1.0, "update_ratio": u} for n, u in ups.items()}

    run = make_run(tmp_path, LAYERS, stats)
    (f,) = detect(run, kinds=["vanishing_gradients"])
    assert f.evidence["hidden_update_ratio_median"] == pytest.approx(4e-6)
    assert f.layers == ("d1", "d2")  # the fast first layer is not blamed


def test_vanishing_is_gated_when_learning(tmp_path):
    epochs = [{"loss": 1.0, "accuracy": 0.5}, {"loss": 0.3, "accuracy": 0.95}]
    run = make_run(tmp_path, LAYERS, _grad_chain(1e-6, 1.0), epochs=epochs)
    (f,) = detect(run, kinds=["vanishing_gradients"])
    assert f.severity is Severity.INFO
    assert f.evidence["progress"]["learning"] is True


def test_frozen_layers_are_never_vanishing(tmp_path):
    layers = [dense("frozen", trainable=False), dense("d1"), dense("out", kind="sigmoid")]

    def stats(step):
        # The frozen layer has no recorded gradient; d1/out are healthy.
        return {
            "d1": {"grad_norm": 0.5, "update_ratio": 1e-3},
            "out": {"grad_norm": 1.0, "update_ratio": 1e-3},
        }

    run = make_run(tmp_path, layers, stats)
    assert detect(run) == []


def test_window_ignores_a_single_bad_batch(tmp_path):
    def stats(step):
        s = _grad_chain(0.5, 1.0)(step)
        if step == 39:  # one spike of vanished gradient in the last batch only
            s["d0"]["grad_norm"] = 1e-9
        return s

    run = make_run(tmp_path, LAYERS, stats)
    assert detect(run, kinds=["vanishing_gradients"]) == []


def test_exploding_growth_over_steps_and_divergence(tmp_path):
    def stats(step):
        return {n: {"grad_norm": 1.2**step, "update_ratio": 1e-3} for n in NAMES}

    run = make_run(tmp_path, LAYERS, stats, loss=lambda s: 1.0 * 1.1**s)
    (f,) = detect(run, kinds=["exploding_gradients"])
    assert f.severity is Severity.ERROR
    assert "growth_over_steps" in f.evidence["signals"]
    assert f.evidence["loss_diverging"] is True
    # Independent: median total norm = 2 * 1.2**median(step) for each window (4 equal layers).
    early = [2 * 1.2**s for s in range(8)]
    late = [2 * 1.2**s for s in range(20, 40)]
    expected = (sorted(late)[9] + sorted(late)[10]) / 2 / ((early[3] + early[4]) / 2)
    assert f.evidence["growth_over_steps"] == pytest.approx(expected)


def test_exploding_bound_alone_is_warning(tmp_path):
    stats = uniform_stats(NAMES, grad_norm=5e3, update_ratio=1e-3)
    run = make_run(tmp_path, LAYERS, stats)
    (f,) = detect(run, kinds=["exploding_gradients"])
    assert f.evidence["signals"] == ["above_bound"]
    assert f.severity is Severity.WARNING
    assert f.layers == tuple(NAMES)


def test_exploding_toward_input(tmp_path):
    run = make_run(tmp_path, LAYERS, _grad_chain(500.0, 1.0))
    (f,) = detect(run, kinds=["exploding_gradients"])
    assert "toward_input" in f.evidence["signals"]
    assert f.evidence["first_last_grad_ratio"] == pytest.approx(500.0)
    assert "5.0e+02 (2.7 orders of magnitude)" in f.message


def test_dying_relu_median_over_window(tmp_path):
    def stats(step):
        # d1: 80% dead on most steps; d2: 90% dead on only every 4th step (median 10%).
        return {
            "d0": {"dead_frac": 0.1},
            "d1": {"dead_frac": 0.8},
            "d2": {"dead_frac": 0.9 if step % 4 == 0 else 0.1},
        }

    run = make_run(tmp_path, LAYERS, stats)
    (f,) = detect(run, kinds=["dying_relu"])
    assert f.layers == ("d1",)
    assert f.severity is Severity.ERROR  # 0.8 >= AutoTrainer's 0.7
    assert f.evidence["dead_frac"] == {"d1": pytest.approx(0.8)}
    assert len(f.evidence["series"]["d1"]) <= 20


def test_dying_relu_ignores_leaky_and_below_threshold(tmp_path):
    layers = [dense("d0", kind="leaky"), dense("d1"), dense("out", kind="sigmoid")]
    stats = lambda s: {"d0": {"dead_frac": 1.0}, "d1": {"dead_frac": 0.4}}  # noqa: E731
    run = make_run(tmp_path, layers, stats)
    assert detect(run, kinds=["dying_relu"]) == []


def test_saturation_skips_output_layer(tmp_path):
    layers = [dense("h0", kind="tanh"), dense("h1", kind="sigmoid"), dense("out", kind="sigmoid")]
    stats = lambda s: {  # noqa: E731
        "h0": {"sat_frac": 0.6, "act_mean": 0.1},
        "h1": {"sat_frac": 0.2},
        "out": {"sat_frac": 1.0},
    }
    run = make_run(tmp_path, layers, stats)
    (f,) = detect(run, kinds=["saturation"])
    assert f.layers == ("h0",)
    assert f.severity is Severity.WARNING
    assert f.evidence["act_mean"]["h0"] == pytest.approx(0.1)


def test_nonfinite_first_step_and_layer(tmp_path):
    def stats(step):
        bad = step >= 17
        return {
            "d0": {"grad_norm": 1.0, "nonfinite": 0.0},
            "d1": {"grad_norm": math.nan if bad else 1.0, "nonfinite": 5.0 if bad else 0.0},
            "d2": {"grad_norm": math.inf if step >= 18 else 1.0, "nonfinite": 0.0},
        }

    run = make_run(tmp_path, LAYERS, stats, loss=lambda s: math.nan if s >= 18 else 1.0)
    (f,) = detect(run, kinds=["nonfinite"])
    assert f.severity is Severity.ERROR
    assert f.evidence["first_step"] == 17
    assert f.evidence["first_layer"] == "d1"
    assert f.evidence["sources"] == ["gradients"]
    assert f.evidence["affected_records"] == 23
    assert len(f.evidence["steps"]) == DETECT_THRESHOLDS.nonfinite.max_steps_listed
    # Other detectors judge only the 17 records before the NaN.
    assert len(usable_records(run.records)) == 17
    assert all(f2.kind == "nonfinite" for f2 in detect(run))


def test_nonfinite_epoch_loss_only(tmp_path):
    run = make_run(tmp_path, LAYERS, lambda s: {}, steps=0, epochs=[{"loss": math.nan}])
    (f,) = detect(run, kinds=["nonfinite"])
    assert f.evidence["epochs_with_nonfinite_loss"] == [0]


def test_too_few_records_is_silent(tmp_path):
    run = make_run(tmp_path, LAYERS, _grad_chain(1e-9, 1.0), steps=2)
    assert detect(run) == []


def _blowing_up(step):
    # Gradient norms 1e4 then 1e11, then NaN: the chapter's huge-init ReLU net under SGD.
    if step >= 2:
        return {n: {"grad_norm": math.nan, "nonfinite": 10.0, "dead_frac": 1.0} for n in NAMES}
    return {n: {"grad_norm": 10.0 ** (4 + 7 * step), "dead_frac": 1.0} for n in NAMES}


def test_a_run_nan_cut_short_is_judged_on_the_records_before_it(tmp_path):
    run = make_run(tmp_path / "cut", LAYERS, _blowing_up, steps=4, loss=lambda s: 10.0**s)
    assert len(usable_records(run.records)) == 2 < DETECT_THRESHOLDS.window.min_records
    found = {f.kind: f for f in detect(run)}
    # Only the detector whose symptom the NaN is: dead units of a dying net stay unjudged.
    assert set(found) == {"nonfinite", "exploding_gradients"}
    f = found["exploding_gradients"]
    assert f.evidence["signals"] == ["above_bound"]
    assert f.evidence["window_records"] == 2
    # Independent: the median of 1e4 and 1e11 per layer.
    for name in NAMES:
        assert f.evidence["grad_norm"][name] == pytest.approx((1e4 + 1e11) / 2)


def test_a_short_run_without_nan_stays_silent(tmp_path):
    # The same two records, but the run ends there: two batches are not a window.
    run = make_run(tmp_path / "short", LAYERS, _blowing_up, steps=2, loss=lambda s: 10.0**s)
    assert detect(run) == []
    # One record before the NaN shows no change from step to step: not judged either.
    one = make_run(tmp_path / "one", LAYERS, lambda s: _blowing_up(2 * s), steps=3)
    assert {f.kind for f in detect(one)} == {"nonfinite"}


def test_progress_from_accuracy_and_loss(tmp_path):
    run = make_run(tmp_path, LAYERS, lambda s: {}, loss=lambda s: 2.0 * 0.9**s)
    p = assess_progress(run)
    # Independent: first window = steps 0..7, last window = steps 20..39.
    start = 2.0 * (0.9**3 + 0.9**4) / 2
    end = 2.0 * (0.9**29 + 0.9**30) / 2
    assert p.loss_start == pytest.approx(start) and p.loss_end == pytest.approx(end)
    assert p.learning is True
    flat = make_run(
        tmp_path / "flat", LAYERS, lambda s: {}, epochs=[{"accuracy": 0.3}, {"accuracy": 0.35}]
    )
    assert assess_progress(flat).learning is False
    assert len(last_window(flat.records, DETECT_THRESHOLDS.window)) == 20


def test_findings_are_sorted_by_severity(tmp_path):
    def stats(step):
        s = _grad_chain(1e-6, 1.0)(step)
        s["d1"]["dead_frac"] = 0.55
        return s

    run = make_run(tmp_path, LAYERS, stats)
    found = detect(run)
    assert [f.kind for f in found] == ["vanishing_gradients", "dying_relu"]
    assert [f.severity for f in found] == [Severity.ERROR, Severity.WARNING]
    with pytest.raises(KeyError, match="No detector"):
        detect(run, kinds=["bogus"])


class _Always(WindowDetector):
    """A detector that always judges the same: the base's policy is what is tested."""

    kind = "saturation"

    def judge(self, window: RunWindow) -> Judgement:
        return Judgement(Severity.ERROR, ("d1",), "Something is off.", {"own": len(window.last)})


class _Ungated(_Always):
    gated = False


def test_window_detector_base_holds_the_shared_policy(tmp_path):
    names = NAMES
    stuck = make_run(tmp_path / "stuck", LAYERS, uniform_stats(names, grad_norm=1.0))
    (f,) = _Always()(stuck, DETECT_THRESHOLDS)
    # Registry code and default fixes, the detector's words, its evidence then the common keys.
    assert (f.code, f.kind, f.fixes) == ("GS104", "saturation", KINDS["saturation"].fixes)
    assert (f.severity, f.layers, f.message) == (Severity.ERROR, ("d1",), "Something is off.")
    assert list(f.evidence) == ["own", "window_records", "progress"]
    assert f.evidence["own"] == f.evidence["window_records"] == 20  # last half of 40 records
    assert f.evidence["progress"]["learning"] is False

    learning = make_run(
        tmp_path / "learning",
        LAYERS,
        uniform_stats(names, grad_norm=1.0),
        loss=lambda s: 2 / (1 + s),
    )
    (gated,) = _Always()(learning, DETECT_THRESHOLDS)
    assert gated.severity is Severity.INFO
    assert gated.message == "Something is off." + STILL_LEARNS
    (kept,) = _Ungated()(learning, DETECT_THRESHOLDS)
    assert (kept.severity, kept.message) == (Severity.ERROR, "Something is off.")

    short = make_run(tmp_path / "short", LAYERS, uniform_stats(names, grad_norm=1.0), steps=2)
    assert _Always()(short, DETECT_THRESHOLDS) == []  # below window.min_records: silent
