"""Transforms on Sequential and Functional models: structure, configs, weights, no mutation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from gradscope.fix import FixNotApplicable, UnsupportedModelError, apply_fix, apply_fixes
from gradscope.model.graph import layer_activation
from gradscope.model.rebuild import clone_with_weights
from gradscope.model.spec import parse_activation


def sequential() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="sigmoid", name="h1"),
            keras.layers.Dropout(0.1, name="drop"),
            keras.layers.Dense(16, activation="tanh", name="h2"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ],
        name="seq",
    )
    model.compile(
        keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def functional() -> keras.Model:
    inp = keras.Input((8,), name="x")
    a = keras.layers.Dense(16, activation="sigmoid", name="h1")(inp)
    b = keras.layers.Dense(16, name="h2")(a)
    b = keras.layers.Activation("tanh", name="act")(b)
    b = keras.layers.Dropout(0.1, name="drop")(b)
    c = keras.layers.Concatenate(name="cat")([a, b])
    out = keras.layers.Dense(3, activation="softmax", name="out")(c)
    model = keras.Model(inp, out, name="fun")
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


BUILDERS = {"sequential": sequential, "functional": functional}


def snapshot(model: keras.Model) -> tuple[str, list[np.ndarray], str]:
    return (
        json.dumps(model.get_config(), sort_keys=True, default=str),
        [w.copy() for w in model.get_weights()],
        json.dumps(model.get_compile_config(), sort_keys=True, default=str),
    )


def assert_unchanged(model: keras.Model, snap: tuple[str, list[np.ndarray], str]) -> None:
    config, weights, compile_config = snapshot(model)
    assert config == snap[0]
    assert compile_config == snap[2]
    assert len(weights) == len(snap[1])
    for now, before in zip(weights, snap[1], strict=True):
        np.testing.assert_array_equal(now, before)


def by_name(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return {layer.name: layer for layer in model.layers}


def same_weights(a: keras.layers.Layer, b: keras.layers.Layer) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


@pytest.mark.parametrize("kind", BUILDERS)
def test_relu_activation_swaps_hidden_only_with_he_init(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    fixed = apply_fix(model, "relu_activation", seed=3)
    assert fixed is not model
    assert_unchanged(model, snap)
    new, old = by_name(fixed), by_name(model)
    assert new["h1"].activation.__name__ == "relu"
    init = new["h1"].get_config()["kernel_initializer"]
    assert init["class_name"] == "VarianceScaling"
    assert init["config"]["scale"] == 2.0 and init["config"]["mode"] == "fan_in"
    # Re-initialized kernel differs; bias and the untouched output layer are copied.
    assert not np.array_equal(new["h1"].kernel.numpy(), old["h1"].kernel.numpy())
    np.testing.assert_array_equal(new["h1"].bias.numpy(), old["h1"].bias.numpy())
    assert same_weights(new["out"], old["out"])
    assert new["out"].activation.__name__ == "softmax"
    if kind == "functional":
        # The standalone Activation layer is swapped and the Dense feeding it re-initialized.
        assert new["act"].get_config()["activation"] == "relu"
        assert new["h2"].get_config()["kernel_initializer"]["config"]["scale"] == 2.0
        assert new["h2"].get_config()["activation"] == "linear"
    else:
        assert new["h2"].activation.__name__ == "relu"
    assert (
        fixed.compiled and fixed.get_compile_config()["loss"] == model.get_compile_config()["loss"]
    )
    # He init variance: std of a re-initialized kernel ~ sqrt(2 / fan_in), independent check.
    big = keras.Sequential(
        [keras.Input((400,)), keras.layers.Dense(400, activation="tanh"), keras.layers.Dense(2)]
    )
    he = apply_fix(big, "relu_activation", seed=1)
    std = float(np.std(he.layers[0].kernel.numpy()))
    assert std == pytest.approx(np.sqrt(2 / 400), rel=0.05)


@pytest.mark.parametrize("kind", BUILDERS)
def test_leaky_relu_inserts_layer_with_alpha(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    fixed = apply_fix(model, "leaky_relu_activation", alpha=0.1)
    assert_unchanged(model, snap)
    new = by_name(fixed)
    assert new["h1"].get_config()["activation"] == "linear"
    assert isinstance(new["h1_leaky_relu"], keras.layers.LeakyReLU)
    assert new["h1_leaky_relu"].negative_slope == pytest.approx(0.1)
    x = np.full((1, 8), -1.0, dtype="float32")
    assert np.isfinite(fixed.predict(x, verbose=0)).all()
    with pytest.raises(ValueError, match="alpha"):
        apply_fix(model, "leaky_relu_activation", alpha=1.5)


@pytest.mark.parametrize("kind", BUILDERS)
def test_selu_uses_lecun_and_alpha_dropout(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    fixed = apply_fix(model, "selu_activation")
    assert_unchanged(model, snap)
    new = by_name(fixed)
    assert new["h1"].activation.__name__ == "selu"
    cfg = new["h1"].get_config()["kernel_initializer"]["config"]
    assert (cfg["scale"], cfg["mode"]) == (1.0, "fan_in")
    assert type(new["drop"]).__name__ == "AlphaDropout"
    assert new["drop"].rate == pytest.approx(0.1)


@pytest.mark.parametrize("kind", BUILDERS)
def test_elu_activation(kind):
    model = BUILDERS[kind]()
    fixed = apply_fix(model, "elu_activation")
    assert by_name(fixed)["h1"].activation.__name__ == "elu"


@pytest.mark.parametrize("kind", BUILDERS)
def test_batch_norm_after_preserves_all_weights_and_function(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    fixed = apply_fix(model, "batch_norm")
    assert_unchanged(model, snap)
    new, old = by_name(fixed), by_name(model)
    assert isinstance(new["h1_bn"], keras.layers.BatchNormalization)
    assert "out_bn" not in new  # never after the output layer
    for name in ("h1", "h2", "out"):
        assert same_weights(new[name], old[name])
    # Fresh BN in inference mode is ~identity (moving mean 0, var 1): same predictions.
    x = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    np.testing.assert_allclose(fixed(x), model(x), atol=2e-3)
    # Already normalized: nothing left to do.
    with pytest.raises(FixNotApplicable, match="already followed"):
        apply_fix(fixed, "batch_norm")


@pytest.mark.parametrize("kind", BUILDERS)
def test_batch_norm_before_activation_moves_activation(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    fixed = apply_fix(model, "batch_norm", position="before")
    assert_unchanged(model, snap)
    new, old = by_name(fixed), by_name(model)
    assert new["h1"].get_config()["use_bias"] is False
    assert new["h1"].get_config()["activation"] == "linear"
    names = [layer.name for layer in fixed.layers]
    assert names.index("h1") < names.index("h1_bn") < names.index("h1_sigmoid")
    assert new["h1_sigmoid"].get_config()["activation"] == "sigmoid"
    np.testing.assert_array_equal(new["h1"].kernel.numpy(), old["h1"].kernel.numpy())
    assert len(new["h1"].weights) == 1  # no bias


def test_init_fixes_target_matching_layers_and_respect_options():
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, activation="relu", name="r"),
            keras.layers.Dense(8, activation="selu", name="s"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    snap = snapshot(model)
    he = apply_fix(model, "he_init", mode="fan_avg", distribution="uniform")
    assert_unchanged(model, snap)
    cfg = by_name(he)["r"].get_config()["kernel_initializer"]["config"]
    assert (cfg["scale"], cfg["mode"], cfg["distribution"]) == (2.0, "fan_avg", "uniform")
    assert same_weights(by_name(he)["s"], by_name(model)["s"])
    lecun = apply_fix(model, "lecun_init")
    assert by_name(lecun)["s"].get_config()["kernel_initializer"]["config"]["scale"] == 1.0
    assert same_weights(by_name(lecun)["r"], by_name(model)["r"])
    # Glorot is already the Keras default for the softmax output: nothing to change.
    with pytest.raises(FixNotApplicable):
        apply_fix(model, "glorot_init")
    forced = apply_fix(model, "glorot_init", layers=["r"])
    assert by_name(forced)["r"].get_config()["kernel_initializer"]["config"]["mode"] == "fan_avg"
    with pytest.raises(ValueError, match="No layers named"):
        apply_fix(model, "he_init", layers=["nope"])
    # Applying He twice: the second time there is nothing left.
    with pytest.raises(FixNotApplicable):
        apply_fix(apply_fix(model, "he_init"), "he_init")


@pytest.mark.parametrize("kind", BUILDERS)
def test_clipping_and_learning_rate(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    lr = float(model.optimizer.learning_rate.numpy())
    clipped = apply_fix(model, "clip_norm", value=0.5)
    assert clipped.optimizer.get_config()["clipnorm"] == 0.5
    assert type(clipped.optimizer) is type(model.optimizer)
    assert clipped.get_compile_config()["metrics"] == model.get_compile_config()["metrics"]
    for a, b in zip(clipped.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert apply_fix(model, "clip_value").optimizer.get_config()["clipvalue"] == 1.0
    with pytest.raises(FixNotApplicable, match="already clips"):
        apply_fix(clipped, "clip_value")
    lowered = apply_fix(model, "lower_learning_rate", factor=4)
    assert float(lowered.optimizer.learning_rate.numpy()) == pytest.approx(lr / 4)
    assert_unchanged(model, snap)
    assert model.optimizer.get_config()["clipnorm"] is None


def test_lower_learning_rate_scales_schedule():
    model = sequential()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    model.compile(keras.optimizers.SGD(schedule), "sparse_categorical_crossentropy")
    lowered = apply_fix(model, "lower_learning_rate")
    cfg = lowered.optimizer.get_config()["learning_rate"]["config"]
    assert cfg["initial_learning_rate"] == pytest.approx(0.01)


@pytest.mark.parametrize("kind", BUILDERS)
def test_raise_learning_rate_keeps_weights_loss_and_metrics(kind):
    model = BUILDERS[kind]()
    snap = snapshot(model)
    lr = float(model.optimizer.learning_rate.numpy())
    raised = apply_fix(model, "raise_learning_rate")
    assert float(raised.optimizer.learning_rate.numpy()) == pytest.approx(lr * 10)
    assert type(raised.optimizer) is type(model.optimizer)
    compiled, original = raised.get_compile_config(), model.get_compile_config()
    assert (compiled["loss"], compiled["metrics"]) == (original["loss"], original["metrics"])
    for a, b in zip(raised.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(apply_fix(model, "raise_learning_rate", factor=3).optimizer.learning_rate) == (
        pytest.approx(lr * 3)
    )
    with pytest.raises(ValueError, match="factor must be > 1"):
        apply_fix(model, "raise_learning_rate", factor=0.5)
    assert_unchanged(model, snap)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(lr)


def test_raise_learning_rate_takes_ten_times_the_step():
    # Plain SGD: one step moves each weight by lr * gradient, so the raised copy's step must be
    # exactly 10x the step of a copy at the original rate, on the same batch (numpy difference).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(3)]
    )
    model.compile(keras.optimizers.SGD(0.01), "mse")
    y = rng.standard_normal((16, 3)).astype("float32")
    steps = []
    for fixed in (
        apply_fix(model, "clip_norm", value=1e9),
        apply_fix(model, "raise_learning_rate"),
    ):
        before = [w.copy() for w in fixed.get_weights()]
        fixed.train_on_batch(x, y)
        steps.append([a - b for a, b in zip(fixed.get_weights(), before, strict=True)])
    for small, big in zip(*steps, strict=True):
        np.testing.assert_allclose(big, 10 * small, rtol=1e-3, atol=1e-7)
    assert any(np.abs(s).max() > 0 for s in steps[0])


def test_learning_rate_fixes_scale_schedules_and_wrapped_optimizers():
    model = sequential()
    piecewise = keras.optimizers.schedules.PiecewiseConstantDecay([10], [0.1, 0.01])
    model.compile(keras.optimizers.SGD(piecewise), "sparse_categorical_crossentropy")
    raised = apply_fix(model, "raise_learning_rate").optimizer.get_config()["learning_rate"]
    assert raised["config"]["values"] == pytest.approx([1.0, 0.1])
    lowered = apply_fix(model, "lower_learning_rate").optimizer.get_config()["learning_rate"]
    assert lowered["config"]["values"] == pytest.approx([0.01, 0.001])
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-4))
    model.compile(scaled, "sparse_categorical_crossentropy")
    inner = apply_fix(model, "raise_learning_rate").optimizer.inner_optimizer
    assert float(inner.learning_rate.numpy()) == pytest.approx(1e-3)
    with pytest.raises(UnsupportedModelError, match="not compiled"):
        apply_fix(
            keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), "raise_learning_rate"
        )


def test_uncompiled_and_subclassed_models_are_refused_clearly():
    uncompiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match="not compiled"):
        apply_fix(uncompiled, "clip_norm")

    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.d = keras.layers.Dense(4, activation="sigmoid")
            self.o = keras.layers.Dense(2)

        def call(self, x):
            return self.o(self.d(x))

    net = Net()
    net(np.zeros((1, 3), "float32"))
    with pytest.raises(UnsupportedModelError, match="subclassed.*by hand"):
        apply_fix(net, "batch_norm")
    unbuilt = keras.Sequential([keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError, match="not built"):
        apply_fix(unbuilt, "relu_activation")


def test_nested_model_is_rebuilt_with_weights():
    inner = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(8, activation="tanh", name="inner_h")],
        name="inner",
    )
    inp = keras.Input((8,))
    out = keras.layers.Dense(2, activation="softmax", name="out")(inner(inp))
    model = keras.Model(inp, out)
    snap = snapshot(model)
    fixed = apply_fix(model, "batch_norm")
    assert_unchanged(model, snap)
    nested = by_name(fixed)["inner"]
    assert [layer.name for layer in nested.layers] == ["inner_h", "inner_h_bn"]
    assert same_weights(nested.layers[0], inner.layers[0])


def test_apply_fixes_orders_by_stage_and_rejects_unknown():
    model = sequential()
    fixed = apply_fixes(model, ["clip_norm", "batch_norm", "relu_activation"])
    new = by_name(fixed)
    assert new["h1"].activation.__name__ == "relu" and "h1_bn" in new
    assert fixed.optimizer.get_config()["clipnorm"] == 1.0
    with pytest.raises(KeyError, match="standardize_inputs"):
        apply_fixes(model, ["standardize_inputs"])


@keras.saving.register_keras_serializable(package="gradscope_tests")
class _Scaled(keras.Model):
    """A subclassed model with a working get_config, so clone_model can copy it."""

    def __init__(self, units: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.d = keras.layers.Dense(units, activation="tanh")

    def call(self, x):
        return 2.0 * self.d(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


def test_clone_with_weights_copies_subclassed_models_and_names_failures():
    net = _Scaled(name="scaled")
    x = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    expected = net(x).numpy()
    copy_ = clone_with_weights(net, "'scaled'", "unused hint")
    assert copy_ is not net and copy_.d is not net.d
    np.testing.assert_allclose(copy_(x).numpy(), expected, rtol=1e-6)

    class NoConfig(keras.Model):
        def __init__(self, width: int) -> None:  # a required argument get_config does not store
            super().__init__()
            self.d = keras.layers.Dense(width)

        def call(self, x):
            return self.d(x)

    bad = NoConfig(2)
    bad(x)
    expected = r"(?s)^Cannot copy 'bad' for a trial \(NotImplementedError: .*\); do X\.$"
    with pytest.raises(UnsupportedModelError, match=expected):
        clone_with_weights(bad, "'bad' for a trial", "do X.")


@pytest.mark.parametrize(
    ("stored", "name"),
    [
        (None, "linear"),
        ("ReLU", "relu"),
        ({"class_name": "function", "config": "Sigmoid"}, "sigmoid"),
        ({"module": "keras.activations", "class_name": "function", "config": "tanh"}, "tanh"),
        ({"class_name": "LeakyReLU", "config": {"name": "leaky_re_lu"}}, "leaky_re_lu"),
        ({"class_name": "Something"}, "custom"),
        (42, "custom"),
    ],
)
def test_parse_activation_normalizes_stored_values(stored, name):
    assert parse_activation(stored) == name


def test_layer_activation_reads_configs_and_activation_layers():
    dense = keras.layers.Dense(2, activation="selu")
    assert layer_activation(dense) == "selu"
    assert layer_activation(keras.layers.Dense(2)) == "linear"
    assert layer_activation(keras.layers.ReLU()) == "relu"
    assert layer_activation(keras.layers.Dropout(0.1)) is None
