"""The light probe: eager steps reduced on the host record what the recorded probe records."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import reference_layer_grad_norms

from gradscope.audit import audit, light
from gradscope.audit.light import light_probe, light_supported
from gradscope.audit.probe import probe
from gradscope.audit.reduce import act_row, variable_sums
from gradscope.collect import stats
from gradscope.trial.data import batch_order, feed

LR = 0.1


def small_net(optimizer=None, loss="mse", dropout=False):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            *([keras.layers.Dropout(0.5)] if dropout else []),
            keras.layers.Dense(5, activation="tanh", name="squash"),
            keras.layers.Dense(4, activation="sigmoid", name="gate"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    if optimizer is not None:
        model.compile(optimizer, loss)
    return model


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype("float32")
    return x, (x[:, :1] * 2.0 - x[:, 1:2]).astype("float32")


@pytest.fixture(scope="module")
def sgd_run(xy, tmp_path_factory):
    model = small_net(keras.optimizers.SGD(LR))
    data = feed(model, *xy, n=0)
    run = light_probe(model, data, 2, tmp_path_factory.mktemp("light"), batch_size=16)
    return model, data, run


def test_gradient_norms_equal_an_independent_tape(sgd_run):
    model, data, run = sgd_run
    order = batch_order(len(data), 2, 16, seed=0)
    # The reference replays the two steps by hand: tape gradients, then w -= lr * g.
    ref = keras.models.clone_model(model)
    ref.set_weights(model.get_weights())
    ref.compile(keras.optimizers.SGD(LR), "mse")
    for step, record in enumerate(run.records):
        x, y = data.take(order[step * 16 : (step + 1) * 16])
        expected = reference_layer_grad_norms(ref, x, y)
        assert set(record.layers) == set(expected)
        for name, norm in expected.items():
            row = record.layers[name]
            assert row["grad_norm"] == pytest.approx(norm, rel=1e-5)
            # Plain SGD moves each layer by exactly lr times its gradient.
            assert row["update_norm"] == pytest.approx(LR * norm, rel=1e-4)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(ref(x, training=True) - y))
        assert record.loss == pytest.approx(float(loss), rel=1e-5)
        grads = tape.gradient(loss, ref.trainable_variables)
        for v, g in zip(ref.trainable_variables, grads, strict=True):
            v.assign(v - LR * g)
        after = {
            layer.name: math.sqrt(sum(float(np.sum(w.numpy() ** 2)) for w in layer.weights))
            for layer in ref.layers
        }
        for name in expected:
            assert record.layers[name]["weight_norm"] == pytest.approx(after[name], rel=1e-5)
    assert run.steps.tolist() == [0, 1] and run.records[0].lr == pytest.approx(LR)


def test_activation_statistics_of_the_training_batch(sgd_run):
    model, data, run = sgd_run
    x, _ = data.take(batch_order(len(data), 2, 16, seed=0)[:16])
    kernel, bias = model.get_layer("hidden").get_weights()  # untouched: the probe trained a copy
    hidden = np.maximum(x @ kernel + bias, 0.0)
    row = run.records[0].layers["hidden"]
    assert row["act_mean"] == pytest.approx(float(hidden.mean()), rel=1e-5)
    assert row["act_std"] == pytest.approx(float(hidden.std()), rel=1e-4)
    assert row["dead_frac"] == pytest.approx(float(np.mean(hidden.max(axis=0) <= 0)))
    gate = run.records[0].layers["gate"]  # sigmoid: saturation applies, dead units do not
    assert "sat_frac" in gate and "dead_frac" not in gate


def test_the_user_model_is_never_touched(xy, tmp_path):
    from tensorflow.python.eager import context

    model = small_net()  # uncompiled: the trial policy compiles the copy
    before = [w.copy() for w in model.get_weights()]
    options = context.context().function_call_options.config_proto_serialized
    run = light_probe(model, feed(model, *xy, n=0), 3, tmp_path)
    # The probe's steps run without Grappler's rewrites; the user's functions afterwards do.
    assert context.context().function_call_options.config_proto_serialized == options
    assert len(run.records) == 3 and run.meta.status == "completed"
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not model.compiled and getattr(model, "optimizer", None) is None
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_same_records_as_the_recorded_probe(xy, tmp_path):
    # The policy's default SGD with momentum and inferred loss; the same dropout masks too (both
    # probes seed, then copy).
    model = small_net(dropout=True)
    light = probe(model, data=xy, steps=4, log_dir=tmp_path / "light", light=True)
    recorded = probe(model, data=xy, steps=4, log_dir=tmp_path / "recorded")
    assert light.meta.config["probe"] == "light" and "probe" not in recorded.meta.config
    assert light.layer_names == recorded.layer_names
    for a, b in zip(light.records, recorded.records, strict=True):
        assert (a.step, a.epoch) == (b.step, b.epoch)
        assert a.loss == pytest.approx(b.loss, rel=1e-5) and a.lr == pytest.approx(b.lr)
        assert a.layers.keys() == b.layers.keys() and a.variables.keys() == b.variables.keys()
        for name, row in a.layers.items():
            assert row.keys() == b.layers[name].keys(), name
            for stat, value in row.items():
                assert value == pytest.approx(b.layers[name][stat], rel=1e-4, abs=1e-7), stat
        for name, row in a.variables.items():
            for stat, value in row.items():
                assert value == pytest.approx(b.variables[name][stat], rel=1e-4), name
    assert light.epochs[0].logs == pytest.approx(recorded.epochs[0].logs, rel=1e-5)


@pytest.mark.parametrize("kind", ["relu", "leaky", "sigmoid", "tanh", "linear"])
def test_host_reductions_equal_the_in_graph_ones(kind):
    rng = np.random.default_rng(1)
    out = rng.standard_normal((16, 3, 7)).astype("float32") * 4
    out[:, :, 2] = -1.0  # one unit off for the whole batch
    ours = act_row(out, kind)
    values = stats.act_stats(tf.constant(out), kind).numpy()
    theirs = dict(zip(stats.ACT_STAT_ORDER, values, strict=True))
    for name, value in theirs.items():
        if math.isnan(value):
            assert name not in ours  # does not apply to this kind: no value recorded
        else:
            assert ours[name] == pytest.approx(float(value), rel=1e-5, abs=1e-7), name
    grads = [out.reshape(-1, 7)[:, :5], rng.standard_normal(5).astype("float32")]
    bad = [np.where(grads[0] > 3, np.inf, grads[0]), np.full(5, np.nan, "float32")]
    huge = [grads[0] * np.float32(1e25), grads[1]]  # finite entries whose squares overflow
    for case in (grads, bad, huge):
        theirs = stats.variable_grad_stats([tf.constant(g) for g in case]).numpy()
        ours = [variable_sums(g) for g in case]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_custom_train_steps_get_the_recorded_probe():
    class Stepper(keras.Model):
        def train_step(self, data):
            return super().train_step(data)

    inputs = keras.Input((3,))
    custom = Stepper(inputs, keras.layers.Dense(1)(inputs))
    assert light_supported(small_net(keras.optimizers.Adam())) and not light_supported(custom)


def test_the_audit_default_is_the_light_probe(tmp_path):
    model = small_net(keras.optimizers.SGD(0.01))
    default = audit(model, log_dir=tmp_path / "a")
    assert default.run.meta.config["probe"] == "light" and default.coverage.steps_run == 8


def test_an_audited_file_trains_what_a_copy_would(xy, tmp_path):
    # The audit trains the model it loaded (seeded before the load) instead of a copy: the same
    # dropout masks and records as the copy the probe makes of a model from the same file.
    path = tmp_path / "net.keras"
    small_net(keras.optimizers.Adam(0.01), dropout=True).save(path)
    owned = audit(path, data=xy, log_dir=tmp_path / "owned").run
    loaded = keras.saving.load_model(path)
    copied = probe(loaded, data=xy, log_dir=tmp_path / "copied", light=True)
    assert [r.loss for r in owned.records] == [r.loss for r in copied.records]
    assert [r.layers for r in owned.records] == [r.layers for r in copied.records]
    assert len({r.loss for r in owned.records}) == len(owned.records)  # it trained


def test_hooks_inside_a_branch_fall_back_to_eager_steps(xy, tmp_path, monkeypatch):
    # A LossScaleOptimizer applies in a tf.cond; with its explicit check off, the traced step
    # cannot return what the hooks saw there and the probe reruns the step eagerly instead.
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR))
    model = small_net(optimizer)
    data = feed(model, *xy, n=0)
    eager = light_probe(model, data, 2, tmp_path / "eager", batch_size=16)
    traced = lambda model, step: tf.function(step, autograph=False)  # noqa: E731
    monkeypatch.setattr(light, "_step_function", traced)
    fallback = light_probe(model, data, 2, tmp_path / "fallback", batch_size=16)
    assert [r.loss for r in fallback.records] == [r.loss for r in eager.records]
    assert [r.layers for r in fallback.records] == [r.layers for r in eager.records]
