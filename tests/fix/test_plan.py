"""plan_fixes: order, deduplication, alternatives, and skipping fixes that do not apply."""

from __future__ import annotations

import keras

from gradscope.demo import sick_model
from gradscope.findings import Finding, Severity
from gradscope.fix import Stage, plan_fixes

VANISHING = Finding(
    "GS101",
    "vanishing_gradients",
    Severity.ERROR,
    ("hidden_1",),
    "vanishing",
    {},
    ("he_init", "relu_activation", "batch_norm", "selu_activation", "glorot_init"),
)
EXPLODING = Finding(
    "GS102",
    "exploding_gradients",
    Severity.WARNING,
    (),
    "exploding",
    {},
    ("clip_norm", "clip_value", "lower_learning_rate", "batch_norm", "standardize_inputs"),
)


def compiled_sick(clipnorm: float | None = None) -> keras.Model:
    model = sick_model(depth=3, width=8)
    model.compile(keras.optimizers.SGD(0.05, clipnorm=clipnorm), "sparse_categorical_crossentropy")
    return model


def test_plan_ranks_fits_first_and_deduplicates():
    plan = plan_fixes([EXPLODING, VANISHING, VANISHING], compiled_sick())
    ids = plan.fix_ids
    # The swap that acts on the sigmoid layers first; then the generic fixes by their measured
    # prior (clipping by value 2/2 > lower_learning_rate 1/4 > batch_norm 1/5, one clipping in a
    # plan; reports/fix_priors.md).
    assert ids == ["relu_activation", "clip_value", "lower_learning_rate", "batch_norm"]
    assert [s.fit for s in plan.steps] == ["targets", "generic", "generic", "generic"]
    priors = [s.prior for s in plan.steps[1:]]
    assert priors == sorted(priors, reverse=True)
    assert plan.steps[0].stage is Stage.INIT_ACTIVATION
    bn = plan.steps[3]
    assert set(bn.answers) == {"vanishing_gradients", "exploding_gradients"}
    assert all(s.reason and "\n" not in s.reason for s in plan.steps)
    assert all(s.why and "\n" not in s.why for s in plan.steps)
    assert plan.steps[0].why.startswith("3 sigmoid hidden layer(s)")
    skipped = dict(plan.skipped)
    # No ReLU layer in a sigmoid net: He init has nothing to act on.
    assert skipped["he_init"].startswith("does not fit this model: no ReLU-family hidden layers")
    assert "alternative to relu_activation" in skipped["selu_activation"]
    # clip_norm became redundant once clip_value is planned.
    assert "already clips" in skipped["clip_norm"]
    assert [f for f, _ in plan.manual] == ["standardize_inputs"]
    lower = plan.steps[ids.index("lower_learning_rate")]
    assert lower.advice and "ReduceLROnPlateau" in lower.advice
    doc = plan.to_json()["steps"][0]
    assert doc["why"] == plan.steps[0].why and doc["fit"] == "targets" and doc["prior"] == 1.0


def test_plan_skips_clipping_when_already_clipping_and_ignores_info():
    plan = plan_fixes([EXPLODING], compiled_sick(clipnorm=1.0))
    assert "clip_norm" not in plan.fix_ids and "clip_value" not in plan.fix_ids
    assert "already clips" in dict(plan.skipped)["clip_norm"]
    info = Finding("GS101", "vanishing_gradients", Severity.INFO, fixes=("relu_activation",))
    assert plan_fixes([info], compiled_sick()).steps == ()


def test_plan_does_not_modify_model():
    model = compiled_sick()
    before = [w.copy() for w in model.get_weights()]
    plan_fixes([VANISHING, EXPLODING], model)
    assert all((a == b).all() for a, b in zip(before, model.get_weights(), strict=True))
    assert model.layers[0].activation.__name__ == "sigmoid"
    assert model.optimizer.get_config()["clipnorm"] is None
