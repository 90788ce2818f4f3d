"""``gradscope fix`` as a function: option checks, exit codes, where output goes."""

import io
import json

import keras
import numpy as np
import pytest
from typer.testing import CliRunner

from gradscope.cli import app
from gradscope.fix import command
from gradscope.fix.command import EXIT_BAD_INPUT, EXIT_OK, fix_command


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixcmd")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="sigmoid"),
            keras.layers.Dense(8, activation="sigmoid"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    path = root / "m.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    np.savez(root / "d.npz", x=x, y=(x[:, 0] > 0).astype("int64"))
    return path


def run(model, **kw):
    out, err = io.StringIO(), io.StringIO()
    code = fix_command(model, stdout=out, stderr=err, **kw)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"fix_ids": ["magic"], "output": "f.keras"}, "Unknown fix ids ['magic']"),
        ({"fix_ids": ["he_init"], "auto": True, "output": "f.keras"}, "either --apply or --auto"),
        ({"auto": True}, "Pass -o FIXED.keras"),
        ({"auto": True, "output": "f.h5"}, "-o must end in .keras"),
        ({"auto": True, "output": "m.keras"}, "never overwritten"),
    ],
)
def test_bad_options_exit_two_with_one_line(model_file, kw, needle):
    if "output" in kw:
        kw["output"] = model_file.parent / kw["output"]
    code, out, err = run(model_file, **kw)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gradscope fix: ") and needle in err


def test_key_error_message_loses_its_quotes(model_file, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyError("no such thing")

    monkeypatch.setattr(command, "load_for_fix", boom)
    code, _, err = run(model_file)
    assert code == EXIT_BAD_INPUT
    assert err == "gradscope fix: no such thing\n"


def test_debug_env_shows_the_exception(model_file, monkeypatch):
    monkeypatch.setenv("GRADSCOPE_DEBUG", "1")
    with pytest.raises(ValueError, match="No file"):
        fix_command(model_file.parent / "missing.keras")


def test_plan_only_prints_json_to_stdout_alone(model_file):
    code, out, _ = run(model_file, data=model_file.parent / "d.npz", steps=5, as_json=True)
    assert code == EXIT_OK
    doc = json.loads(out)
    assert set(doc) == {"findings", "plan", "setup"}


def test_apply_writes_the_fixed_model(model_file, tmp_path):
    fixed = tmp_path / "fixed.keras"
    code, out, _ = run(
        model_file,
        fix_ids=["clip_norm"],
        output=fixed,
        data=model_file.parent / "d.npz",
        steps=5,
        as_json=True,
    )
    doc = json.loads(out)
    assert doc["applied"] == ["clip_norm"]
    assert doc["output"] == str(fixed) and fixed.exists()
    assert code == (EXIT_OK if doc["verified"] else command.EXIT_UNVERIFIED)


def test_typer_wiring(model_file):
    result = CliRunner().invoke(app, ["fix", str(model_file), "--apply", " he_init, magic ,"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Unknown fix ids ['magic']" in result.output


def test_overrides_train_the_trials_and_land_in_the_fixed_file(model_file, tmp_path):
    fixed = tmp_path / "fixed.keras"
    code, out, _ = run(
        model_file,
        fix_ids=["lower_learning_rate"],
        output=fixed,
        data=model_file.parent / "d.npz",
        epochs=2,
        optimizer="adam",
        learning_rate=0.2,
        batch_size=16,
    )
    assert code in (EXIT_OK, command.EXIT_UNVERIFIED)
    assert "optimizer Adam (command line), learning rate 0.2 (command line)" in out
    assert "loss sparse_categorical_crossentropy (model), batch size 16 (command line)" in out
    # 64 examples are all trained on: none is left to hold out, so those are scored.
    assert "Learning, scored on the 64 examples trained on, by epoch" in out
    # The file carries the optimizer the copy was verified with: Adam at 0.2 / 10.
    loaded = keras.models.load_model(fixed)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.02)
