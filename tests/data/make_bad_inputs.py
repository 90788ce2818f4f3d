"""Writes the bad-input corpus under ``tests/data/bad_inputs/``: tiny, byte-for-byte deterministic.

Usage::

    python tests/data/make_bad_inputs.py            # rewrite tests/data/bad_inputs/
    python tests/data/make_bad_inputs.py OUT_DIR    # write the corpus somewhere else

Every file is made with numpy, h5py, zipfile and json only (no Keras, fixed zip timestamps,
hash-derived "random" bytes), so the bytes do not depend on the Keras or Python version and
``tests/test_bad_inputs.py`` can check that the committed corpus equals what this script writes.
Model files are HDF5 files in the Keras 2.2 layout (as TF1-era Keras wrote them; Keras 3 loads them
through gradscope's legacy upgrade) and hand-written ``.keras`` archives.

:data:`CASES` is the manifest: for each case the command(s) it goes through, the fragment the
one-line error must contain, and the fragment that tells the user what to do. The same table is
written to ``manifest.json`` next to the files, for readers who do not run Python.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

#: Where the committed corpus lives.
CORPUS = Path(__file__).resolve().parent / "bad_inputs"
#: Fixed timestamp of every zip member (.keras and .npz), so archives are reproducible.
ZIP_TIME = (2026, 11, 23, 0, 0, 0)
#: Input width of the corpus's valid model (``models/tiny.h5``).
TINY_INPUT = 8


@dataclass(frozen=True)
class Case:
    """One bad input and what gradscope must say about it.

    Attributes:
        name: the case id (pytest id).
        target: the MODEL (audit, fix) or RUN_DIR (report) argument, relative to the corpus;
            may name a path that intentionally does not exist.
        commands: the CLI commands the case goes through (``audit``, ``fix``, ``report``).
        fragment: text the one-line error must contain (what is wrong).
        hint: text the error must also contain (what to do about it).
        data: the ``--data`` npz, relative to the corpus, if the case is about the data.
        out: the ``-o`` path of ``report``, relative to the corpus, if the case is about it.
    """

    name: str
    target: str
    commands: tuple[str, ...]
    fragment: str
    hint: str
    data: str | None = None
    out: str | None = None


MODEL_COMMANDS = ("audit", "fix")

CASES: tuple[Case, ...] = (
    # --- model files -------------------------------------------------------------------------
    Case("missing_file", "models/missing.h5", MODEL_COMMANDS, "No file at", "Check the path"),
    Case("directory", "runs", MODEL_COMMANDS, "is a directory", "pass a model file"),
    Case(
        "savedmodel_dir",
        "models/saved_model",
        MODEL_COMMANDS,
        "SavedModel directory",
        "re-save with model.save('model.keras')",
    ),
    Case("empty_file", "models/empty.h5", MODEL_COMMANDS, "is empty (0 bytes)", "Save the model"),
    Case(
        "random_bytes_h5",
        "models/random.h5",
        MODEL_COMMANDS,
        "neither a .keras archive nor an HDF5",
        "model.save('model.keras')",
    ),
    Case(
        "random_bytes_keras",
        "models/random.keras",
        MODEL_COMMANDS,
        "neither a .keras archive nor an HDF5",
        "model.save('model.keras')",
    ),
    Case(
        "truncated_h5",
        "models/truncated.h5",
        MODEL_COMMANDS,
        "truncated or corrupt HDF5",
        "save the model again",
    ),
    Case(
        "truncated_keras",
        "models/truncated.keras",
        MODEL_COMMANDS,
        "truncated or corrupt .keras archive",
        "save the model again",
    ),
    Case(
        "hdf5_not_a_model",
        "models/not_a_model.h5",
        MODEL_COMMANDS,
        "not a saved Keras model",
        "model.save('model.keras')",
    ),
    Case(
        "hdf5_weights_only",
        "models/weights_only.h5",
        MODEL_COMMANDS,
        "holds weights only",
        "load_weights",
    ),
    Case(
        "zip_not_a_model",
        "models/not_a_model.keras",
        MODEL_COMMANDS,
        "not a .keras model (no config.json)",
        "model.save('model.keras')",
    ),
    Case(
        "no_trainable_weights",
        "models/frozen.h5",
        MODEL_COMMANDS,
        "no trainable weights",
        "trainable = True",
    ),
    Case("lambda_h5", "models/lambda.h5", MODEL_COMMANDS, "Lambda layers ['double']", "--unsafe"),
    Case(
        "lambda_keras",
        "models/lambda.keras",
        MODEL_COMMANDS,
        "Lambda layers ['double']",
        "--unsafe",
    ),
    Case(
        "custom_object_keras",
        "models/custom.keras",
        MODEL_COMMANDS,
        "unknown custom objects ['mypkg>Fancy']",
        "--unsafe",
    ),
    Case(
        "huge_input_shape",
        "models/huge_input.h5",
        MODEL_COMMANDS,
        "refusing to allocate",
        "Pass --data",
    ),
    Case(
        "huge_weights",
        "models/huge_weights.h5",
        MODEL_COMMANDS,
        "declares 20,000,800,003 weights",
        "save the model again",
    ),
    # --- --data files (with the valid models/tiny.h5) -------------------------------------------
    Case(
        "npz_missing_x",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "lacks array(s) ['x']",
        "np.savez",
        data="data/no_x.npz",
    ),
    Case(
        "npz_missing_y",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "lacks array(s) ['y']",
        "np.savez",
        data="data/no_y.npz",
    ),
    Case(
        "npz_missing_file",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "No data file",
        "Pass an .npz",
        data="data/missing.npz",
    ),
    Case(
        "npz_not_npz",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "is not an .npz archive",
        "np.savez",
        data="data/random.npz",
    ),
    Case(
        "npz_object_array",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "not a readable .npz",
        "np.savez",
        data="data/pickled.npz",
    ),
    Case(
        "npz_wrong_shape",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "example shape (5,)",
        "reshape",
        data="data/wrong_shape.npz",
    ),
    Case(
        "npz_wrong_rank",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "example shape (2, 4)",
        "reshape",
        data="data/wrong_rank.npz",
    ),
    Case(
        "npz_length_mismatch",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "differ in length",
        "one target per example",
        data="data/length_mismatch.npz",
    ),
    Case(
        "npz_nan_in_x",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "NaN or Inf",
        "clean it",
        data="data/nan_x.npz",
    ),
    Case(
        "npz_inf_in_y",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "NaN or Inf",
        "clean it",
        data="data/inf_y.npz",
    ),
    Case(
        "npz_zero_examples",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "zero examples",
        "at least one",
        data="data/zero_examples.npz",
    ),
    Case(
        "npz_strings",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "numeric arrays",
        "astype",
        data="data/strings.npz",
    ),
    # Targets that only fail once Keras computes the loss (tiny.h5 trains with one-hot targets).
    Case(
        "npz_y_wrong_width",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "Training on the data failed",
        "check that y fits the model's output shape (3,)",
        data="data/y_wrong_width.npz",
    ),
    Case(
        "npz_y_labels_for_onehot_loss",
        "models/tiny.h5",
        MODEL_COMMANDS,
        "Training on the data failed",
        "loss 'categorical_crossentropy'",
        data="data/labels.npz",
    ),
    Case(
        "npz_label_out_of_range",
        "models/tiny_sparse.h5",
        MODEL_COMMANDS,
        "outside the valid range of [0, 3)",
        "check that y fits",
        data="data/labels_out_of_range.npz",
    ),
    # --- run directories ------------------------------------------------------------------------
    Case("run_missing", "runs/missing", ("report",), "No run directory", "log_dir"),
    Case("run_is_a_file", "models/tiny.h5", ("report",), "No run directory", "log_dir"),
    Case("run_without_meta", "runs/no_meta", ("report",), "has no meta.json", "log_dir"),
    Case("run_corrupt_meta", "runs/corrupt_meta", ("report",), "is corrupt", "record the run"),
    Case("run_newer_schema", "runs/future_schema", ("report",), "newer than", "Upgrade gradscope"),
    Case(
        "run_corrupt_findings",
        "runs/bad_findings",
        ("report",),
        "findings.json' is unreadable",
        "delete it",
    ),
    Case(
        "report_out_is_directory",
        "runs/torn_last_line",
        ("report",),
        "is a directory",
        "pass the path of the HTML file",
        out="runs",
    ),
    Case(
        "run_malformed_finding",
        "runs/malformed_findings",
        ("report",),
        "Finding #0 is malformed",
        "delete it",
    ),
)


@dataclass(frozen=True)
class Control:
    """A valid input next to the bad ones: it must *not* be refused (exit 0 or 1, no error).

    Attributes:
        name: the control id.
        target: MODEL or RUN_DIR, relative to the corpus.
        commands: the CLI commands it goes through.
        data: the ``--data`` npz, if any.
    """

    name: str
    target: str
    commands: tuple[str, ...]
    data: str | None = None


CONTROLS: tuple[Control, ...] = (
    Control("valid_model_and_data", "models/tiny.h5", MODEL_COMMANDS, data="data/ok.npz"),
    Control("valid_sparse_model", "models/tiny_sparse.h5", ("audit",), data="data/labels.npz"),
    Control("torn_last_line_run", "runs/torn_last_line", ("report",)),
)


# --------------------------------------------------------------------------- file builders


def _pseudo_random(n: int, label: str) -> bytes:
    # Hash-derived bytes: identical on every platform and library version (unlike RNG streams).
    return hashlib.shake_256(f"gradscope bad input {label}".encode()).digest(n)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED  # zlib output may change between versions
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    members = {}
    for name, array in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(array), allow_pickle=True)
        members[f"{name}.npy"] = buf.getvalue()
    return _zip(members)


def _h5(build: Callable[[h5py.File], None]) -> bytes:
    buf = io.BytesIO()
    # libver="earliest" and no timestamps (h5py's default) keep the bytes reproducible.
    with h5py.File(buf, "w", libver="earliest") as f:
        build(f)
    return buf.getvalue()


def _dense(name: str, units: int, activation: str, *, trainable: bool = True) -> dict[str, Any]:
    init = {"scale": 2.0, "mode": "fan_in", "distribution": "normal", "seed": None}
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": trainable,
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {"class_name": "VarianceScaling", "config": init},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }


def _keras22_model(
    layers: list[dict[str, Any]],
    weights: dict[str, list[np.ndarray]],
    input_shape: list[int],
    loss: str = "categorical_crossentropy",
) -> bytes:
    """A Keras 2.2-era HDF5 model file: Sequential config as a bare list of layers."""
    layers = [dict(x, config=dict(x["config"])) for x in layers]
    layers[0]["config"]["batch_input_shape"] = [None, *input_shape]
    layers[0]["config"]["dtype"] = "float32"
    training = {
        "optimizer_config": {"class_name": "SGD", "config": {"lr": 0.01, "momentum": 0.0}},
        "loss": loss,
        "metrics": [],
    }

    def build(f: h5py.File) -> None:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": layers})
        f.attrs["training_config"] = json.dumps(training)
        group = f.create_group("model_weights")
        names = [x["config"]["name"] for x in layers]
        group.attrs["layer_names"] = [n.encode() for n in names]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.2.4"
        for name in names:
            arrays = weights.get(name, [])
            layer = group.create_group(name)
            var_names = ["kernel:0", "bias:0"][: len(arrays)]
            layer.attrs["weight_names"] = [f"{name}/{v}".encode() for v in var_names]
            inner = layer.create_group(name)
            for var, array in zip(var_names, arrays, strict=True):
                inner[var] = array

    return _h5(build)


def _tiny_weights() -> dict[str, list[np.ndarray]]:
    # Fixed, hash-free weights: a small ramp is enough for a model that must merely load and train.
    k1 = (np.arange(TINY_INPUT * 4, dtype="float32").reshape(TINY_INPUT, 4) % 7 - 3) / 10
    k2 = (np.arange(4 * 3, dtype="float32").reshape(4, 3) % 5 - 2) / 10
    return {
        "hidden": [k1, np.zeros(4, "float32")],
        "output": [k2, np.zeros(3, "float32")],
    }


def _tiny(*, trainable: bool = True, loss: str = "categorical_crossentropy") -> bytes:
    layers = [
        _dense("hidden", 4, "relu", trainable=trainable),
        _dense("output", 3, "softmax", trainable=trainable),
    ]
    return _keras22_model(layers, _tiny_weights(), [TINY_INPUT], loss=loss)


def _lambda_h5() -> bytes:
    # The function field is a placeholder, not bytecode: gradscope refuses the file from its
    # config alone, before anything is deserialized. (tests/audit/test_loader.py checks with real
    # bytecode that writes a marker file that nothing runs without --unsafe.)
    lam = {
        "class_name": "Lambda",
        "config": {
            "name": "double",
            "trainable": True,
            "function": ["bm90IGJ5dGVjb2RlOiByZWZ1c2VkIGJlZm9yZSBsb2FkaW5n\n", None, None],
            "function_type": "lambda",
            "output_shape": None,
            "output_shape_type": "raw",
            "arguments": {},
        },
    }
    weights = _tiny_weights()
    layers = [_dense("hidden", 4, "relu"), lam, _dense("output", 3, "softmax")]
    return _keras22_model(layers, weights, [TINY_INPUT])


def _huge_input() -> bytes:
    # 10^7 time steps x 16 features per example: a legitimate config (the model itself is tiny),
    # but synthetic probe data for it would need 640 MB per example.
    pool = {
        "class_name": "GlobalAveragePooling1D",
        "config": {"name": "pool", "trainable": True, "data_format": "channels_last"},
    }
    kernel = (np.arange(16 * 3, dtype="float32").reshape(16, 3) % 5 - 2) / 10
    weights = {"output": [kernel, np.zeros(3, "float32")]}
    return _keras22_model([pool, _dense("output", 3, "softmax")], weights, [10_000_000, 16])


def _huge_weights() -> bytes:
    # Declares a 100,000 x 200,000 kernel (80 GB of float32) in a file of a few KB, with no
    # weights stored: deserializing would allocate before any weight is read.
    layers = [_dense("wide", 200_000, "relu"), _dense("output", 3, "softmax")]
    return _keras22_model(layers, {}, [100_000])


def _not_a_model_h5() -> bytes:
    def build(f: h5py.File) -> None:
        f["x"] = np.arange(4, dtype="float32")
        f.attrs["note"] = "plain HDF5 data, no model_config"

    return _h5(build)


def _weights_only_h5() -> bytes:
    # Keras 2 model.save_weights(): layer_names at the root, no model_config.
    def build(f: h5py.File) -> None:
        f.attrs["layer_names"] = [b"hidden"]
        f.attrs["backend"] = b"tensorflow"
        layer = f.create_group("hidden")
        layer.attrs["weight_names"] = [b"hidden/kernel:0"]
        layer.create_group("hidden")["kernel:0"] = np.ones((2, 2), "float32")

    return _h5(build)


def _keras3_config(middle: dict[str, Any]) -> bytes:
    def layer(cls: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
        return {"module": module, "class_name": cls, "config": config, "registered_name": None}

    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": "float32",
            "layers": [
                layer("InputLayer", {"batch_shape": [None, 4], "dtype": "float32", "name": "in"}),
                middle,
                layer("Dense", {"name": "out", "units": 1, "activation": "linear"}),
            ],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
    }
    return json.dumps(config, indent=1, sort_keys=True).encode()


_KERAS_META = json.dumps({"keras_version": "3.0.0", "date_saved": "2026-11-23@00:00:00"}).encode()


def _lambda_keras() -> bytes:
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "registered_name": None,
        "config": {
            "name": "double",
            "trainable": True,
            "function": {
                "class_name": "__lambda__",
                "config": {
                    "code": "bm90IGJ5dGVjb2RlOiByZWZ1c2VkIGJlZm9yZSBsb2FkaW5n",
                    "defaults": None,
                    "closure": None,
                },
            },
            "arguments": {},
        },
    }
    return _zip({"metadata.json": _KERAS_META, "config.json": _keras3_config(lam)})


def _custom_keras() -> bytes:
    fancy = {
        "module": "mypkg.layers",
        "class_name": "Fancy",
        "registered_name": "mypkg>Fancy",
        "config": {"name": "fancy", "trainable": True},
    }
    return _zip({"metadata.json": _KERAS_META, "config.json": _keras3_config(fancy)})


def _truncated_keras() -> bytes:
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {"name": "hidden", "units": 4, "activation": "relu"},
    }
    whole = _zip(
        {
            "metadata.json": _KERAS_META,
            "config.json": _keras3_config(dense),
            "model.weights.h5": _tiny(),
        }
    )
    return whole[: len(whole) // 2]  # the central directory (at the end) is gone


def _run_meta(schema_version: int = 1) -> bytes:
    meta = {
        "schema_version": schema_version,
        "gradscope_version": "0.0.0",
        "model": {
            "name": "tiny",
            "layers": [
                {
                    "name": "hidden",
                    "class": "Dense",
                    "activation": "relu",
                    "activation_kind": "relu",
                    "kernel_initializer": "HeNormal",
                    "units": 4,
                    "params": 36,
                    "trainable": True,
                    "watched": True,
                    "variables": ["kernel", "bias"],
                }
            ],
            "optimizer": {"class": "SGD", "config": {"learning_rate": 0.01}},
        },
        "config": {"freq": 1},
        "created": "2026-11-23T00:00:00+00:00",
        "status": "completed",
    }
    return json.dumps(meta, indent=1).encode()


def _stats_lines(n: int) -> bytes:
    lines = []
    for step in range(n):
        layer = {"grad_norm": 0.1, "weight_norm": 1.0, "update_ratio": 1e-3, "nonfinite": 0.0}
        record = {"step": step, "epoch": 0, "loss": 1.0, "lr": 0.01, "layers": {"hidden": layer}}
        lines.append(json.dumps(record, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


#: Relative path -> bytes of every file in the corpus (directories come from the paths).
def corpus_files() -> dict[str, bytes]:
    """Returns every file of the corpus as relative path -> bytes.

    Returns:
        The files, in a stable order.

    Example:
        >>> sorted(corpus_files())[:2]
        ['data/inf_y.npz', 'data/length_mismatch.npz']
    """
    x = (np.arange(16 * TINY_INPUT, dtype="float32").reshape(16, TINY_INPUT) % 11 - 5) / 5
    y = (np.arange(16) % 3).astype("int32")
    nan_x = x.copy()
    nan_x[3, 2] = np.nan
    inf_y = y.astype("float32")
    inf_y[5] = np.inf
    files = {
        "models/tiny.h5": _tiny(),
        "models/tiny_sparse.h5": _tiny(loss="sparse_categorical_crossentropy"),
        "models/empty.h5": b"",
        "models/random.h5": _pseudo_random(512, "h5"),
        "models/random.keras": _pseudo_random(512, "keras"),
        "models/truncated.h5": _tiny()[:1500],
        "models/truncated.keras": _truncated_keras(),
        "models/not_a_model.h5": _not_a_model_h5(),
        "models/weights_only.h5": _weights_only_h5(),
        "models/not_a_model.keras": _zip({"hello.txt": b"not a model\n"}),
        "models/frozen.h5": _tiny(trainable=False),
        "models/lambda.h5": _lambda_h5(),
        "models/lambda.keras": _lambda_keras(),
        "models/custom.keras": _custom_keras(),
        "models/huge_input.h5": _huge_input(),
        "models/huge_weights.h5": _huge_weights(),
        # Looks like TensorFlow's SavedModel layout; the protobuf is junk (never parsed).
        "models/saved_model/saved_model.pb": _pseudo_random(64, "savedmodel"),
        "models/saved_model/variables/variables.index": _pseudo_random(32, "index"),
        "data/no_x.npz": _npz(y=y),
        "data/no_y.npz": _npz(x=x),
        "data/random.npz": _pseudo_random(256, "npz"),
        "data/pickled.npz": _npz(x=np.array([{"a": 1}] * 4, dtype=object), y=y[:4]),
        "data/wrong_shape.npz": _npz(x=x[:, :5], y=y),
        "data/wrong_rank.npz": _npz(x=x.reshape(16, 2, 4), y=y),
        "data/length_mismatch.npz": _npz(x=x, y=y[:12]),
        "data/nan_x.npz": _npz(x=nan_x, y=y),
        "data/inf_y.npz": _npz(x=x, y=inf_y),
        "data/zero_examples.npz": _npz(x=x[:0], y=y[:0]),
        "data/strings.npz": _npz(x=np.array([["a"] * TINY_INPUT] * 4), y=y[:4]),
        "data/y_wrong_width.npz": _npz(x=x, y=np.zeros((16, 5), "float32")),
        "data/labels.npz": _npz(x=x, y=y),
        "data/labels_out_of_range.npz": _npz(x=x, y=y * 4),
        "data/ok.npz": _npz(x=x, y=np.eye(3, dtype="float32")[y]),
        "runs/no_meta/stats.jsonl": _stats_lines(3),
        "runs/corrupt_meta/meta.json": b'{"schema_version": 1, "model": {"lay',
        "runs/future_schema/meta.json": _run_meta(schema_version=99),
        "runs/bad_findings/meta.json": _run_meta(),
        "runs/bad_findings/stats.jsonl": _stats_lines(4),
        "runs/bad_findings/findings.json": b'{"schema_version": 1, "findings": [{"code": ',
        "runs/malformed_findings/meta.json": _run_meta(),
        "runs/malformed_findings/stats.jsonl": _stats_lines(4),
        "runs/malformed_findings/findings.json": b'{"schema_version": 1, "findings": [{"kind": '
        b'"nonfinite"}]}\n',
        # A control, not a bad input: a run killed mid-write still reports (torn line skipped).
        "runs/torn_last_line/meta.json": _run_meta(),
        "runs/torn_last_line/stats.jsonl": _stats_lines(4) + b'{"step": 4, "epoch": 0, "lo',
    }
    return dict(sorted(files.items()))


def manifest() -> dict[str, Any]:
    """Returns the manifest written to ``manifest.json``: every case and its expectations.

    Returns:
        ``{"cases": [...], "files": {path: sha256}}``.

    Example:
        >>> manifest()["cases"][0]["name"]
        'missing_file'
    """
    return {
        "generator": "tests/data/make_bad_inputs.py",
        "cases": [asdict(c) | {"commands": list(c.commands)} for c in CASES],
        "controls": [asdict(c) | {"commands": list(c.commands)} for c in CONTROLS],
        "files": {p: hashlib.sha256(b).hexdigest() for p, b in corpus_files().items()},
    }


def write_corpus(root: Path = CORPUS) -> list[Path]:
    """(Re)writes the corpus into ``root``, removing whatever was there.

    Args:
        root: the corpus directory.

    Returns:
        The files written, ``manifest.json`` last.

    Example:
        >>> write_corpus(Path(tempfile.mkdtemp()))[-1].name  # doctest: +SKIP
        'manifest.json'
    """
    if root.exists():
        shutil.rmtree(root)
    written = []
    for rel, data in corpus_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest(), indent=1) + "\n", encoding="utf-8")
    written.append(path)
    return written


def main(argv: list[str]) -> int:
    """Writes the corpus to ``argv[0]`` (default: the committed location) and lists it."""
    root = Path(argv[0]) if argv else CORPUS
    files = write_corpus(root)
    total = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {total:,} bytes, {len(CASES)} cases in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
