"""Names a user knows: initializers as Keras aliases, and the user's model name after a fix."""

from __future__ import annotations

import json
import zipfile

import keras
import pytest
from typer.testing import CliRunner

from gradscope.audit import audit, inspect_model_file
from gradscope.cli import app
from gradscope.fix.load import load_for_fix
from gradscope.fix.transforms import apply_fix
from gradscope.model.rebuild import clone_with_weights
from gradscope.model.taxonomy import ALIASES, initializer_alias

NAMED = (
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "lecun_normal",
    "lecun_uniform",
)


@pytest.mark.parametrize("alias", NAMED)
def test_variance_scaling_configs_map_back_to_the_alias(alias: str) -> None:
    # Independent of gradscope's table: Keras's own named initializer says what it is made of.
    named = keras.initializers.get(alias)
    plain = keras.initializers.VarianceScaling(
        scale=named.scale, mode=named.mode, distribution=named.distribution
    )
    config = keras.initializers.serialize(plain)
    assert config["class_name"] == "VarianceScaling"  # what a fixed model's file stores
    assert initializer_alias(config) == alias
    assert initializer_alias(keras.initializers.serialize(named)) == alias  # "HeNormal" etc.
    assert initializer_alias(alias) == alias
    assert set(ALIASES) == set(NAMED)


def test_other_initializers_keep_their_class_name() -> None:
    odd = keras.initializers.VarianceScaling(scale=3.0, mode="fan_out", distribution="uniform")
    assert initializer_alias(keras.initializers.serialize(odd)) == "VarianceScaling"
    untruncated = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    assert initializer_alias(keras.initializers.serialize(untruncated)) == "VarianceScaling"
    normal = keras.initializers.serialize(keras.initializers.RandomNormal(stddev=0.1))
    assert initializer_alias(normal) == "RandomNormal"
    assert initializer_alias(None) is None
    # Keras 2.2 files wrote He normal as distribution "normal" (truncated, as Keras 3 reads it).
    legacy = {
        "class_name": "VarianceScaling",
        "config": {"scale": 2.0, "mode": "fan_in", "distribution": "normal"},
    }
    assert initializer_alias(legacy) == "he_normal"


def _relu_net(name: str = "deep_relu") -> keras.Model:
    model = keras.Sequential(
        [keras.Input((6,))]
        + [keras.layers.Dense(8, activation="relu", name=f"h{i}") for i in range(3)]
        + [keras.layers.Dense(3, activation="softmax", name="out")],
        name=name,
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def test_fixed_file_shows_he_normal_and_keeps_the_name(tmp_path) -> None:
    path = tmp_path / "deep_relu.keras"
    _relu_net().save(path)
    original = load_for_fix(path)  # loaded from a .keras file, as `gradscope fix` does
    fixed = apply_fix(original, "he_init")
    assert fixed.name == "deep_relu"
    out = tmp_path / "fixed.keras"
    fixed.save(out)
    # The file stores VarianceScaling (scale 2, fan_in, truncated normal)...
    config = json.loads(zipfile.ZipFile(out).read("config.json"))
    stored = config["config"]["layers"][1]["config"]["kernel_initializer"]
    assert stored["class_name"] == "VarianceScaling" and stored["config"]["scale"] == 2.0
    assert config["config"]["name"] == "deep_relu"
    # ...and every view names it he_normal: the static description (model table of audit) ...
    spec = inspect_model_file(out).spec
    assert [x.kernel_init.display for x in spec.kernel_layers] == ["he_normal"] * 3 + [
        "glorot_uniform"
    ]
    # ... and the probe run's metadata, which the HTML report's model table shows.
    result = audit(out, steps=4, log_dir=tmp_path / "probe")
    inits = {x.name: x.kernel_initializer for x in result.run.layers}
    assert inits == {
        "h0": "he_normal",
        "h1": "he_normal",
        "h2": "he_normal",
        "out": "glorot_uniform",
    }
    assert result.run.meta.model_name == "deep_relu"


def test_gradscope_fix_cli_keeps_the_model_name(tmp_path) -> None:
    path = tmp_path / "net.keras"
    _relu_net("my_relu_net").save(path)
    out = tmp_path / "fixed.keras"
    args = ["fix", str(path), "--apply", "he_init", "-o", str(out), "--steps", "6"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output  # written either way with --apply
    assert keras.models.load_model(out).name == "my_relu_net"


def test_subclassed_copy_keeps_the_name_its_config_leaves_out() -> None:
    class Net(keras.Model):
        def __init__(self, units: int = 4, **kwargs) -> None:
            super().__init__(**kwargs)
            self.units = units
            self.dense = keras.layers.Dense(units)

        def call(self, x):
            return self.dense(x)

        def get_config(self) -> dict:
            return {"units": self.units}  # no name: Keras would call the copy "net_1"

    net = Net(name="users_net")
    net(keras.ops.zeros((1, 3)))
    copy = clone_with_weights(net, "'users_net'", "copy it by hand.")
    assert copy.name == "users_net" and copy is not net
