"""Synthetic trial inputs a model accepts: token ids, lengths its convolutions fit, several inputs.

And what happens when gradscope cannot make such inputs: a TrialNotRunError (the user's data is
not at fault), while huge declared inputs and the user's own bad data stay plain bad input.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gradscope.errors import GradscopeInputError, TrialNotRunError, error_summary
from gradscope.trial import feed, run_trial
from gradscope.trial.data import TrialData
from gradscope.trial.synthetic import (
    UNKNOWN_DIM_CANDIDATES,
    fitting_size,
    input_specs,
    synthetic_arrays,
)

VOCAB = 500


def text_classifier(dtype: str = "int32") -> keras.Model:
    """Embedding + two kernel-7 stride-3 Conv1D over a (None,) sequence: needs length >= 25."""
    tokens = keras.Input((None,), dtype=dtype, name="tokens")
    x = keras.layers.Embedding(VOCAB, 8)(tokens)
    x = keras.layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    x = keras.layers.Conv1D(8, 7, strides=3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(x))


def two_inputs() -> keras.Model:
    tokens = keras.Input((None,), name="tokens")  # float32 by default, as users often leave it
    numbers = keras.Input((5,), name="numbers")
    t = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 4)(tokens))
    n = keras.layers.Dense(4, activation="relu")(numbers)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([t, n]))
    model = keras.Model([tokens, numbers], out)
    model.compile(keras.optimizers.SGD(0.01), "binary_crossentropy")
    return model


class TokenAndPosition(keras.layers.Layer):
    """The keras-io transformer's input layer: a token table and a (smaller) position table."""

    def __init__(self, maxlen: int, vocab: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tokens = keras.layers.Embedding(vocab, 4)
        self.positions = keras.layers.Embedding(maxlen, 4)

    def call(self, x):
        length = keras.ops.shape(x)[-1]
        return self.tokens(x) + self.positions(keras.ops.arange(length))


def test_token_ids_at_the_first_length_the_convolutions_fit() -> None:
    model = text_classifier()
    (spec,) = input_specs(model)
    assert (spec.shape, spec.dtype, spec.vocabulary) == ((None,), "int32", VOCAB)
    size, out_shape = fitting_size(model, [spec])
    # 16 leaves the second convolution 4 steps for a kernel of 7; 64 is the first that fits.
    assert (size, out_shape) == (64, (3,)) and UNKNOWN_DIM_CANDIDATES[:2] == (16, 64)
    data = feed(model, n=40, seed=1)
    assert data.x.shape == (40, 64) and data.x.dtype == np.int32
    assert data.x.min() >= 0 and data.x.max() < VOCAB and len(np.unique(data.x)) > 100
    assert data.y.shape == (40,) and set(np.unique(data.y)) <= {0, 1, 2}


def test_float_input_feeding_an_embedding_gets_ids_in_its_dtype() -> None:
    model = keras.Sequential(
        [keras.Input((None,)), keras.layers.Embedding(20, 4), keras.layers.LSTM(3)]
    )
    x = feed(model, n=10).x
    assert x.dtype == np.float32 and x.shape == (10, 16)
    assert np.array_equal(x, np.round(x)) and x.min() >= 0 and x.max() < 20


def test_a_layer_holding_two_tables_gets_ids_valid_for_both() -> None:
    tokens = keras.Input((12,), dtype="int32")
    x = TokenAndPosition(maxlen=12, vocab=1000)(tokens)
    model = keras.Model(tokens, keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    assert input_specs(model)[0].vocabulary == 12


def test_other_dtypes() -> None:
    ints = keras.Input((3,), dtype="int32")
    flags = keras.Input((3,), dtype="bool")
    out = keras.layers.Dense(1)(
        keras.layers.Concatenate()(
            [keras.ops.cast(ints, "float32"), keras.ops.cast(flags, "float32")]
        )
    )
    (a, b), _ = synthetic_arrays(keras.Model([ints, flags], out), "mse", 8)
    assert a.dtype == np.int32 and set(np.unique(a)) <= {0, 1}
    assert b.dtype == bool


def test_two_input_model_trains_on_one_array_per_input(tmp_path) -> None:
    model = two_inputs()
    data = feed(model, n=20, seed=3)
    assert isinstance(data.x, tuple) and len(data) == 20
    tokens, numbers = data.x
    assert tokens.shape == (20, 16) and tokens.max() < 30 and numbers.shape == (20, 5)
    result = run_trial(model, data, 3, tmp_path, seed=3, batch_size=8)
    assert len(result.run.records) == 3
    (xb, yb), *_ = result.batches(data)
    assert isinstance(xb, list) and [a.shape for a in xb] == [(8, 16), (8, 5)]
    # The first recorded loss is the untrained model's on the first batch, inputs in order.
    expected = keras.losses.binary_crossentropy(yb, model(xb, training=False))
    assert result.run.records[0].loss == pytest.approx(float(np.mean(expected)), rel=1e-4)


def test_inputs_gradscope_cannot_make_are_trial_errors() -> None:
    strings = keras.Input((1,), dtype="string")
    ids = keras.layers.StringLookup(vocabulary=["a", "b"])(strings)
    text = keras.Model(strings, keras.layers.Dense(2)(keras.layers.Embedding(4, 2)(ids)))
    with pytest.raises(TrialNotRunError, match="takes strings") as err:
        feed(text, n=4)
    assert err.value.stage == "inputs"
    wide = keras.Sequential([keras.Input((None, 2)), keras.layers.Conv1D(2, 300)])
    with pytest.raises(TrialNotRunError, match="16, 64, 256") as err:
        feed(wide, n=4)
    assert err.value.stage == "inputs" and "\n" not in str(err.value)


def test_huge_inputs_and_bad_user_data_stay_bad_input(tmp_path) -> None:
    huge = keras.Sequential([keras.Input((4000, 4000)), keras.layers.Dense(1)])
    with pytest.raises(GradscopeInputError, match="refusing to allocate") as err:
        feed(huge, n=4)
    assert not isinstance(err.value, TrialNotRunError)
    model = text_classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    labels_out_of_range = TrialData(np.zeros((8, 64), "int32"), np.full(8, 7), synthetic=False)
    with pytest.raises(GradscopeInputError, match="check that y fits") as err:
        run_trial(model, labels_out_of_range, 1, tmp_path)
    assert not isinstance(err.value, TrialNotRunError)


def test_a_copy_that_fails_is_a_trial_error(tmp_path) -> None:
    class Scale(keras.layers.Layer):
        def __init__(self, factor: float, **kwargs) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return super().get_config()  # forgets `factor`: from_config cannot rebuild it

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), Scale(2.0)])
    scope = keras.saving.custom_object_scope({"Scale": Scale})
    with pytest.raises(TrialNotRunError, match="missing 1 required positional") as err, scope:
        run_trial(model, feed(model, n=8), 1, tmp_path)
    assert err.value.stage == "copy" and "\n" not in str(err.value)


def test_error_summary_keeps_the_cause_in_whole_sentences() -> None:
    wrapped = TypeError(
        "<class 'Sequential'> could not be deserialized properly.\n\nconfig={'a': 1}.\n\n"
        "Exception encountered: Could not locate class 'Scale'. Make sure it is imported. "
        "Full object config: {'class_name': 'Scale'}"
    )
    assert error_summary(wrapped) == (
        "TypeError: Could not locate class 'Scale'. Make sure it is imported."
    )
    call = ValueError(
        "Exception encountered when calling Conv1D.call().\n\n\x1b[1m{{function_node f}} "
        "Computed output size would be negative\x1b[0m\n\nArguments received by Conv1D.call():"
    )
    assert error_summary(call) == (
        "ValueError: Exception encountered when calling Conv1D.call(). Computed output size "
        "would be negative"
    )
    long = error_summary(ValueError("One sentence here. " + "word " * 200), limit=40)
    assert long == "ValueError: One sentence here."
    words = error_summary(ValueError("word " * 200), limit=50)
    assert words.endswith("word ...") and len(words) < 70


def test_user_data_for_several_inputs(tmp_path) -> None:
    model = two_inputs()
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 30, (12, 9)).astype("float32")
    numbers = rng.standard_normal((12, 5)).astype("float32")
    y = rng.integers(0, 2, (12, 1)).astype("float32")
    data = feed(model, [tokens, numbers], y, n=0)
    assert not data.synthetic and isinstance(data.x, tuple) and len(data) == 12
    assert len(run_trial(model, data, 2, tmp_path, batch_size=6).run.records) == 2
    with pytest.raises(GradscopeInputError, match=r"holds 1 array\(s\) but the model takes 2"):
        feed(model, numbers, y, n=0)
    with pytest.raises(GradscopeInputError, match=r"x\[1\] has example shape \(4,\)"):
        feed(model, [tokens, numbers[:, :4]], y, n=0)
    with pytest.raises(GradscopeInputError, match="differ in length"):
        feed(model, [tokens, numbers[:5]], y, n=0)


def test_declared_output_shape_of_functional_and_subclassed_models() -> None:
    from gradscope.trial.policy import declared_output_shape

    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert declared_output_shape(seq) == (2,) == tuple(seq(np.zeros((1, 3))).shape[1:])

    class Bare(keras.Model):
        def call(self, x):
            return x

    assert declared_output_shape(Bare()) is None  # no symbolic outputs to read
