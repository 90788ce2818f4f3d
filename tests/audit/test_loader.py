"""Safe loading: formats, hostile and broken inputs, the Lambda marker file."""

import hashlib
import json
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from legacy_models import write_keras22_h5

from gradscope.errors import GradscopeInputError
from gradscope.model.loader import (
    ModelRebuildError,
    inspect_model_file,
    load_model_safely,
    scan_config,
    upgrade_legacy_config,
)


def small_model():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.SGD(0.1, clipnorm=1.0), "mse")
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    model = small_model()
    model.save(root / "m.keras")
    model.save(root / "m.h5")
    return root, model


def _one_line(err):
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    return text


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_loads_both_formats_with_same_weights(files, name):
    root, model = files
    loaded = load_model_safely(root / name)
    assert loaded.stored.format == ("keras" if name.endswith(".keras") else "h5")
    for a, b in zip(model.get_weights(), loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [x.name for x in loaded.spec.kernel_layers] == [x.name for x in model.layers]


def test_h5_optimizer_config_is_read_before_loading(files):
    root, _ = files
    stored = inspect_model_file(root / "m.h5")
    assert stored.spec.optimizer.class_name == "SGD"
    assert stored.spec.optimizer.clipnorm == 1.0
    assert stored.loss == "mse"


def test_format_is_sniffed_not_taken_from_the_name(files, tmp_path):
    root, _ = files
    disguised = tmp_path / "model.h5"
    disguised.write_bytes((root / "m.keras").read_bytes())
    assert inspect_model_file(disguised).format == "keras"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


BAD_PATHS = {
    "missing": (lambda p: p / "missing.h5", "No file"),
    "directory": (lambda p: p, "is a directory"),
    "savedmodel": (lambda p: _write(p / "saved" / "saved_model.pb", b"x").parent, "SavedModel"),
    "empty": (lambda p: _write(p / "empty.h5", b""), "empty"),
    "random_bytes": (lambda p: _write(p / "r.h5", np.random.default_rng(0).bytes(4096)), "neither"),
    "json": (lambda p: _write(p / "a.json", b'{"class_name": "Sequential"}'), "neither"),
}


@pytest.mark.parametrize(("make", "expected"), list(BAD_PATHS.values()), ids=list(BAD_PATHS))
def test_bad_paths(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(path)
    assert expected in _one_line(err)


def test_truncated_hdf5(files, tmp_path):
    root, _ = files
    data = (root / "m.h5").read_bytes()
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(bad)
    assert "truncated or corrupt HDF5" in _one_line(err)


def test_truncated_keras_zip(files, tmp_path):
    root, _ = files
    data = (root / "m.keras").read_bytes()
    bad = tmp_path / "trunc.keras"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(bad)
    assert "truncated or corrupt .keras" in _one_line(err)


def test_zip_without_config(tmp_path):
    path = tmp_path / "x.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(GradscopeInputError, match="no config.json"):
        load_model_safely(path)


def test_hdf5_that_is_not_a_model(tmp_path):
    plain = tmp_path / "data.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(plain)
    assert "not a saved Keras model" in _one_line(err)
    weights = tmp_path / "w.weights.h5"
    small_model().save_weights(weights)
    with pytest.raises(GradscopeInputError, match="not a saved Keras model"):
        load_model_safely(weights)


def test_no_trainable_weights(tmp_path):
    model = small_model()
    model.trainable = False
    model.save(tmp_path / "frozen.keras")
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(tmp_path / "frozen.keras")
    assert "no trainable weights" in _one_line(err)


def _marker_model(marker: Path):
    # The Lambda's function writes a marker file whenever it runs (e.g. while the model is
    # rebuilt); as a lambda expression it is stored as Python bytecode in the file.
    # (eval puts the path into the code object as a constant: no closure or defaults needed)
    source = (
        f"lambda t: (__import__('pathlib').Path({str(marker)!r}).write_text('pwned'), t * 2)[1]"
    )
    hostile = eval(source)
    inp = keras.Input((4,))
    out = keras.layers.Dense(1)(keras.layers.Lambda(hostile, name="evil")(inp))
    return keras.Model(inp, out)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_lambda_is_refused_and_does_not_run(tmp_path, suffix):
    marker = tmp_path / "marker.txt"
    model = _marker_model(marker)
    marker.unlink()  # building the model ran it once; start clean
    path = tmp_path / f"lambda{suffix}"
    model.save(path)
    marker.unlink(missing_ok=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(path)
    text = _one_line(err)
    assert "evil" in text and "--unsafe" in text
    assert not marker.exists()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # file untouched
    if suffix == ".h5":
        # With --unsafe the user opts in: the code runs (proving the marker mechanism works).
        load_model_safely(path, unsafe=True)
        assert marker.exists()


def test_unknown_custom_objects_are_named():
    config = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "mypkg.layers",
                    "class_name": "Fancy",
                    "registered_name": "mypkg>Fancy",
                    "config": {"name": "f"},
                },
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {
                        "name": "d",
                        "activation": {
                            "class_name": "function",
                            "config": "my_act",
                            "module": "mypkg",
                        },
                    },
                },
                {"class_name": "Dense", "config": {"name": "ok", "activation": "relu"}},
            ]
        },
    }
    lambdas, unknown = scan_config(config)
    assert lambdas == ()
    assert unknown == ("mypkg>Fancy", "my_act")


def test_standard_models_scan_clean(files):
    root, _ = files
    for name in ("m.keras", "m.h5"):
        stored = inspect_model_file(root / name)
        assert (stored.lambda_layers, stored.unknown_objects) == ((), ())
    rnn = keras.Sequential(
        [
            keras.Input((3, 2)),
            keras.layers.Bidirectional(keras.layers.LSTM(4)),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(1),
        ]
    )
    assert scan_config(keras.saving.serialize_keras_object(rnn)) == ((), ())


def test_keras22_file_loads_through_upgrade(tmp_path):
    path = write_keras22_h5(tmp_path / "old.h5")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_model_safely(path)
    assert loaded.stored.keras_version == "2.2.4"
    assert tuple(loaded.model.inputs[0].shape) == (None, 8)
    with h5py.File(path) as f:
        kernel = f["model_weights/dense_1/dense_1/kernel:0"][()]
    np.testing.assert_array_equal(loaded.model.layers[0].get_weights()[0], kernel)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_upgrade_only_when_needed():
    assert (
        upgrade_legacy_config(
            {
                "class_name": "Sequential",
                "config": {"layers": [{"class_name": "InputLayer", "config": {}}]},
            }
        )
        is None
    )
    assert upgrade_legacy_config({"class_name": "Functional", "config": {}}) is None


def test_unrebuildable_file_keeps_static_description(tmp_path):
    path = tmp_path / "odd.h5"
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "in"}},
                {
                    "class_name": "Dense",
                    "config": {"name": "d", "units": "not-a-number", "activation": "relu"},
                },
            ],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ModelRebuildError) as err:
        load_model_safely(path)
    assert err.value.stored.spec.layers[0].name == "d"
    assert "only static rules ran" in _one_line(err)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("command", ["audit", "fix"])
def test_cli_refuses_lambda_until_unsafe(tmp_path, suffix, command):
    from typer.testing import CliRunner

    from gradscope.cli import app

    marker = tmp_path / "marker.txt"
    model = _marker_model(marker)
    model.compile("sgd", "mse")
    path = tmp_path / f"lambda{suffix}"
    model.save(path)
    marker.unlink(missing_ok=True)  # building and saving ran the function; start clean
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    args = [command, str(path)] + (["--steps", "3"] if command == "fix" else [])
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1
    assert "evil" in refused.stderr and "--unsafe" in refused.stderr
    assert not marker.exists()
    # The user opts in: the file loads and its code runs (the marker proves it is the same file).
    trusted = CliRunner().invoke(app, [*args, "--unsafe"])
    assert trusted.exit_code in (0, 1), (trusted.stderr, trusted.exception)
    assert marker.read_text() == "pwned"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_lambda_in_keras_archive_is_named_once(tmp_path):
    path = tmp_path / "lambda.keras"
    _marker_model(tmp_path / "marker.txt").save(path)
    assert inspect_model_file(path).lambda_layers == ("evil",)


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_declared_weights_counts_without_allocating(files, name):
    from keras.src.backend.common import global_state

    from gradscope.model.loader import check_declared_size, declared_weights

    root, model = files
    stored = inspect_model_file(root / name)
    queued = list(global_state.get_global_attribute("uninitialized_variables") or [])
    assert declared_weights(stored) == model.count_params()
    check_declared_size(stored)  # an honest file passes
    # Nothing left queued for Keras to initialize (allocate) later.
    assert list(global_state.get_global_attribute("uninitialized_variables") or []) == queued


def test_compressed_keras_archive_is_not_mistaken_for_a_crafted_one(tmp_path):
    # Someone re-zipped a .keras with deflate: the file is smaller than its weights, honestly.
    big = keras.Sequential(
        [keras.Input((200,)), keras.layers.Dense(200, kernel_initializer="zeros")]
    )
    big.save(tmp_path / "big.keras")
    packed = tmp_path / "packed.keras"
    with (
        zipfile.ZipFile(tmp_path / "big.keras") as src,
        zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    assert packed.stat().st_size < big.count_params()  # zeros compress far below 1 byte/weight
    loaded = load_model_safely(packed)
    assert loaded.model.count_params() == big.count_params()


def test_crafted_declared_size_is_refused_before_allocating(tmp_path):
    path = tmp_path / "wide.h5"
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 50_000], "name": "i"},
                },
                {"class_name": "Dense", "config": {"name": "wide", "units": 50_000}},
            ],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(GradscopeInputError) as err:
        load_model_safely(path)
    assert "declares 2,500,050,000 weights" in _one_line(err)
