"""GradScope records the numbers an independent tf.GradientTape computation gives."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import fit_one_batch_recorded, reference_layer_grad_norms, toy_data

from gradscope import GradScope, load_run
from gradscope.collect.session import check_writable

LR = 0.05


def _sequential() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(12, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _functional() -> keras.Model:
    inp = keras.Input((8,))
    a = keras.layers.Dense(16, activation="elu")(inp)
    b = keras.layers.Dense(16, activation="sigmoid")(inp)
    merged = keras.layers.Concatenate()([a, b])
    out = keras.layers.Dense(3, activation="softmax")(merged)
    return keras.Model(inp, out)


class SubclassedNet(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(3, activation="softmax")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.out(self.hidden(x))


def _subclassed() -> keras.Model:
    model = SubclassedNet()
    model(np.zeros((1, 8), "float32"))
    return model


def _nested() -> keras.Model:
    inner = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(16)],
        name="encoder",
    )
    inp = keras.Input((8,))
    out = keras.layers.Dense(3, activation="softmax")(inner(inp))
    return keras.Model(inp, out)


BUILDERS = {
    "sequential": _sequential,
    "functional": _functional,
    "subclassed": _subclassed,
    "nested": _nested,
}


def _fit_one_step(model: keras.Model, tmp_path, **kwargs) -> tuple[dict, dict]:
    x, y = toy_data(64)
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy", **kwargs)
    reference = reference_layer_grad_norms(model, x, y)
    run = fit_one_batch_recorded(model, x, y, tmp_path / "run")
    assert [r.step for r in run.records] == [0]
    return reference, run.records[0].layers


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_grad_norms_match_gradient_tape(kind: str, tmp_path) -> None:
    model = BUILDERS[kind]()
    reference, recorded = _fit_one_step(model, tmp_path)
    assert set(reference) <= set(recorded)
    assert len(reference) >= 2
    for layer, ref in reference.items():
        assert recorded[layer]["grad_norm"] == pytest.approx(ref, rel=1e-5), layer
        # Plain SGD moves the weights by exactly lr * g: an independent check of update_norm.
        assert recorded[layer]["update_norm"] == pytest.approx(LR * ref, rel=1e-4), layer


def test_run_eagerly_is_recorded_like_a_traced_step(tmp_path) -> None:
    # run_eagerly=True once crashed the activation hook (an eager tensor has no graph).
    model = _sequential()
    x, _ = toy_data(64)
    kernel, bias = (v.numpy() for v in model.layers[0].weights)
    hidden = np.maximum(x @ kernel + bias, 0.0)  # the first layer's output before the update
    reference, recorded = _fit_one_step(model, tmp_path, run_eagerly=True)
    for layer, ref in reference.items():
        assert recorded[layer]["grad_norm"] == pytest.approx(ref, rel=1e-5), layer
        assert recorded[layer]["update_norm"] == pytest.approx(LR * ref, rel=1e-4), layer
    first = recorded[model.layers[0].name]
    assert first["act_mean"] == pytest.approx(float(hidden.mean()), rel=1e-4)
    assert first["dead_frac"] == pytest.approx(float((hidden.max(axis=0) <= 0).mean()), abs=1e-6)


def test_nested_layers_are_named_by_path(tmp_path) -> None:
    _, recorded = _fit_one_step(_nested(), tmp_path)
    assert {"encoder/dense", "encoder/dense_1"} <= set(recorded) or any(
        name.startswith("encoder/") for name in recorded
    )
    assert sum(name.startswith("encoder/") for name in recorded) == 2


def test_jit_compile_matches_reference(tmp_path) -> None:
    reference, recorded = _fit_one_step(_sequential(), tmp_path, jit_compile=True)
    for layer, ref in reference.items():
        assert recorded[layer]["grad_norm"] == pytest.approx(ref, rel=1e-5)


def test_moments_and_update_ratio_are_consistent(tmp_path) -> None:
    model = _sequential()
    x, y = toy_data(64)
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
    w_before = {
        layer.name: [v.numpy().copy() for v in layer.trainable_variables] for layer in model.layers
    }
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    flat = {
        layer.name: np.concatenate(
            [
                g.numpy().ravel()
                for g, v in zip(grads, model.trainable_variables, strict=False)
                if any(v is w for w in layer.trainable_variables)
            ]
        )
        for layer in model.layers
    }
    record = fit_one_batch_recorded(model, x, y, tmp_path / "run").records[0]
    assert record.loss == pytest.approx(float(loss), rel=1e-5)
    assert record.lr == pytest.approx(LR)
    for name, g in flat.items():
        stats = record.layers[name]
        assert stats["grad_mean"] == pytest.approx(g.mean(), abs=1e-7)
        assert stats["grad_std"] == pytest.approx(g.std(), rel=1e-4)
        assert stats["grad_max_abs"] == pytest.approx(np.abs(g).max(), rel=1e-6)
        assert stats["nonfinite"] == 0
        w_after = np.concatenate(
            [v.numpy().ravel() for v in model.get_layer(name).trainable_variables]
        )
        w_prev = np.concatenate([w.ravel() for w in w_before[name]])
        assert stats["weight_norm"] == pytest.approx(np.linalg.norm(w_after), rel=1e-5)
        assert stats["update_ratio"] == pytest.approx(
            np.linalg.norm(w_after - w_prev) / np.linalg.norm(w_after), rel=1e-3
        )


def test_freq_gates_records_and_steps_continue_across_fits(tmp_path) -> None:
    x, y = toy_data(64)
    model = _sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path / "run", freq=3)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[scope])  # 16 steps
    first_dir = scope.run_dir
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[scope])  # 8 more
    assert scope.run_dir == first_dir  # the same callback object continues its run
    run = load_run(scope.run_dir)
    assert [r.step for r in run.records] == list(range(0, 24, 3))
    assert [e.epoch for e in run.epochs] == [0, 1, 0]
    assert run.meta.status == "completed"
    # A different callback on the same log_dir gets a run of its own beside it, never mixed.
    other = GradScope(tmp_path / "run", freq=3)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[other])
    assert other.run_dir != first_dir and other.run_dir.parent == first_dir.parent
    assert [r.step for r in load_run(first_dir).records] == list(range(0, 24, 3))
    assert [r.step for r in load_run(other.run_dir).records] == list(range(24, 32, 3))


def test_steps_per_execution_records_every_due_step(tmp_path) -> None:
    x, y = toy_data(64)
    model = _sequential()
    model.compile("sgd", "sparse_categorical_crossentropy", steps_per_execution=4)
    model.fit(
        x, y, batch_size=8, epochs=1, verbose=0, callbacks=[GradScope(tmp_path / "run", freq=1)]
    )
    run = load_run(tmp_path / "run")
    assert [r.step for r in run.records] == list(range(8))
    losses = [r.loss for r in run.records]
    assert len(set(losses)) == 8  # each record holds its own step's batch loss


def test_frozen_layer_is_listed_not_watched(tmp_path) -> None:
    model = _sequential()
    model.layers[0].trainable = False
    _, recorded = _fit_one_step(model, tmp_path)
    run = load_run(tmp_path / "run")
    frozen = run.layer(model.layers[0].name)
    assert frozen.trainable is False and frozen.watched is False
    assert "grad_norm" not in recorded.get(model.layers[0].name, {})
    assert "grad_norm" in recorded[model.layers[1].name]


def test_dead_relu_fraction(tmp_path) -> None:
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                32, activation="relu", bias_initializer=keras.initializers.Constant(-50.0)
            ),
            keras.layers.Dense(32, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    _, recorded = _fit_one_step(model, tmp_path)
    names = [layer.name for layer in model.layers]
    assert recorded[names[0]]["dead_frac"] == 1.0
    # The next layer sees only zeros: output = relu(bias = 0) = 0 -> dead as well, honestly.
    x, _ = toy_data(64)
    healthy = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(32, activation="relu", kernel_initializer="he_normal"),
        ]
    )
    healthy.compile("sgd", "mse")
    healthy.fit(
        x,
        np.zeros((64, 32)),
        batch_size=64,
        verbose=0,
        callbacks=[GradScope(tmp_path / "healthy", freq=1)],
    )
    rec = load_run(tmp_path / "healthy").records[0].layers[healthy.layers[0].name]
    out = healthy.layers[0](x).numpy()
    assert rec["dead_frac"] < 0.2
    assert rec["act_mean"] == pytest.approx(out.mean(), rel=0.05)


def test_sigmoid_saturation_with_huge_weights(tmp_path) -> None:
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                64,
                activation="sigmoid",
                kernel_initializer=keras.initializers.RandomNormal(stddev=50.0),
            ),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    _, recorded = _fit_one_step(model, tmp_path)
    assert recorded[model.layers[0].name]["sat_frac"] > 0.9
    assert "dead_frac" not in recorded[model.layers[0].name]


def test_probe_data_activations_match_direct_computation(tmp_path) -> None:
    x, y = toy_data(64)
    probe = x[:32]
    model = _sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(
        x,
        y,
        batch_size=64,
        epochs=1,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1, probe_data=probe)],
    )
    rec = load_run(tmp_path / "run").records[0].layers
    extractor = keras.Model(model.inputs, [layer.output for layer in model.layers])
    outs = extractor([probe])
    for layer, out in zip(model.layers, outs, strict=False):
        out = out.numpy()
        assert rec[layer.name]["act_mean"] == pytest.approx(out.mean(), rel=1e-4, abs=1e-6)
        assert rec[layer.name]["act_std"] == pytest.approx(out.std(), rel=1e-4)
    relu_out = outs[0].numpy()
    assert rec[model.layers[0].name]["dead_frac"] == pytest.approx(
        np.mean(np.all(relu_out <= 0, axis=0))
    )


def test_histograms_count_every_gradient_entry(tmp_path) -> None:
    model = _sequential()
    x, y = toy_data(64)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1, histogram_freq=2)],
    )
    hist = load_run(tmp_path / "run").histograms
    first = model.layers[0]
    counts = hist[f"grad/{first.name}"]
    assert counts.shape == (2, 72)
    assert list(hist[f"grad/{first.name}/steps"]) == [0, 2]
    assert counts.sum(axis=1).tolist() == [first.count_params()] * 2
    assert hist[f"act/{first.name}"].sum(axis=1).tolist() == [16 * 16] * 2


def test_validation_data_and_hooks_removed(tmp_path) -> None:
    x, y = toy_data(64)
    model = _sequential()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        validation_data=(x[:16], y[:16]),
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=2)],
    )
    run = load_run(tmp_path / "run")
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(run.epochs[-1].logs)
    assert [r.step for r in run.records] == [0, 2, 4, 6]
    assert "train_step" not in model.__dict__
    assert "_compute_loss" not in model.__dict__
    assert all("call" not in layer.__dict__ for layer in model.layers)
    assert "_backend_update_step" not in model.optimizer.__dict__


def test_interrupted_fit_leaves_a_loadable_run(tmp_path) -> None:
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 5:
                raise KeyboardInterrupt

    x, y = toy_data(64)
    model = _sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    scope = GradScope(tmp_path / "run", freq=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[scope, Interrupt()])
    run = load_run(tmp_path / "run")
    assert [r.step for r in run.records] == list(range(6))
    assert run.meta.status == "running"  # never marked completed
    lines = (scope.run_dir / "stats.jsonl").read_text().splitlines()
    assert all(json.loads(line)["step"] >= 0 for line in lines)
    # Fitting again with the same callback continues the run and then removes every hook.
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[scope])
    assert run.path == scope.run_dir
    run = load_run(scope.run_dir)
    assert [r.step for r in run.records] == list(range(6)) + list(range(6, 22))
    assert run.meta.status == "completed"
    assert "train_step" not in model.__dict__
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_nan_loss_is_recorded_not_crashed(tmp_path) -> None:
    x, _ = toy_data(64)
    target = np.ones((64, 3), "float32")
    target[3, 0] = np.nan
    model = _sequential()
    model.compile("sgd", "mse")
    model.fit(
        x,
        target,
        batch_size=64,
        epochs=2,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1)],
    )
    run = load_run(tmp_path / "run")
    assert len(run.records) == 2
    assert all(math.isnan(r.loss) for r in run.records)
    last = run.records[-1].layers[model.layers[-1].name]
    assert last["nonfinite"] > 0


def test_nan_input_shows_as_nonfinite_gradients(tmp_path) -> None:
    # Cross-entropy clips NaN probabilities, so the loss can look finite while gradients are not.
    x, y = toy_data(64)
    x[3, 0] = np.nan
    model = _sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(
        x, y, batch_size=64, epochs=1, verbose=0, callbacks=[GradScope(tmp_path / "run", freq=1)]
    )
    first = load_run(tmp_path / "run").records[0].layers[model.layers[0].name]
    assert first["nonfinite"] > 0
    assert math.isnan(first["grad_norm"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"freq": -1}, "Received: freq=-1"),
        ({"freq": 0}, "Received: freq=0"),
        ({"freq": 4, "activation_freq": 6}, "Received: activation_freq=6"),
        ({"histogram_freq": -2}, "Received: histogram_freq=-2"),
        ({"max_records": 1}, "Received: max_records=1"),
        ({"layers": "dense"}, "Received: layers='dense'"),
    ],
)
def test_invalid_arguments_say_what_was_received(kwargs, message, tmp_path) -> None:
    with pytest.raises(ValueError, match=message):
        GradScope(tmp_path, **kwargs)


def test_layer_selection(tmp_path) -> None:
    x, y = toy_data(64)
    model = _sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    name = model.layers[1].name
    model.fit(
        x,
        y,
        batch_size=64,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1, layers=[name])],
    )
    assert set(load_run(tmp_path / "run").records[0].layers) == {name}
    with pytest.raises(ValueError, match="Known layers"):
        model.fit(x, y, verbose=0, callbacks=[GradScope(tmp_path / "run2", layers=["nope"])])


def test_findings_written_at_end_of_fit(tmp_path) -> None:
    from gradscope.findings import read_findings

    x, y = toy_data(64)
    model = _sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = GradScope(tmp_path / "run", freq=1, verbose=0)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    assert (callback.run_dir / "findings.json").exists()
    assert read_findings(callback.run_dir) == callback.findings


def test_on_finding_stop_halts_on_nan(tmp_path) -> None:
    x, _ = toy_data(64)
    target = np.ones((64, 3), "float32")
    target[40:, 0] = np.nan  # batches from step 5 on produce a NaN loss
    model = _sequential()
    model.compile("sgd", "mse")
    callback = GradScope(tmp_path / "run", freq=1, on_finding="stop", verbose=0)
    with pytest.warns(UserWarning, match="GS105"):
        model.fit(x, target, batch_size=8, epochs=5, shuffle=False, verbose=0, callbacks=[callback])
    run = load_run(tmp_path / "run")
    # Stopped at the end of the first epoch-step where NaN appeared, not after 40 steps.
    assert run.records[-1].step == 5
    assert any(f.kind == "nonfinite" for f in callback.findings)


def test_on_finding_is_validated(tmp_path) -> None:
    with pytest.raises(ValueError, match="Received: on_finding='halt'"):
        GradScope(tmp_path, on_finding="halt")


def test_lazily_built_subclassed_model_is_recorded_from_step_one(tmp_path) -> None:
    x, y = toy_data(64)
    model = SubclassedNet()  # not built: Keras creates its weights while tracing step 0
    model.compile(keras.optimizers.SGD(LR), "sparse_categorical_crossentropy")
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradScope(tmp_path / "run", freq=1, verbose=0)],
    )
    run = load_run(tmp_path / "run")
    assert [r.step for r in run.records] == [1, 2, 3]
    assert len(run.records[0].layers) == 2
    assert all(r.layers[run.layer_names[0]]["grad_norm"] > 0 for r in run.records)


def test_unwritable_log_dir_fails_at_train_begin(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    x, y = toy_data(16)
    model = _sequential()
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(OSError, match="cannot write its run to log_dir"):
        model.fit(x, y, verbose=0, callbacks=[GradScope(blocker / "run")])
    assert "train_step" not in model.__dict__  # nothing was hooked


def test_the_write_check_leaves_another_process_probe_alone(tmp_path) -> None:
    # Two fits started at once into one log_dir both check it; with one shared probe name, one
    # process removed the other's probe and that fit failed at train begin (seen in the suite).
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    other = log_dir / ".gradscope-write-test"  # the name every process's probe had
    other.write_bytes(b"another process's probe")
    check_writable(log_dir)
    assert other.read_bytes() == b"another process's probe"
    assert [p.name for p in log_dir.iterdir()] == [other.name]  # its own probe is gone
