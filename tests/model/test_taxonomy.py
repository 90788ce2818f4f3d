"""One taxonomy: gradscope/model/taxonomy.py is the only module that names model parts.

Layer families, activation families and kinds, and initializer names used to be copied into the
collector, the graph editor, the spec and the fix transforms, and the copies drifted (hard_silu
was "leaky" in one and saturating in another; ThresholdedReLU and SyncBatchNormalization were
missing from some). An AST scan keeps new copies out; a control shows the scan can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras

import gradscope
from gradscope.collect import layers as collect_layers
from gradscope.data.schema import ACTIVATION_KINDS
from gradscope.model import graph, spec, taxonomy
from gradscope.model.taxonomy import (
    ACTIVATION_LAYER_CLASSES,
    ACTIVATION_LAYERS,
    ACTIVATIONS_BY_KIND,
    ALIASES,
    DROPOUT_LAYERS,
    INIT_RULES,
    KERNEL_LAYERS,
    MERGE_LAYERS,
    NORMALIZATION_LAYERS,
    RECURRENT_LAYERS,
    RELU_FAMILY,
    SATURATING,
    WRAPPER_LAYERS,
    activation_kind,
)

ROOT = Path(gradscope.__file__).parent
TAXONOMY = "model/taxonomy.py"

#: Layer class names only the taxonomy may list (model classes are left out: the loader's list of
#: serialization markers names Sequential/Functional/Model for another reason).
LAYER_NAMES = (
    KERNEL_LAYERS
    | NORMALIZATION_LAYERS
    | RECURRENT_LAYERS
    | DROPOUT_LAYERS
    | MERGE_LAYERS
    | WRAPPER_LAYERS
    | ACTIVATION_LAYER_CLASSES
)


def _strings(node: ast.AST) -> list[str] | None:
    # The string members of a set/frozenset/dict literal (dict keys and values), else None.
    if isinstance(node, ast.Set):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [x for x in (*node.keys, *node.values) if x is not None]
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("set", "frozenset")
        and node.args
        and isinstance(node.args[0], (ast.Tuple, ast.List))
    ):
        items = node.args[0].elts
    else:
        return None
    return [x.value for x in items if isinstance(x, ast.Constant) and isinstance(x.value, str)]


def is_taxonomy_table(names: list[str]) -> bool:
    """True if a literal's strings name model parts the way only the taxonomy may.

    Args:
        names: the string members of one set/frozenset/dict literal.

    Returns:
        True for a layer class of a family, an initializer alias, or two activations of one
        family (e.g. "sigmoid" and "tanh").
    """
    found = set(names)
    return bool(
        found & LAYER_NAMES
        or found & set(ALIASES)
        or len(found & SATURATING) >= 2
        or len(found & RELU_FAMILY) >= 2
    )


def taxonomy_copies(files: dict[str, str]) -> list[str]:
    """``"path:line"`` of every table of model-part names outside the taxonomy.

    Args:
        files: path relative to the package (``"model/graph.py"``) -> source.

    Returns:
        The offending literals, sorted.
    """
    out = []
    for path, source in files.items():
        if path == TAXONOMY:
            continue
        for node in ast.walk(ast.parse(source)):
            names = _strings(node)
            if names and is_taxonomy_table(names):
                out.append(f"{path}:{node.lineno}")
    return sorted(out)


def _package_sources() -> dict[str, str]:
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for path in ROOT.rglob("*.py")
    }


def test_only_the_taxonomy_names_model_parts() -> None:
    assert taxonomy_copies(_package_sources()) == []


def test_the_scan_can_fail() -> None:
    control = {
        "collect/x.py": 'KIND = {"sigmoid": "sigmoid", "tanh": "tanh"}\n',
        "model/y.py": 'NORM = frozenset({"BatchNormalization"})\n',
        "fix/z.py": 'HE = frozenset(("Dense",))\nINIT = {"he_normal": 2.0}\n',
        "detect/ok.py": 'KINDS = ("sigmoid", "tanh")\nGROUPS = {"relu": [], "selu": []}\n',
        TAXONOMY: 'SATURATING = frozenset({"sigmoid", "tanh"})\n',
    }
    expected = ["collect/x.py:1", "fix/z.py:1", "fix/z.py:2", "model/y.py:1"]
    assert taxonomy_copies(control) == expected


def test_the_taxonomy_is_the_table_everyone_reads() -> None:
    assert spec.ACTIVATION_LAYERS is ACTIVATION_LAYERS
    assert spec.NORMALIZATION_LAYERS is NORMALIZATION_LAYERS
    assert graph.PASS_THROUGH_LAYERS is taxonomy.PASS_THROUGH_LAYERS
    assert collect_layers.activation_kind is activation_kind


def test_families_decided_once() -> None:
    assert ACTIVATION_LAYERS["ThresholdedReLU"] == "relu"
    assert "SyncBatchNormalization" in NORMALIZATION_LAYERS
    assert NORMALIZATION_LAYERS <= taxonomy.PASS_THROUGH_LAYERS
    # hard_silu is ReLU-like (hard zero below -3, He init in MobileNetV3), never saturating.
    assert {"hard_silu", "hard_swish"} <= RELU_FAMILY - SATURATING
    # A saturating activation is never measured as a ReLU-like one, nor the reverse.
    for name in SATURATING:
        assert activation_kind(name) not in ("relu", "leaky"), name
    for name in RELU_FAMILY:
        assert activation_kind(name) in ("relu", "leaky"), name
    assert activation_kind("hard_silu") == "relu"
    assert set(ACTIVATIONS_BY_KIND) | {"other"} <= set(ACTIVATION_KINDS)
    assert INIT_RULES["he"].activations == RELU_FAMILY


def test_every_reader_sees_the_same_activation_layers() -> None:
    relu = keras.layers.ReLU(name="r")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="hard_silu", name="d"), relu]
    )
    infos = {i.name: i for i in collect_layers.plan_watch(model).infos}
    assert infos["d"].activation_kind == "relu"
    assert infos["r"].activation_kind == "relu"
    assert graph.is_activation_layer(relu) and graph.layer_activation(relu) == "relu"
    config = keras.saving.serialize_keras_object(model)
    layers = {x.name: x for x in spec.spec_from_config(config).layers}
    assert layers["r"].activation == "relu"
    assert layers["d"].effective_activation == "hard_silu"
