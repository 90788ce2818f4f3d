"""Custom ``train_step`` models (VAE, GAN, a step that bypasses the optimizer) are recorded.

The models follow the keras-io examples (convolutional VAE, DCGAN overriding ``train_step``),
shrunk to a few units so each fit takes seconds. Their train steps also write the norms of the
gradients they pass to ``apply_gradients`` into variables of the test, indexed by the
optimizer's own step: an independent record of what GradScope must show.
"""

from __future__ import annotations

import json
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers, ops

from gradscope import GradScope, load_run

LATENT = 2
BATCH = 16


def _norms(grads: list[tf.Tensor]) -> tf.Tensor:
    return tf.stack([tf.norm(g) for g in grads])


def _capture(buffer: tf.Variable, index: tf.Tensor, grads: list[tf.Tensor]) -> None:
    buffer.scatter_nd_update(tf.reshape(tf.cast(index, tf.int64), [1, 1]), [_norms(grads)])


def _var_keys(model: keras.Model, prefix: str = "") -> list[str]:
    """``"<prefix><sub-model>/<layer>/<variable>"`` of a sub-model's trainable variables."""
    keys = {id(v): "" for v in model.trainable_weights}
    for layer in model.layers:
        for v in layer.trainable_weights:
            keys[id(v)] = f"{prefix}{model.name}/{layer.name}/{v.path.rsplit('/', 1)[-1]}"
    return [keys[id(v)] for v in model.trainable_weights]


# ---------------------------------------------------------------------------- VAE


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def build(self, input_shape):
        self.seed = keras.random.SeedGenerator(7)


def _vae_parts() -> tuple[keras.Model, keras.Model]:
    inp = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    h = layers.Flatten()(h)
    h = layers.Dense(8, activation="relu", name="hidden")(h)
    z_mean = layers.Dense(LATENT, name="z_mean")(h)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(h)
    encoder = keras.Model(inp, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])], name="encoder")
    lat = keras.Input((LATENT,))
    d = layers.Dense(4 * 4 * 4, activation="relu", name="hidden")(lat)
    d = layers.Reshape((4, 4, 4))(d)
    out = layers.Conv2DTranspose(
        1, 3, strides=2, padding="same", activation="sigmoid", name="deconv"
    )(d)
    return encoder, keras.Model(lat, out, name="decoder")


class VAE(keras.Model):
    """keras-io's VAE: no ``call``, its own loss, ``self.optimizer.apply_gradients``."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, capture: tf.Variable) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.capture = [capture]  # in a list: a test buffer, not a weight of the model
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            rec = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            total = rec + ops.mean(ops.sum(kl, axis=1))
        grads = tape.gradient(total, self.trainable_weights)
        _capture(self.capture[0], self.optimizer.iterations, grads)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total)
        return {"loss": self.total_loss_tracker.result()}


def test_vae_with_its_own_train_step_is_recorded(tmp_path, capsys) -> None:
    keras.utils.set_random_seed(1)
    encoder, decoder = _vae_parts()
    n_vars = len(encoder.trainable_weights) + len(decoder.trainable_weights)
    capture = tf.Variable(tf.fill([16, n_vars], math.nan))
    vae = VAE(encoder, decoder, capture)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    scope = GradScope(tmp_path / "vae", freq=1, verbose=1)
    with pytest.warns(UserWarning, match="computes its own loss") as caught:
        vae.fit(x, epochs=2, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[scope])
    assert not vae.built  # the outer model is never called, as in the keras-io example
    assert sum("GradScope:" in str(w.message) for w in caught) == 1  # said once, not per epoch

    run = load_run(scope.run_dir)
    # Hooked after the watched first step: steps 1..7 of 8, each once, in order.
    assert [r.step for r in run.records] == list(range(1, 8))
    names = run.layer_names
    assert {"encoder/conv", "encoder/z_mean", "decoder/deconv"} <= set(names)
    keys = _var_keys(encoder) + _var_keys(decoder)
    assert len(keys) == n_vars and set(keys) == set(run.records[0].variables)
    expected = capture.numpy()
    for record in run.records:
        got = [record.variables[k]["grad_norm"] for k in keys]
        np.testing.assert_allclose(got, expected[record.step], rtol=1e-5, atol=1e-7)
        # A layer's norm is the norm over its variables (kernel and bias).
        conv = [expected[record.step][i] for i, k in enumerate(keys) if "encoder/conv/" in k]
        assert record.layers["encoder/conv"]["grad_norm"] == pytest.approx(
            math.hypot(*conv), rel=1e-5
        )
        assert record.layers["decoder/hidden"]["update_ratio"] > 0
        # Activations of layers the train step calls through the sub-models.
        assert 0.0 <= record.layers["encoder/conv"]["dead_frac"] <= 1.0
        assert 0.0 < record.layers["decoder/deconv"]["act_mean"] < 1.0
        assert record.loss is not None and math.isfinite(record.loss)  # the logs' running mean
    assert run.meta.config["not_recorded"] == [
        "the train step computes its own loss (not model.compute_loss): records take the "
        "'loss' its logs report, often a running mean of the epoch, or none"
    ]
    assert run.meta.status == "completed"
    out = capsys.readouterr().out
    assert f"Run: {scope.run_dir}" in out and "not recorded: the train step computes" in out
    assert "train_step" not in vae.__dict__ and "apply" not in vae.optimizer.__dict__


# ---------------------------------------------------------------------------- GAN


def _discriminator() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(16, name="d_hidden"),
            layers.LeakyReLU(negative_slope=0.2, name="leaky"),
            layers.Dense(1, name="d_out"),
        ],
        name="discriminator",
    )


def _generator() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((LATENT,)),
            layers.Dense(16, activation="relu", name="g_hidden"),
            layers.Dense(8, activation="tanh", name="g_out"),
        ],
        name="generator",
    )


class GAN(keras.Model):
    """keras-io's DCGAN pattern, with ``d_steps`` discriminator updates per step (as WGAN-GP)."""

    def __init__(self, d_steps: int, d_capture: tf.Variable, g_capture: tf.Variable) -> None:
        super().__init__()
        self.discriminator = _discriminator()
        self.generator = _generator()
        self.d_steps = d_steps
        self.captures = [d_capture, g_capture]
        self.seed_generator = keras.random.SeedGenerator(3)

    def compile(self, d_optimizer, g_optimizer):
        super().compile()  # model.optimizer: Keras's default, never applied by this step
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def train_step(self, real):
        n = ops.shape(real)[0]
        d_vars = self.discriminator.trainable_weights
        for _ in range(self.d_steps):
            fake = self.generator(keras.random.normal((n, LATENT), seed=self.seed_generator))
            images = ops.concatenate([fake, real])
            labels = ops.concatenate([ops.ones((n, 1)), ops.zeros((n, 1))])
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(labels, self.discriminator(images))
            grads = tape.gradient(d_loss, d_vars)
            _capture(self.captures[0], self.d_optimizer.iterations, grads)
            self.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))
        noise = keras.random.normal((n, LATENT), seed=self.seed_generator)
        g_vars = self.generator.trainable_weights
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((n, 1)), self.discriminator(self.generator(noise)))
        grads = tape.gradient(g_loss, g_vars)
        _capture(self.captures[1], self.g_optimizer.iterations, grads)
        self.g_optimizer.apply_gradients(zip(grads, g_vars, strict=True))
        return {"d_loss": d_loss, "g_loss": g_loss}


def _captured_gan(examples: int, steps: int) -> tuple[GAN, tf.Variable, tf.Variable, np.ndarray]:
    """A GAN (two critic updates a step) capturing the norms of up to ``steps`` steps; data."""
    keras.utils.set_random_seed(2)
    d_capture = tf.Variable(tf.fill([2 * steps, 4], math.nan))
    g_capture = tf.Variable(tf.fill([steps, 4], math.nan))
    gan = GAN(d_steps=2, d_capture=d_capture, g_capture=g_capture)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2e-3))
    x = np.random.default_rng(1).normal(size=(examples, 8)).astype("float32")
    return gan, d_capture, g_capture, x


def test_gan_records_each_optimizer_under_its_own_name(tmp_path) -> None:
    gan, d_capture, g_capture, x = _captured_gan(64, steps=32)
    scope = GradScope(tmp_path / "gan", freq=1, verbose=0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        gan.fit(x, epochs=2, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[scope])
        # Fitting again with the same callback continues the run, steps still rising.
        gan.fit(x, epochs=1, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[scope])

    # 12 train steps: the discriminator's optimizer stepped twice per train step.
    assert int(gan.g_optimizer.iterations) == 12
    assert int(gan.d_optimizer.iterations) == 24
    assert int(gan.optimizer.iterations) == 0
    run = load_run(scope.run_dir)
    # Records are keyed by train step; each fit's first (watched) step is not recorded.
    assert [r.step for r in run.records] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11]
    d_keys = _var_keys(gan.discriminator, "d_optimizer/")
    g_keys = _var_keys(gan.generator, "g_optimizer/")
    names = set(run.layer_names)
    assert {"d_optimizer/discriminator/d_hidden", "d_optimizer/discriminator/leaky"} <= names
    assert {"g_optimizer/generator/g_hidden", "g_optimizer/generator/g_out"} <= names
    assert all(n.startswith(("d_optimizer/", "g_optimizer/")) for n in names)
    d_norms, g_norms = d_capture.numpy(), g_capture.numpy()
    for record in run.records:
        assert set(record.variables) == set(d_keys + g_keys)
        # The discriminator's row is its last update of the step (its step 2s+1), the
        # generator's its only one (its step s): each optimizer's own count, consistent.
        got_d = [record.variables[k]["grad_norm"] for k in d_keys]
        got_g = [record.variables[k]["grad_norm"] for k in g_keys]
        np.testing.assert_allclose(got_d, d_norms[2 * record.step + 1], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got_g, g_norms[record.step], rtol=1e-5, atol=1e-7)
        for name in ("d_optimizer/discriminator/d_hidden", "g_optimizer/generator/g_hidden"):
            assert record.layers[name]["update_ratio"] > 0
        assert record.lr == pytest.approx(1e-3)  # the first optimizer's
        assert record.loss is None  # the step reports d_loss and g_loss, no "loss"
    optimizers = run.meta.optimizer["optimizers"]
    assert optimizers["d_optimizer"]["calls_per_step"] == 2
    assert optimizers["g_optimizer"]["calls_per_step"] == 1
    assert optimizers["g_optimizer"]["config"]["learning_rate"] == pytest.approx(2e-3)
    assert set(optimizers["g_optimizer"]["layers"]) == {
        "g_optimizer/generator/g_hidden",
        "g_optimizer/generator/g_out",
    }
    assert not any(f.kind == "nonfinite" for f in scope.findings)  # a missing loss is not NaN


def test_gan_records_every_beat_when_keras_runs_the_steps_between(monkeypatch, tmp_path) -> None:
    # A long fit: Keras's own function runs the unrecorded steps, and it does not advance the
    # step counter a custom train_step is numbered by. Records once stopped after the first.
    from gradscope.collect import dispatch

    monkeypatch.setattr(dispatch, "SHARED_UP_TO_STEPS", 0)  # as in a fit over 128 steps
    gan, d_capture, g_capture, x = _captured_gan(160, steps=20)
    scope = GradScope(tmp_path / "gan", freq=3, tensorboard=False, verbose=0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        gan.fit(x, epochs=2, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[scope])
    assert int(gan.g_optimizer.iterations) == 20
    run = load_run(scope.run_dir)
    assert [r.step for r in run.records] == [3, 6, 9, 12, 15, 18]  # step 0 is watched
    d_keys = _var_keys(gan.discriminator, "d_optimizer/")
    g_keys = _var_keys(gan.generator, "g_optimizer/")
    for record in run.records:  # each record holds its own step's gradients (the captures)
        got_d = [record.variables[k]["grad_norm"] for k in d_keys]
        got_g = [record.variables[k]["grad_norm"] for k in g_keys]
        np.testing.assert_allclose(got_d, d_capture.numpy()[2 * record.step + 1], rtol=1e-5)
        np.testing.assert_allclose(got_g, g_capture.numpy()[record.step], rtol=1e-5)


class AlternatingGAN(GAN):
    """The generator's optimizer applies only on even train steps (inside a ``tf.cond``)."""

    def train_step(self, real):
        even = self.d_optimizer.iterations % 2 == 0
        noise = keras.random.normal((ops.shape(real)[0], LATENT), seed=self.seed_generator)
        d_vars = self.discriminator.trainable_weights
        with tf.GradientTape() as tape:
            fake = self.discriminator(self.generator(noise))
            d_loss = ops.mean(fake) - ops.mean(self.discriminator(real))
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))

        def g_update() -> tf.Tensor:
            g_vars = self.generator.trainable_weights
            with tf.GradientTape() as tape:
                g_loss = -ops.mean(self.discriminator(self.generator(noise)))
            grads = tape.gradient(g_loss, g_vars)
            self.g_optimizer.apply_gradients(zip(grads, g_vars, strict=True))
            return tf.constant(0)

        tf.cond(even, g_update, lambda: tf.constant(0))
        return {"d_loss": d_loss}


def test_optimizer_that_skips_a_step_leaves_its_rows_out(tmp_path) -> None:
    # Records of odd steps hold the discriminator's rows only, never stale generator rows.
    unused = tf.Variable(tf.zeros([1, 4]))
    gan = AlternatingGAN(d_steps=1, d_capture=unused, g_capture=unused)
    gan.compile(keras.optimizers.SGD(1e-2), keras.optimizers.SGD(1e-2))
    x = np.random.default_rng(2).normal(size=(96, 8)).astype("float32")
    scope = GradScope(tmp_path / "alt", freq=1, verbose=0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        gan.fit(x, epochs=1, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[scope])
    assert int(gan.g_optimizer.iterations) == 3  # steps 0, 2, 4 of 6
    run = load_run(scope.run_dir)
    assert [r.step for r in run.records] == [1, 2, 3, 4, 5]
    for record in run.records:
        has_g = "grad_norm" in record.layers.get("g_optimizer/generator/g_hidden", {})
        assert has_g == (record.step % 2 == 0), record.step
        assert record.layers["d_optimizer/discriminator/d_hidden"]["grad_norm"] > 0
        assert any(k.startswith("g_optimizer/") for k in record.variables) == has_g


# ---------------------------------------------------------------------------- bypass


def _manual_step(model: keras.Model, data):
    # Updates the weights itself: no optimizer ever sees a gradient.
    x, y = data
    trainable = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = ops.mean(ops.square(model(x) - y))
    for grad, variable in zip(tape.gradient(loss, trainable), trainable, strict=True):
        variable.assign_sub(0.01 * grad)
    return {"loss": loss}


class ManualSubclass(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    train_step = _manual_step


class ManualFunctional(keras.Model):
    train_step = _manual_step


def _manual(built: bool) -> keras.Model:
    if not built:
        return ManualSubclass()
    inp = keras.Input((4,))
    return ManualFunctional(inp, layers.Dense(1)(layers.Dense(8, activation="relu")(inp)))


@pytest.mark.parametrize("built", [False, True], ids=["subclassed", "functional"])
def test_train_step_that_bypasses_the_optimizer_is_said_once(built: bool, tmp_path, capsys) -> None:
    model = _manual(built)
    assert model.built == built  # built: hooked before its first step; else after it
    model.compile(optimizer="sgd")
    x = np.random.default_rng(3).random((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    scope = GradScope(tmp_path / "manual", freq=1, verbose=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[scope])
    assert len(history.history["loss"]) == 2  # training is never stopped
    said = [str(w.message) for w in caught if "GradScope:" in str(w.message)]
    assert len(said) == 1, said
    assert "applied none of its optimizers ('optimizer')" in said[0]
    run = load_run(scope.run_dir)
    assert run.records == [] and len(run.epochs) == 2
    assert run.meta.status == "completed"
    assert any("applied none of its optimizers" in n for n in run.meta.config["not_recorded"])
    assert not (scope.run_dir / "findings.json").exists()  # nothing examined, nothing passed
    out = capsys.readouterr().out
    assert "nothing recorded, nothing diagnosed" in out and "no findings" not in out
    assert "train_step" not in model.__dict__ and "apply" not in model.optimizer.__dict__


# ---------------------------------------------------------------------------- distillation


class Distiller(keras.Model):
    """A student trained against a teacher the step calls but never updates; one layer unused."""

    def __init__(self) -> None:
        super().__init__()
        self.teacher = keras.Sequential(
            [
                keras.Input((4,)),
                layers.Dense(6, activation="tanh", name="t_hidden"),
                layers.Dense(3, name="t_out"),
            ],
            name="teacher",
        )
        self.student = keras.Sequential(
            [
                keras.Input((4,)),
                layers.Dense(5, activation="relu", name="s_hidden"),
                layers.Dense(3, name="s_out"),
            ],
            name="student",
        )
        self.unused = layers.Dense(2, activation="sigmoid", name="unused")

    def train_step(self, data):
        x, _ = data
        target = ops.softmax(self.teacher(x, training=False))
        student_vars = self.student.trainable_variables
        with tf.GradientTape() as tape:
            loss = keras.losses.kl_divergence(target, ops.softmax(self.student(x)))
        grads = tape.gradient(loss, student_vars)
        self.optimizer.apply_gradients(zip(grads, student_vars, strict=True))
        return {"loss": ops.mean(loss)}


def test_distiller_watches_what_its_optimizer_updates(tmp_path) -> None:
    model = Distiller()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = np.random.default_rng(4).random((48, 4)).astype("float32")
    y = np.zeros((48, 1), "float32")
    scope = GradScope(tmp_path / "distil", freq=1, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, callbacks=[scope])
    said = [str(w.message) for w in caught if "GradScope:" in str(w.message)]
    note = "activations of 1 layer are not computed in the train step ('unused'): not recorded"
    assert sum(note in s for s in said) == 1, said
    run = load_run(scope.run_dir)
    meta = json.loads((scope.run_dir / "meta.json").read_text())
    info = {layer["name"]: layer for layer in meta["model"]["layers"]}
    # The teacher runs in the step but no optimizer updates it: listed, not watched.
    assert not info["teacher/t_hidden"]["watched"] and not info["teacher/t_hidden"]["trainable"]
    assert info["student/s_hidden"]["watched"]
    assert [r.step for r in run.records] == [1, 2]
    assert note in run.meta.config["not_recorded"]
    for record in run.records:
        assert record.layers["student/s_hidden"]["grad_norm"] > 0
        assert record.layers["student/s_out"]["grad_norm"] > 0
        # The teacher is called in the step: its tanh activations are recorded, no gradients.
        assert set(record.layers["teacher/t_hidden"]) == {"act_mean", "act_std", "sat_frac"}
        assert "unused" not in record.layers  # never called: no row, not a NaN one
