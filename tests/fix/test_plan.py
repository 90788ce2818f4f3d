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


def test_plan_orders_stages_and_deduplicates():
    plan = plan_fixes([EXPLODING, VANISHING, VANISHING], compiled_sick())
    ids = plan.fix_ids
    assert ids == ["relu_activation", "batch_norm", "clip_norm", "lower_learning_rate"]
    stages = [s.stage for s in plan.steps]
    assert stages == sorted(stages) and stages[0] is Stage.INIT_ACTIVATION
    bn = plan.steps[1]
    assert set(bn.answers) == {"vanishing_gradients", "exploding_gradients"}
    assert all(s.reason and "\n" not in s.reason for s in plan.steps)
    skipped = dict(plan.skipped)
    # No ReLU layer in a sigmoid net: He init alone does not apply.
    assert "he_init" in skipped and "no layer" in skipped["he_init"]
    assert "alternative to relu_activation" in skipped["selu_activation"]
    # clip_value became redundant once clip_norm is planned.
    assert "already clips" in skipped["clip_value"]
    assert [f for f, _ in plan.manual] == ["standardize_inputs"]
    assert plan.steps[-1].advice and "ReduceLROnPlateau" in plan.steps[-1].advice


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
