"""Static rules on model descriptions: Keras 3 models, Keras 2 style config dicts."""

import keras
import numpy as np
import pytest

from gradscope.config import StaticThresholds
from gradscope.detect.static import static_findings
from gradscope.findings import Severity
from gradscope.model.extract import spec_from_model
from gradscope.model.spec import parse_initializer, spec_from_config
from gradscope.remedies import CATALOG


def seq(*layers, optimizer=None, n_in=16):
    model = keras.Sequential([keras.Input((n_in,)), *layers])
    if optimizer is not None:
        model.compile(optimizer, "mse")
    return model


def kinds(findings, at_least=Severity.INFO):
    return {f.kind: f for f in findings if f.severity >= at_least}


def D(units=32, act=None, init="glorot_uniform"):
    return keras.layers.Dense(units, activation=act, kernel_initializer=init)


@pytest.mark.parametrize(
    ("stored", "family", "scale", "mode"),
    [
        (
            {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in"}},
            "he",
            2.0,
            "fan_in",
        ),
        (
            {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg"}},
            "glorot",
            1.0,
            "fan_avg",
        ),
        (
            {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_in"}},
            "lecun",
            1.0,
            "fan_in",
        ),
        (
            {"class_name": "VarianceScaling", "config": {"scale": 3.0, "mode": "fan_out"}},
            "variance_scaling",
            3.0,
            "fan_out",
        ),
        ("he_uniform", "he", 2.0, "fan_in"),
        (
            {"module": "keras.initializers", "class_name": "LecunNormal", "config": {}},
            "lecun",
            1.0,
            "fan_in",
        ),
    ],
)
def test_initializer_families(stored, family, scale, mode):
    spec = parse_initializer(stored)
    assert (spec.family, spec.scale, spec.mode) == (family, scale, mode)


def test_fixed_scale_stddev():
    assert (
        parse_initializer({"class_name": "RandomNormal", "config": {"stddev": 1.0}}).stddev == 1.0
    )
    uni = parse_initializer(
        {"class_name": "RandomUniform", "config": {"minval": -1.0, "maxval": 1.0}}
    )
    assert uni.stddev == pytest.approx(2 / 12**0.5)  # std of U(-1, 1)


def test_effective_activation_through_batchnorm():
    model = seq(D(), keras.layers.BatchNormalization(), keras.layers.ReLU(), D(4, "softmax"))
    spec = spec_from_model(model)
    first = spec.kernel_layers[0]
    assert first.effective_activation == "relu"
    assert first.normalized_after is True
    assert first.fan_in == 16
    assert spec.kernel_layers[1].fan_in == 32


def test_relu_glorot_severity_depends_on_depth():
    th = StaticThresholds()
    shallow = static_findings(spec_from_model(seq(D(act="relu"), D(act="relu"), D(3, "softmax"))))
    f = kinds(shallow)["init_activation_mismatch"]
    assert f.severity is Severity.INFO and len(f.layers) == 2 and f.fixes == ("he_init",)
    deep_layers = [D(act="relu") for _ in range(th.mismatch_warning_depth)]
    deep = static_findings(spec_from_model(seq(*deep_layers, D(3, "softmax"))))
    assert kinds(deep)["init_activation_mismatch"].severity is Severity.WARNING


def test_healthy_configs_have_no_static_warnings():
    healthy = [
        seq(*[D(act="relu", init="he_normal") for _ in range(8)], D(3, "softmax")),
        seq(
            *[D(act="selu", init="lecun_normal") for _ in range(8)],
            keras.layers.AlphaDropout(0.1),
            D(3, "softmax"),
        ),
        seq(D(act="tanh"), D(act="tanh"), D(3, "softmax")),
        # MobileNetV3's pairing: hard_silu (hard_swish) with He init is ReLU-like, not saturating.
        seq(*[D(act="hard_silu", init="he_normal") for _ in range(8)], D(3, "softmax")),
        seq(
            keras.layers.Reshape((4, 4)),
            keras.layers.LSTM(8),
            D(1),
            optimizer=keras.optimizers.Adam(clipnorm=1.0),
        ),
    ]
    for model in healthy:
        assert kinds(static_findings(spec_from_model(model))) == {}


def test_chapter_sick_net_static():
    sick = seq(
        *[D(64, "sigmoid", keras.initializers.RandomNormal(stddev=1.0)) for _ in range(10)],
        D(10, "softmax"),
        n_in=64,
    )
    found = kinds(static_findings(spec_from_model(sick)), Severity.WARNING)
    assert set(found) == {"init_activation_mismatch", "deep_saturating_stack"}
    mismatch = found["init_activation_mismatch"]
    # Independent: variance gain = stddev^2 * fan_in / 1 (sigmoid ideal) = 64 per hidden layer.
    gains = mismatch.evidence["variance_gain"]
    assert len(gains) == 10 and all(v == pytest.approx(64.0) for v in gains.values())
    assert found["deep_saturating_stack"].evidence["depth"] == 10
    assert all(fix in CATALOG for f in found.values() for fix in f.fixes)


def test_saturating_stack_broken_by_batchnorm():
    layers = []
    for _ in range(3):
        layers += [D(act="tanh"), D(act="tanh")]
        layers.append(keras.layers.BatchNormalization())
    model = seq(*layers, D(3, "softmax"))
    assert "deep_saturating_stack" not in kinds(static_findings(spec_from_model(model)))
    threshold = StaticThresholds(saturating_stack_depth=2)
    (f,) = [
        x
        for x in static_findings(spec_from_model(model), threshold)
        if x.kind == "deep_saturating_stack"
    ]
    assert f.evidence["depth"] == 2


def test_selu_misconfigured_problems():
    model = seq(
        D(act="selu", init="lecun_normal"),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.2),
        D(act="selu", init="glorot_uniform"),
        D(3, "softmax"),
    )
    found = kinds(static_findings(spec_from_model(model)), Severity.WARNING)
    selu = found["selu_misconfigured"]
    assert set(selu.evidence["problems"]) == {"batch_norm", "dropout"}
    assert {"remove_batch_norm", "alpha_dropout"} <= set(selu.fixes)
    mismatch = found["init_activation_mismatch"]
    assert len(mismatch.layers) == 1
    assert mismatch.evidence["layers"] == {mismatch.layers[0]: "glorot_uniform"}  # user name
    assert mismatch.fixes == ("lecun_init",)


def test_selu_with_skip_connection():
    inp = keras.Input((8,))
    a = keras.layers.Dense(8, activation="selu", kernel_initializer="lecun_normal")(inp)
    b = keras.layers.Dense(8, activation="selu", kernel_initializer="lecun_normal")(a)
    out = keras.layers.Dense(1)(keras.layers.Add()([a, b]))
    found = kinds(static_findings(spec_from_model(keras.Model(inp, out))))
    assert "skip_connections" in found["selu_misconfigured"].evidence["problems"]


def test_missing_clipping():
    rnn = [keras.layers.Reshape((4, 4)), keras.layers.SimpleRNN(8), D(1)]
    no_clip = kinds(static_findings(spec_from_model(seq(*rnn, optimizer="adam"))))
    assert no_clip["missing_clipping"].severity is Severity.WARNING
    uncompiled = kinds(
        static_findings(
            spec_from_model(
                seq(
                    keras.layers.Reshape((4, 4)),
                    keras.layers.Bidirectional(keras.layers.GRU(4)),
                    D(1),
                )
            )
        )
    )
    assert uncompiled["missing_clipping"].severity is Severity.INFO
    clipped = seq(
        *[keras.layers.Reshape((4, 4)), keras.layers.SimpleRNN(8), D(1)],
        optimizer=keras.optimizers.SGD(global_clipnorm=1.0),
    )
    assert "missing_clipping" not in kinds(static_findings(spec_from_model(clipped)))


def test_keras22_list_config_and_nested_model():
    vs = {
        "class_name": "VarianceScaling",
        "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"},
    }
    config = {
        "class_name": "Sequential",
        "config": [
            {
                "class_name": "Dense",
                "config": {
                    "name": "d1",
                    "units": 8,
                    "activation": "relu",
                    "kernel_initializer": vs,
                    "batch_input_shape": [None, 4],
                },
            },
            {
                "class_name": "Sequential",
                "config": {
                    "name": "inner",
                    "layers": [
                        {
                            "class_name": "Dense",
                            "config": {
                                "name": "d2",
                                "units": 8,
                                "activation": "relu",
                                "kernel_initializer": vs,
                            },
                        },
                    ],
                },
            },
            {
                "class_name": "Dense",
                "config": {
                    "name": "out",
                    "units": 2,
                    "activation": "softmax",
                    "kernel_initializer": vs,
                },
            },
        ],
    }
    spec = spec_from_config(config, {"class_name": "SGD", "config": {"lr": 0.1, "clipnorm": 1.0}})
    assert [x.name for x in spec.layers] == ["d1", "inner/d2", "out"]
    assert spec.input_shape == (4,)
    assert spec.optimizer.learning_rate == 0.1 and spec.optimizer.clips
    f = kinds(static_findings(spec))["init_activation_mismatch"]
    assert f.layers == ("d1", "inner/d2")


def test_selu_inputs_must_be_standardized():
    from gradscope.detect.static import selu_input_findings

    model = seq(
        D(act="selu", init="lecun_normal"),
        D(act="selu", init="lecun_normal"),
        D(3, "softmax"),
        n_in=3,
    )
    spec = spec_from_model(model)
    rng = np.random.default_rng(0)
    good = rng.standard_normal((500, 3))
    assert selu_input_findings(spec, good.mean(0), good.std(0)) == []
    raw = good * [1.0, 30.0, 1.0] + [0.0, 0.0, 5.0]  # one wide feature, one shifted feature
    (f,) = selu_input_findings(spec, raw.mean(0), raw.std(0))
    assert f.kind == "selu_misconfigured" and f.fixes == ("standardize_inputs",)
    assert f.evidence["max_abs_feature_mean"] == pytest.approx(abs(raw[:, 2].mean()))
    assert f.evidence["features_with_std_out_of_range"] == 1
    relu = spec_from_model(seq(D(act="relu", init="he_normal"), D(3, "softmax"), n_in=3))
    assert selu_input_findings(relu, raw.mean(0), raw.std(0)) == []
