"""Generative models of the zoo: a dense autoencoder, a VAE and a GAN with custom train steps.

The VAE and the GAN override ``train_step`` the way Keras's guides teach it (a
``tf.GradientTape``, the optimizer applied by hand, loss trackers); the GAN holds two optimizers
given to its own ``compile``. Both are registered serializable and implement ``get_config``, so
they can be saved, loaded and copied like any Keras model.

Example:
    >>> vae = VAE(features=32, latent=4)  # doctest: +SKIP
    >>> vae.compile(keras.optimizers.Adam(3e-3))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from gradscope.zoo.data import GAN_FEATURES, MANIFOLD_FEATURES


def dense_autoencoder() -> keras.Model:
    """A symmetric dense autoencoder (32-16-4-16-32, ReLU, linear output) trained with MSE.

    Returns:
        The compiled Sequential model.
    """
    model = keras.Sequential(
        [
            keras.Input((MANIFOLD_FEATURES,)),
            keras.layers.Dense(16, activation="relu", name="enc_1"),
            keras.layers.Dense(4, name="code"),
            keras.layers.Dense(16, activation="relu", name="dec_1"),
            keras.layers.Dense(MANIFOLD_FEATURES, name="reconstruction"),
        ],
        name="dense_autoencoder",
    )
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    return model


def _mean(name: str) -> keras.metrics.Mean:
    return keras.metrics.Mean(name=name)


@keras.saving.register_keras_serializable(package="gradscope_zoo")
class VAE(keras.Model):
    """A variational autoencoder whose ``train_step`` adds the KL term to the reconstruction.

    Args:
        features: input width.
        latent: latent dimension.
        **kwargs: passed to :class:`keras.Model`.
    """

    def __init__(self, features: int = MANIFOLD_FEATURES, latent: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features = features
        self.latent = latent
        inp = keras.Input((features,))
        h = keras.layers.Dense(16, activation="relu", name="enc_hidden")(inp)
        z_mean = keras.layers.Dense(latent, name="z_mean")(h)
        z_log_var = keras.layers.Dense(latent, name="z_log_var")(h)
        self.encoder = keras.Model(inp, [z_mean, z_log_var], name="encoder")
        code = keras.Input((latent,))
        h = keras.layers.Dense(16, activation="relu", name="dec_hidden")(code)
        self.decoder = keras.Model(
            code, keras.layers.Dense(features, name="dec_out")(h), name="decoder"
        )
        self.seeds = keras.random.SeedGenerator(0)
        self.trackers = [_mean("loss"), _mean("reconstruction"), _mean("kl")]

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss trackers, reset by Keras at each epoch."""
        return self.trackers

    def call(self, x: Any) -> Any:
        """The reconstruction of ``x`` through the latent mean (no sampling)."""
        z_mean, _ = self.encoder(x)
        return self.decoder(z_mean)

    def train_step(self, data: Any) -> dict[str, Any]:
        """One step on the reconstruction error plus the KL divergence to N(0, 1)."""
        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(x, training=True)
            noise = keras.random.normal(keras.ops.shape(z_mean), seed=self.seeds)
            z = z_mean + keras.ops.exp(0.5 * z_log_var) * noise
            recon = self.decoder(z, training=True)
            rec = keras.ops.mean(keras.ops.sum(keras.ops.square(x - recon), axis=1))
            kl = -0.5 * keras.ops.mean(
                keras.ops.sum(
                    1 + z_log_var - keras.ops.square(z_mean) - keras.ops.exp(z_log_var), axis=1
                )
            )
            total = rec + kl
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        for tracker, value in zip(self.trackers, (total, rec, kl), strict=True):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {**super().get_config(), "features": self.features, "latent": self.latent}


def vae() -> keras.Model:
    """A built, compiled :class:`VAE` on the 32-feature manifold data (Adam 3e-3).

    Returns:
        The compiled model.
    """
    model = VAE(name="vae")
    model(keras.ops.zeros((1, MANIFOLD_FEATURES)))
    model.compile(keras.optimizers.Adam(3e-3))
    return model


@keras.saving.register_keras_serializable(package="gradscope_zoo")
class GAN(keras.Model):
    """A GAN on 8-D points: two optimizers, discriminator then generator in each ``train_step``.

    Args:
        noise: the generator's input width.
        features: the data's width.
        **kwargs: passed to :class:`keras.Model`.
    """

    def __init__(self, noise: int = 4, features: int = GAN_FEATURES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.noise = noise
        self.features = features
        self.generator = keras.Sequential(
            [
                keras.Input((noise,)),
                keras.layers.Dense(16, activation="relu", name="gen_hidden"),
                keras.layers.Dense(features, name="gen_out"),
            ],
            name="generator",
        )
        self.discriminator = keras.Sequential(
            [
                keras.Input((features,)),
                keras.layers.Dense(16, name="disc_hidden"),
                keras.layers.LeakyReLU(0.2, name="disc_leaky"),
                keras.layers.Dense(1, name="disc_logit"),
            ],
            name="discriminator",
        )
        self.seeds = keras.random.SeedGenerator(0)
        self.trackers = [_mean("d_loss"), _mean("g_loss")]
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def compile(  # type: ignore[override]
        self,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        """Compiles with one optimizer per network (Adam(2e-3, beta_1=0.5) each by default).

        Args:
            d_optimizer: the discriminator's optimizer.
            g_optimizer: the generator's optimizer.
            **kwargs: passed to :meth:`keras.Model.compile` (an ``optimizer`` there is unused).
        """
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-3, beta_1=0.5)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-3, beta_1=0.5)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The two loss trackers, reset by Keras at each epoch."""
        return self.trackers

    def call(self, z: Any) -> Any:
        """Generated points for the noise ``z``."""
        return self.generator(z)

    def train_step(self, data: Any) -> dict[str, Any]:
        """One discriminator step on real and fake points, then one generator step."""
        real = data[0] if isinstance(data, tuple) else data
        n = keras.ops.shape(real)[0]
        z = keras.random.normal((n, self.noise), seed=self.seeds)
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            real_logit = self.discriminator(real, training=True)
            fake_logit = self.discriminator(fake, training=True)
            d_loss = self.bce(keras.ops.ones_like(real_logit), real_logit) + self.bce(
                keras.ops.zeros_like(fake_logit), fake_logit
            )
        d_vars = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        z = keras.random.normal((n, self.noise), seed=self.seeds)
        with tf.GradientTape() as tape:
            fake_logit = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = self.bce(keras.ops.ones_like(fake_logit), fake_logit)
        g_vars = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.trackers[0].update_state(d_loss)
        self.trackers[1].update_state(g_loss)
        return {t.name: t.result() for t in self.trackers}

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {**super().get_config(), "noise": self.noise, "features": self.features}


def gan() -> keras.Model:
    """A built, compiled :class:`GAN` (two Adam optimizers).

    Returns:
        The compiled model.
    """
    model = GAN(name="gan")
    model(keras.ops.zeros((1, model.noise)))
    model.discriminator(keras.ops.zeros((1, model.features)))
    model.compile()
    return model
