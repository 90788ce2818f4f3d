"""verify/compare: the verdict logic, and trials on synthetic data matching the model."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from gradscope.findings import Finding, Severity
from gradscope.fix import apply_fix, fix_model, trial_data
from gradscope.fix.verify import TrialStats, compare


def stats(loss: float, kinds: tuple[str, ...] = (), ratio: float = 1.0) -> TrialStats:
    findings = tuple(Finding("GS", k, Severity.ERROR) for k in kinds)
    return TrialStats(
        Path("."), (loss,), loss, {"a": ratio, "b": 1.0}, ratio, 1 / ratio, findings=findings
    )


def test_compare_requires_targets_gone_and_loss_not_worse():
    before = stats(2.3, ("vanishing_gradients",), ratio=1e-6)
    good = compare(before, stats(1.0, ratio=0.5))
    assert good.verified and good.resolved == ("vanishing_gradients",)
    doc = good.to_json()
    assert "ratio_improvement" not in doc  # one number: each trial's ratio, before and after
    assert doc["before"]["first_last_grad_ratio"] == 1e-6
    assert doc["after"]["first_last_grad_ratio"] == 0.5
    assert doc["before"]["first_last_grad_ratio_text"] == "1.0e-06 (6.0 orders of magnitude)"
    still = compare(before, stats(1.0, ("vanishing_gradients",)))
    assert not still.verified and still.remaining == ("vanishing_gradients",)
    worse = compare(before, stats(2.5))
    assert not worse.verified and not worse.loss_ok
    within_noise = compare(stats(2.0), stats(2.01))  # 0.5 % worse: inside the 1 % tolerance
    assert within_noise.loss_ok
    nan = compare(before, stats(float("nan")))
    assert not nan.verified


def test_trial_data_matches_model_and_loss():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    x, y = trial_data(model, n=64)
    assert x.shape == (64, 5) and y.shape == (64,) and int(y.max()) < 4
    model.compile("sgd", "mse")
    _, y2 = trial_data(model, n=16)
    assert y2.shape == (16, 4) and y2.dtype.kind == "f"


def test_fix_model_on_synthetic_data(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(16, activation="sigmoid") for _ in range(6)]
        + [keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    result = fix_model(model, ["relu_activation"], steps=12, run_dir=tmp_path)
    assert result.applied == ["relu_activation"]
    assert result.model.layers[0].activation.__name__ == "relu"
    # Each trial is a run directory of its own under before/ and after/.
    assert result.overall.before.run_dir.parent == tmp_path / "before"
    assert result.overall.after.run_dir.parent == tmp_path / "after"
    assert (result.overall.before.run_dir / "stats.jsonl").exists()
    assert (result.overall.after.run_dir / "stats.jsonl").exists()
    b, a = result.overall.before.first_last_grad_ratio, result.overall.after.first_last_grad_ratio
    assert b is not None and a is not None and abs(np.log10(a)) < abs(np.log10(b))
    assert len(result.overall.before.losses) == 12
    # The given model was neither trained nor changed.
    assert all(np.array_equal(p, q) for p, q in zip(before, model.get_weights(), strict=True))
    assert apply_fix(model, "relu_activation") is not model
