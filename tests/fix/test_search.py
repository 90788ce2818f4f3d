"""fix --auto's search on tiny networks: each round, the budget, never a copy that learns worse.

Each network is built so that one path is needed: a regression net at learning rate 30 diverges,
and neither clipping nor a tenth of the rate alone makes it learn (only both, at a hundredth);
a ReLU net with biases of -5 has every unit off. Results are checked independently: the saved
file is reloaded with plain Keras and trained, its weights and layer configs read back.
"""

from __future__ import annotations

import html
from pathlib import Path

import keras
import numpy as np
import pytest
from rich.console import Console

from gradscope.errors import GradscopeInputError
from gradscope.findings import KINDS
from gradscope.fix import apply_fix, auto_fix
from gradscope.fix.report import verification_html
from gradscope.fix.search import (
    COMBINATIONS,
    apply_candidate,
    combination_candidates,
    single_candidates,
)
from gradscope.fix.seeds import spread, unsteady, worst
from gradscope.fix.summary import print_result
from gradscope.fix.trials import TrialStats
from gradscope.trial.curve import CurvePoint, LearningCurve

FEATURES = 8


def net(lr: float, bias: float = 0.0, out: int = 1) -> keras.Model:
    keras.utils.set_random_seed(0)
    dense = {
        "kernel_initializer": "he_normal",
        "bias_initializer": keras.initializers.Constant(bias),
    }
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(16, "relu", name="h1", **dense),
            keras.layers.Dense(16, "relu", name="h2", **dense),
            keras.layers.Dense(out, "softmax" if out > 1 else None, name="out"),
        ]
    )
    loss = "sparse_categorical_crossentropy" if out > 1 else "mse"
    model.compile(keras.optimizers.SGD(lr), loss)
    return model


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, FEATURES)).astype("float32")
    return x, (x @ rng.standard_normal((FEATURES, 1)) * 10).astype("float32")


@pytest.fixture(scope="module")
def diverging(regression):
    x, y = regression
    return auto_fix(net(30.0), x, y, epochs=2, budget=300)


def test_candidates_follow_the_chapters_order() -> None:
    singles = [c.label for c in single_candidates(["dying_relu"])]
    assert singles[:2] == ["leaky_relu_activation", "elu_activation"]
    assert "zero_bias_init" in singles
    assert [c.label for c in COMBINATIONS["nonfinite"]] == [
        "clip_norm + lower_learning_rate(÷10)",
        "clip_norm + lower_learning_rate(÷100)",
        "clip_norm + lower_learning_rate(÷1000)",
    ]
    saturating = [c.fixes for c in combination_candidates(["saturation"])]
    assert all("batch_norm" in fixes and len(fixes) == 2 for fixes in saturating)


def test_a_combination_drops_parts_with_nothing_left_to_change() -> None:
    model = net(0.1, bias=-5.0)
    candidate = COMBINATIONS["dying_relu"][0]  # LeakyReLU + He init + zero biases
    fixed, applied = apply_candidate(model, candidate)
    # The LeakyReLU swap already re-initializes with He: he_init has nothing left to do.
    assert applied == ("leaky_relu_activation", "zero_bias_init")
    for name in ("h1", "h2"):
        layer = fixed.get_layer(name)
        assert np.all(keras.ops.convert_to_numpy(layer.bias) == 0.0)
    assert np.all(keras.ops.convert_to_numpy(model.get_layer("h1").bias) == -5.0)  # untouched
    activations = [type(layer).__name__ for layer in fixed.layers]
    assert activations.count("LeakyReLU") == 2


def test_zero_bias_init_revives_units_an_independent_forward_pass_sees(regression) -> None:
    x, _ = regression
    model = net(0.1, bias=-5.0)
    fixed = apply_fix(model, "zero_bias_init")
    probe = keras.Model(model.inputs[0], model.get_layer("h1").output)
    probe_fixed = keras.Model(fixed.inputs[0], fixed.get_layer("h1").output)
    kernel = keras.ops.convert_to_numpy(model.get_layer("h1").kernel)
    np.testing.assert_allclose(probe_fixed(x), np.maximum(x @ kernel, 0.0), rtol=1e-5, atol=1e-5)
    assert float(np.mean(probe(x) > 0)) < float(np.mean(probe_fixed(x) > 0))


def test_nan_needs_clipping_and_a_hundredth_of_the_rate(diverging, tmp_path) -> None:
    result = diverging
    assert result.verified and result.applied == ["clip_norm", "lower_learning_rate"]
    tried = {o.fix_id: o for o in result.outcomes if o.verification is not None}
    # The plan clips by value (its measured prior, 2 of 2, beats clipping by norm's 1 of 2).
    assert tried["clip_value"].round == "plan" and not tried["clip_value"].kept
    assert not tried["lower_learning_rate"].kept
    # Round 2: the registry's other single fix for NaN, which the plan left out.
    assert tried["clip_norm"].round == "single" and not tried["clip_norm"].kept
    assert not tried["clip_norm + lower_learning_rate(÷10)"].kept
    kept = tried["clip_norm + lower_learning_rate(÷100)"]
    assert kept.kept and kept.round == "combination"
    # The optimizer change is in the fixed file's compile config: plain Keras reads it back.
    path = tmp_path / "fixed.keras"
    result.model.save(path)
    loaded = keras.models.load_model(path)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.3)
    assert loaded.optimizer.clipnorm == pytest.approx(1.0)


def test_the_fixed_file_trains_where_the_original_diverges(diverging, regression) -> None:
    x, y = regression

    def trained_loss(model: keras.Model) -> float:
        keras.utils.set_random_seed(1)
        copy_ = keras.models.clone_model(model)
        copy_.set_weights(model.get_weights())
        copy_.compile_from_config(model.get_compile_config())
        copy_.fit(x, y, epochs=5, batch_size=32, verbose=0)
        return float(copy_.evaluate(x, y, verbose=0))

    variance = float(np.var(y))
    assert not np.isfinite(trained_loss(net(30.0)))
    assert trained_loss(diverging.model) < 0.2 * variance  # learns most of a linear target


def test_a_spent_budget_stops_after_one_candidate_and_returns_the_original(regression) -> None:
    x, y = regression
    model = net(30.0)
    result = auto_fix(model, x, y, epochs=2, budget=0)
    assert result.search.tried == 1 and result.search.stopped_by_budget
    assert "clip_norm + lower_learning_rate(÷100)" in result.search.not_tried
    assert result.model is model and not result.verified and result.applied == []
    assert "nonfinite" in result.search.open_kinds


def test_dead_relus_stay_dead_after_a_swap_and_revive_with_zero_biases(regression) -> None:
    x, _ = regression
    labels = np.argmax(x[:, :3], axis=1)  # a learnable three-class target
    result = auto_fix(net(0.1, bias=-5.0, out=3), x, labels, epochs=2, budget=300)
    assert result.verified
    kept = [o for o in result.outcomes if o.kept]
    # An activation swap keeps the -5 biases, so the units stay off; zeroing them is the repair.
    assert [o.fix_id for o in kept] == ["zero_bias_init"]
    swaps = [o for o in result.outcomes if o.fix_id.endswith("_activation")]
    assert swaps and not any(o.kept for o in swaps)
    assert "dying_relu" in kept[0].verification.resolved
    before, after = result.overall.before, result.overall.after
    assert before.learned_accuracy < 0.5 < after.learned_accuracy
    # Independent check: the fixed model's first hidden layer is alive on the data.
    hidden = keras.Model(result.model.inputs[0], result.model.get_layer("h1").output)
    assert float(np.mean(np.asarray(hidden(x)) > 0)) > 0.2


def test_a_rate_far_too_low_is_found_and_raised_by_the_plan(regression) -> None:
    x, _ = regression
    labels = np.argmax(x[:, :3], axis=1)
    model = net(1e-3, out=3)  # healthy, but SGD at 1e-3 barely moves in a short trial
    result = auto_fix(model, x, labels, epochs=2, budget=300)
    # slow_convergence names it in the original's trial; its first fix is the repair.
    first = result.outcomes[0]
    assert first.round == "plan" and first.fixes == ("raise_learning_rate",) and first.kept
    assert "slow_convergence" in first.verification.resolved
    assert result.verified and result.overall.learns_better
    assert float(result.model.optimizer.learning_rate) == pytest.approx(1e-2)


def test_a_curve_that_does_not_move_gets_the_learning_rate_round(regression) -> None:
    # The last round is for a flat curve no detector names: without the slow_convergence
    # detector, the same net has no finding at all.
    x, _ = regression
    labels = np.argmax(x[:, :3], axis=1)
    model = net(1e-3, out=3)
    kinds = [k for k in KINDS if k != "slow_convergence"]
    result = auto_fix(model, x, labels, epochs=2, budget=300, kinds=kinds)
    assert result.overall.before.findings == ()
    rates = [o for o in result.outcomes if o.round == "learning rate"]
    assert rates and rates[0].fix_id == "lower_learning_rate(÷10)" and not rates[0].kept
    kept = [o for o in result.outcomes if o.kept]
    assert kept and kept[-1].fixes == ("raise_learning_rate",)
    assert result.verified and result.overall.learns_better
    # The file carries the raised rate: plain Keras reads a multiple of 1e-3 back.
    rate = float(result.model.optimizer.learning_rate)
    assert rate in (pytest.approx(1e-2), pytest.approx(1e-1))


def test_unknown_kinds_are_a_one_line_input_error(regression) -> None:
    x, y = regression
    with pytest.raises(GradscopeInputError, match="Unknown finding kinds \\['no_such_kind'\\]"):
        auto_fix(net(0.1), x, y, kinds=["nonfinite", "no_such_kind"])


def trial_with(start: float, final: float, acc: float | None) -> TrialStats:
    points = (
        CurvePoint(0, 0.0, start, None if acc is None else 0.3),
        CurvePoint(8, 1.0, final, acc),
    )
    return TrialStats(Path("."), (final,), final, {}, None, None, curve=LearningCurve(points, 256))


def test_trials_that_end_far_apart_are_unsteady_and_the_worst_is_searched() -> None:
    # Final scores of the zoo's CNN at Adam(0.3) on three seeds, and of its healthy LSTM.
    lottery = [trial_with(1.365, 0.023, 0.992), trial_with(1.365, 0.41, 0.828),
               trial_with(1.365, 0.717, 0.605)]  # fmt: skip
    healthy = [trial_with(0.694, 0.159, 0.945), trial_with(0.694, 0.229, 0.895),
               trial_with(0.694, 0.15, 0.938)]  # fmt: skip
    loss, acc = spread(lottery)
    assert loss == pytest.approx((0.717 - 0.023) / (1.365 - 0.023))
    assert acc == pytest.approx(0.992 - 0.605)
    assert unsteady(lottery) and worst(lottery) == 2
    assert spread(healthy)[0] == pytest.approx((0.229 - 0.15) / (0.694 - 0.15))
    assert not unsteady(healthy)
    # Without labels the loss alone decides; a loss that is not finite is as far apart as can be.
    assert unsteady([trial_with(1.0, 0.1, None), trial_with(1.0, 0.5, None)])
    assert not unsteady([trial_with(1.0, 0.1, None), trial_with(1.0, 0.2, None)])
    assert unsteady([trial_with(1.0, 0.1, None), trial_with(1.0, float("nan"), None)])
    assert worst([trial_with(1.0, 0.1, None), trial_with(1.0, float("nan"), None)]) == 1


def test_a_net_that_learns_on_one_seed_and_not_the_next_gets_a_steadier_rate(regression) -> None:
    # Adam at 0.3 with no finding in any trial: the trials on three seeds end 0.55-0.87 apart.
    x, _ = regression
    labels = np.argmax(x[:, :3], axis=1)

    def adam_net(lr: float) -> keras.Model:
        model = net(0.1, out=3)
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
        return model

    result = auto_fix(adam_net(0.3), x, labels, epochs=2, budget=300)
    search = result.search
    # No trial found anything: the spread of the three seeds alone sends the search.
    assert search.seeds == (0, 1, 2) and search.targets == ("unsteady_learning",)
    assert f"ended far apart: the search trained on the worst, seed {search.seed}" in (
        search.describe()
    )
    # The learning curves and the seeds, in --json, the terminal and the HTML alike.
    doc = result.to_json()
    assert doc["search"]["seeds"] == [0, 1, 2] and doc["search"]["seed"] == search.seed
    final = result.overall.after.curve.final
    assert doc["curves"]["after"]["points"][-1]["loss"] == pytest.approx(final.loss)
    console = Console(record=True, width=200)
    print_result(result, console)
    text = console.export_text()
    assert search.describe() in text and "Learning, scored on" in text
    assert f"{final.loss:.3g}" in text
    page = verification_html(result)
    assert html.escape(search.describe()) in page and "data-fix-curves" in page
    kept = [o for o in result.outcomes if o.kept]
    assert kept and kept[0].round == "steadier steps" and "lower_learning_rate" in kept[0].fixes
    assert "unsteady_learning" in kept[0].verification.resolved
    rate = float(result.model.optimizer.learning_rate)
    assert rate == pytest.approx(0.03) or rate == pytest.approx(0.003)

    # Independent check with plain Keras: three seeds of two epochs each (one traced copy,
    # reset between runs), the fixed rate's worst run beats the original's worst, and its runs
    # lie closer together.
    def accuracies(model: keras.Model) -> list[float]:
        copy_ = keras.models.clone_model(model)
        copy_.compile_from_config(model.get_compile_config())
        out = []
        for seed in range(3):
            keras.utils.set_random_seed(seed)
            copy_.set_weights(model.get_weights())
            for var in copy_.optimizer.variables:  # Adam's step count and moments, not its rate
                if "learning_rate" not in var.path:
                    var.assign(keras.ops.zeros_like(var))
            copy_.fit(x, labels, epochs=2, batch_size=32, verbose=0)
            pred = keras.ops.convert_to_numpy(copy_(x, training=False))
            out.append(float(np.mean(np.argmax(pred, 1) == labels)))
        return out

    before, after = accuracies(adam_net(0.3)), accuracies(result.model)
    assert min(after) > min(before) + 0.05
    assert max(after) - min(after) < max(before) - min(before)
