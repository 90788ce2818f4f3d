"""Fix ranking: what fits the model's layers first, then what verified most often; with reasons."""

from __future__ import annotations

import io
import re
from pathlib import Path

import keras
import pytest
from rich.console import Console
from synthetic_runs import make_run

from gradscope.data.schema import LayerInfo
from gradscope.detect import detect
from gradscope.detect.rank import Fit, ModelTraits, rank_fixes, ranked_ids
from gradscope.findings import KINDS, Finding, Severity
from gradscope.fix import plan_fixes
from gradscope.fix.summary import print_plan
from gradscope.model.extract import spec_from_model
from gradscope.remedies import CATALOG, MEASURED
from gradscope.scenarios import mlp

ROOT = Path(__file__).resolve().parents[2]
#: What the detectors list before ranking: the kind registry's recommended fixes.
VANISHING_FIXES = KINDS["vanishing_gradients"].fixes
EXPLODING_FIXES = KINDS["exploding_gradients"].fixes
VANISHING = Finding(
    "GS101", "vanishing_gradients", Severity.ERROR, ("dense",), "v", {}, VANISHING_FIXES
)


def traits_of(model: keras.Model) -> ModelTraits:
    return ModelTraits.from_spec(spec_from_model(model))


def test_sigmoid_stack_gets_the_activation_swap_first() -> None:
    model = mlp(6, 16, "sigmoid", "glorot_uniform")
    assert VANISHING_FIXES[0] == "he_init"  # what the detector lists, before ranking
    ranked = rank_fixes(VANISHING_FIXES, traits_of(model))
    top = ranked[0]
    assert (top.fix_id, top.fit) == ("relu_activation", Fit.TARGETS)
    assert top.fit_reason == "6 sigmoid hidden layer(s): ReLU does not saturate"
    by_id = {r.fix_id: r for r in ranked}
    assert by_id["he_init"].fit is Fit.NO_FIT
    assert (
        by_id["he_init"].fit_reason
        == "no ReLU-family hidden layers (hidden activations: 6 sigmoid)"
    )
    assert (
        by_id["glorot_init"].fit_reason
        == "its sigmoid/tanh layers already use glorot initialization"
    )
    # Every fix that fits ranks above every fix that does not.
    fits = [r.fit for r in ranked]
    assert fits == sorted(fits)
    plan = plan_fixes([VANISHING], model)
    assert plan.fix_ids[0] == "relu_activation"
    assert "he_init" not in plan.fix_ids and "he_init" in dict(plan.skipped)


def test_relu_net_with_bad_init_gets_he_init_first() -> None:
    model = mlp(6, 16, "relu", keras.initializers.RandomNormal(stddev=0.01))
    ranked = rank_fixes(VANISHING_FIXES, traits_of(model))
    assert (ranked[0].fix_id, ranked[0].fit) == ("he_init", Fit.TARGETS)
    assert ranked[0].fit_reason == "6 ReLU-family layer(s) initialized with RandomNormal"
    assert {r.fix_id: r for r in ranked}["relu_activation"].fit is Fit.NO_FIT
    assert plan_fixes([VANISHING], model).fix_ids[0] == "he_init"
    # The same net with He init already: nothing for he_init to do.
    healthy = rank_fixes(["he_init"], traits_of(mlp(6, 16, "relu", "he_normal")))
    assert healthy[0].fit is Fit.NO_FIT and "already use he" in healthy[0].fit_reason


def test_recurrent_net_gets_clipping_first() -> None:
    rnn = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.LSTM(8),
            keras.layers.Dense(4, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    rnn.compile("adam", "sparse_categorical_crossentropy")
    ranked = rank_fixes(EXPLODING_FIXES, traits_of(rnn))
    # Both clippings act on a recurrent net; between them the measured prior decides.
    clipping = [r for r in ranked if r.fit is Fit.TARGETS]
    assert [r.fix_id for r in ranked[:2]] == [r.fix_id for r in clipping]
    assert {r.fix_id for r in clipping} == {"clip_norm", "clip_value"}
    assert "recurrent" in ranked[0].fit_reason
    # A feed-forward net without clipping: clipping is generic there, not the specific cure.
    ff = rank_fixes(["clip_norm"], traits_of(mlp(3, 8, "relu", "he_normal")))
    assert ff[0].fit is Fit.GENERIC
    clipped = mlp(3, 8, "relu", "he_normal", optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0))
    assert rank_fixes(["clip_norm"], traits_of(clipped))[0].fit is Fit.NO_FIT


def test_priors_are_the_measured_counts_of_the_report() -> None:
    # reports/fix_priors.md is the benchmark's output; the catalog must cite its numbers.
    text = (ROOT / "reports" / "fix_priors.md").read_text(encoding="utf-8")
    table = text.split("## Per fix", 1)[1].split("##", 1)[0]
    counts = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^\| (\w+) \| (\d+) / (\d+) \|", table, flags=re.M)
    }
    assert counts and {f: c for f, c in counts.items() if c[1]} == dict(MEASURED)
    for fix_id, (verified, tried) in MEASURED.items():
        fix = CATALOG[fix_id]
        assert fix.prior == pytest.approx(verified / tried)
        assert fix.prior_note == f"verified in {verified} of {tried} benchmark trials"
    assert CATALOG["standardize_inputs"].prior is None  # advice: never measured


def test_ties_in_fit_are_broken_by_prior_then_recommendation_order() -> None:
    traits = ModelTraits(hidden=(("relu", "he"),) * 3)  # nothing specific to fix
    ranked = rank_fixes(["lower_learning_rate", "batch_norm", "clip_norm"], traits)
    priors = {f: CATALOG[f].prior for f in ("lower_learning_rate", "batch_norm", "clip_norm")}
    assert [r.fix_id for r in ranked] == sorted(priors, key=lambda f: -priors[f])
    # ranked_ids drops what cannot act on the model; the plan lists those as skipped instead.
    assert ranked_ids(["he_init", "batch_norm"], traits) == ("batch_norm",)


def _layer(name: str, act: str, init: str) -> LayerInfo:
    return LayerInfo(name, "Dense", act, act, init, 16, 272, True, True, ("kernel", "bias"))


@pytest.mark.parametrize(
    ("act", "init", "first", "dropped"),
    [
        ("sigmoid", "glorot_uniform", "relu_activation", "he_init"),
        ("relu", "RandomNormal", "he_init", "relu_activation"),
    ],
)
def test_detected_findings_rank_fixes_for_the_run_model(tmp_path, act, init, first, dropped):
    layers = [_layer(f"h{i}", act, init) for i in range(4)] + [
        _layer("out", "softmax", "glorot_uniform")
    ]
    names = [x.name for x in layers]
    run = make_run(
        tmp_path / "run",
        layers,
        lambda s: {n: {"grad_norm": 1e-7 if n == "h0" else 0.5} for n in names},
        steps=12,
    )
    (vanishing,) = [f for f in detect(run) if f.kind == "vanishing_gradients"]
    assert vanishing.fixes[0] == first
    assert dropped not in vanishing.fixes
    assert set(vanishing.fixes) < set(VANISHING_FIXES)


def test_plan_printout_and_json_say_why() -> None:
    plan = plan_fixes([VANISHING], mlp(6, 16, "sigmoid", "glorot_uniform"))
    out = io.StringIO()
    print_plan(plan, Console(file=out, width=300))
    text = out.getvalue()
    assert "1. relu_activation:" in text
    assert "why here: 6 sigmoid hidden layer(s): ReLU does not saturate; verified in 2 of 2" in text
    assert "skipped he_init: does not fit this model: no ReLU-family hidden layers" in text
    step = plan.to_json()["steps"][0]
    assert step["why"] == plan.steps[0].why and step["prior"] == CATALOG["relu_activation"].prior
