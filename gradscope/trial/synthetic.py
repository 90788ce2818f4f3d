"""Synthetic inputs a model accepts, and targets drawn for its loss, for a trial without data.

Every input of the model gets an array of the shape, dtype and range its input layer takes:

- **token ids** in ``[0, vocabulary)`` for an input that feeds an ``Embedding`` (or a
  ``CategoryEncoding``, or a layer holding one), in the input's dtype: standard-normal floats
  would be cast to ids -1, 0, 1 and index outside the table;
- integers in ``[0, 2)`` for other integer inputs, booleans for boolean ones, standard-normal
  values for float inputs;
- **unknown dimensions** (``None``: a sequence length, an image size) become the first of
  :data:`UNKNOWN_DIM_CANDIDATES` for which the model's symbolic forward pass
  (``compute_output_spec``) succeeds, so strided convolutions and pooling never run out of
  length; the same size is used for every unknown dimension of every input.

Targets follow the loss and the output shape of that forward pass.

Example:
    >>> x, y = synthetic_arrays(model, "sparse_categorical_crossentropy", n=64)  # doctest: +SKIP
    >>> [a.shape for a in x], y.shape  # doctest: +SKIP
    ([(64, 16)], (64,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from gradscope.errors import GradscopeInputError, TrialNotRunError, error_summary
from gradscope.trial.policy import declared_output_shape

#: Refuse synthetic examples larger than this many values (a hostile file can declare any shape).
MAX_EXAMPLE_VALUES = 4_000_000
#: Sizes tried, in order, for unknown (None) non-batch input dimensions, e.g. a sequence length.
#: 16 is enough for most recurrent and small convolutional models; 64 and 256 for stacks of
#: strided convolutions or pooling (two kernel-7, stride-3 Conv1D layers need 25).
UNKNOWN_DIM_CANDIDATES: tuple[int, ...] = (16, 64, 256)
#: Size of the first candidate, under the name callers have always imported.
UNKNOWN_DIM = UNKNOWN_DIM_CANDIDATES[0]
#: Values of integer inputs whose vocabulary gradscope cannot see (0 or 1: valid as an index
#: into anything non-empty).
UNKNOWN_INT_RANGE = 2


@dataclass(frozen=True)
class InputSpec:
    """One model input as synthetic data must fill it.

    Attributes:
        name: the input's name.
        shape: the example shape (no batch axis); None where any size is accepted.
        dtype: the input's dtype name, e.g. ``"float32"`` or ``"int32"``.
        vocabulary: token ids must lie in ``[0, vocabulary)``; None if the input is no ids.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    vocabulary: int | None = None


def input_specs(model: keras.Model) -> list[InputSpec]:
    """The model's inputs, in the order ``fit`` takes them.

    A Functional or Sequential model declares its inputs; a subclassed model that has been
    called once has only the shapes of that call (its build config), and its inputs are token
    ids when its first layer holds an embedding.

    Args:
        model: a built model.

    Returns:
        One :class:`InputSpec` per input.

    Raises:
        TrialNotRunError: if the model declares no input shape (never built or called).

    Example:
        >>> input_specs(text_model)  # doctest: +SKIP
        [InputSpec(name='tokens', shape=(None,), dtype='int32', vocabulary=1000)]
    """
    inputs = getattr(model, "inputs", None)
    if inputs:
        consumers = _consumers(model)
        return [
            InputSpec(
                name=str(t.name),
                shape=tuple(None if d is None else int(d) for d in t.shape[1:]),
                dtype=str(t.dtype),
                vocabulary=_vocabulary(consumers.get(id(t), [])),
            )
            for t in inputs
        ]
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) != 1:
        raise TrialNotRunError(
            f"'{model.name}' declares no input shape (a subclassed model never called), so "
            "gradscope cannot make inputs for it; pass --data with x and y, or call the model "
            "once on a batch first.",
            stage="inputs",
        )
    shape = tuple(next(iter(shapes.values())))
    first = model.layers[:1]
    vocabulary = _vocabulary(first)
    dtype = "int32" if vocabulary is not None else "float32"
    return [InputSpec("input", tuple(shape[1:]), dtype, vocabulary)]


def _consumers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    # id(input tensor) -> the layers that take it directly (a node's input tensors).
    out: dict[int, list[keras.layers.Layer]] = {}
    for layer in model.layers:
        for node in getattr(layer, "_inbound_nodes", []):
            for tensor in keras.tree.flatten(node.input_tensors):
                out.setdefault(id(tensor), []).append(layer)
    return out


def _vocabulary(layers: Sequence[keras.layers.Layer]) -> int | None:
    # The smallest table any consumer indexes with the input, so every id is valid for all of
    # them (a custom token-and-position embedding layer holds two Embeddings).
    sizes = []
    for layer in layers:
        for inner in [layer, *layer._flatten_layers(include_self=False)]:
            if isinstance(inner, keras.layers.Embedding):
                sizes.append(int(inner.input_dim))
            elif isinstance(inner, keras.layers.CategoryEncoding):
                sizes.append(int(inner.num_tokens))
    return min(sizes) if sizes else None


def _fill(
    specs: Sequence[InputSpec], size: int, n: int, rng: np.random.Generator
) -> list[np.ndarray]:
    arrays = []
    for spec in specs:
        shape = (n, *(size if d is None else d for d in spec.shape))
        dtype = _numpy_dtype(spec.dtype)
        if spec.vocabulary is not None:
            # In the input's own dtype: a float input feeding an Embedding is cast to ids.
            arrays.append(rng.integers(0, max(spec.vocabulary, 1), size=shape).astype(dtype))
        elif spec.dtype == "bool":
            arrays.append(rng.integers(0, 2, size=shape).astype(bool))
        elif "int" in spec.dtype:
            arrays.append(rng.integers(0, UNKNOWN_INT_RANGE, size=shape).astype(dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


def _numpy_dtype(name: str) -> str:
    # bfloat16 and other backend-only float types have no NumPy twin; Keras casts float32.
    return name if name in ("float16", "float32", "float64") or "int" in name else "float32"


def _example_values(specs: Sequence[InputSpec], size: int) -> int:
    return sum(math.prod(size if d is None else d for d in spec.shape) for spec in specs)


def _output_shape(model: keras.Model, specs: Sequence[InputSpec], size: int) -> Any:
    # The symbolic forward pass: shapes only, nothing computed or allocated.
    args = [
        keras.KerasTensor((2, *(size if d is None else d for d in s.shape)), s.dtype) for s in specs
    ]
    out = model.compute_output_spec(args if len(args) > 1 else args[0])
    return tuple(keras.tree.flatten(out)[0].shape[1:])


def fitting_size(model: keras.Model, specs: Sequence[InputSpec]) -> tuple[int, tuple[int, ...]]:
    """The size for unknown input dimensions, and the output's example shape at that size.

    Args:
        model: the model.
        specs: its inputs (:func:`input_specs`).

    Returns:
        ``(size, output_shape)``; with no unknown dimension, the size is unused.

    Raises:
        GradscopeInputError: if even the smallest synthetic example would exceed
            :data:`MAX_EXAMPLE_VALUES`.
        TrialNotRunError: if the model accepts none of :data:`UNKNOWN_DIM_CANDIDATES`.

    Example:
        >>> fitting_size(text_model, input_specs(text_model))  # doctest: +SKIP
        (64, (3,))
    """
    unknown = any(d is None for s in specs for d in s.shape)
    candidates = UNKNOWN_DIM_CANDIDATES if unknown else UNKNOWN_DIM_CANDIDATES[:1]
    values = _example_values(specs, candidates[0])
    if values > MAX_EXAMPLE_VALUES:
        shapes = ", ".join(str(s.shape) for s in specs)
        raise GradscopeInputError(
            f"The model declares inputs of shape {shapes} ({values:,} values per example); "
            f"refusing to allocate more than {MAX_EXAMPLE_VALUES:,}. Pass --data instead."
        )
    error: Exception | None = None
    for size in candidates:
        if _example_values(specs, size) > MAX_EXAMPLE_VALUES:
            break
        try:
            return size, _output_shape(model, specs, size)
        except Exception as err:  # any failure of the symbolic pass: try a larger size
            error = err
    if not unknown:
        # A model that cannot be traced symbolically may still train: let training decide,
        # with the output shape the model declares.
        declared = declared_output_shape(model) or ()
        return candidates[0], tuple(UNKNOWN_DIM if d is None else int(d) for d in declared)
    tried = ", ".join(str(c) for c in candidates)
    raise TrialNotRunError(
        f"The model accepts no synthetic input with its unknown dimensions set to {tried} "
        f"({error_summary(error) if error else 'too large'}); pass --data with x and y.",
        stage="inputs",
    )


def draw_targets(
    loss: Any, out_shape: tuple[int | None, ...], n: int, rng: np.random.Generator
) -> np.ndarray:
    """Targets drawn to match the loss: labels, one-hot rows, 0/1 or standard-normal values.

    Args:
        loss: the trial's loss (a name, or a serialized loss whose text names it).
        out_shape: the output's example shape (None dimensions become :data:`UNKNOWN_DIM`).
        n: number of examples.
        rng: the random generator.

    Returns:
        The targets, examples first.

    Example:
        >>> draw_targets("sparse_categorical_crossentropy", (3,), 4, rng).shape  # doctest: +SKIP
        (4,)
    """
    shape = tuple(UNKNOWN_DIM if d is None else int(d) for d in out_shape)
    classes = shape[-1] if shape else 1
    name = str(loss).lower()
    if "sparse" in name:
        return rng.integers(0, max(classes, 2), size=(n, *shape[:-1])).astype("int32")
    if "categorical" in name:
        return np.eye(classes, dtype="float32")[rng.integers(0, classes, size=(n, *shape[:-1]))]
    if "binary" in name or "hinge" in name:
        return rng.integers(0, 2, size=(n, *shape)).astype("float32")
    return rng.standard_normal((n, *shape)).astype("float32")


#: At most this many input values per example feed the teacher (a seeded subset beyond it), so
#: its projection stays small for images.
TEACHER_FEATURES = 4096


def teacher_targets(
    loss: Any,
    inputs: Sequence[np.ndarray],
    out_shape: tuple[int | None, ...],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Targets a random linear teacher computes from the inputs, so they can be learned.

    Random targets can only be memorized; a fix trial must see whether a network *learns*.
    The teacher projects each example's input values (standardized, all inputs side by side)
    with a seeded random matrix: the argmax is the class (labels or one-hot rows), each
    column above its median is a 1 (binary), the standardized projection is a regression
    target. The classes are therefore linearly separable, and a network that trains fits them.

    Args:
        loss: the trial's loss (a name, or a serialized loss whose text names it).
        inputs: the synthetic inputs, examples first.
        out_shape: the output's example shape.
        rng: the random generator.

    Returns:
        The targets, or None when the output is not one vector per example (sequences,
        images): then :func:`draw_targets` draws them.

    Example:
        >>> teacher_targets("mse", [np.ones((4, 3))], (1,), rng).shape  # doctest: +SKIP
        (4, 1)
    """
    if len(out_shape) != 1 or out_shape[0] is None:
        return None
    n = len(inputs[0])
    flat = np.concatenate([a.reshape(n, -1).astype("float64") for a in inputs], axis=1)
    if flat.shape[1] > TEACHER_FEATURES:
        flat = flat[:, rng.choice(flat.shape[1], TEACHER_FEATURES, replace=False)]
    flat = (flat - flat.mean(axis=0)) / (flat.std(axis=0) + 1e-8)
    width = int(out_shape[0])
    name = str(loss).lower()
    classes = max(width, 2) if "sparse" in name else width
    z = flat @ rng.standard_normal((flat.shape[1], classes))
    if "sparse" in name:
        return np.argmax(z, axis=1).astype("int32")
    if "categorical" in name:
        return np.eye(classes, dtype="float32")[np.argmax(z, axis=1)]
    if "binary" in name or "hinge" in name:
        return (z > np.median(z, axis=0)).astype("float32")
    return ((z - z.mean(axis=0)) / (z.std(axis=0) + 1e-8)).astype("float32")


def synthetic_arrays(
    model: keras.Model, loss: Any, n: int, seed: int = 0, teacher: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """Inputs the model accepts (one array per input, in order) and targets for the loss.

    Args:
        model: a built model (one output).
        loss: the trial's loss (:func:`gradscope.trial.policy.infer_loss`).
        n: number of examples.
        seed: random seed.
        teacher: targets a random linear teacher computes from the inputs
            (:func:`teacher_targets`), so that learning shows; False draws them independently
            of the inputs.

    Returns:
        ``(inputs, targets)``.

    Raises:
        GradscopeInputError: for inputs too large to allocate.
        TrialNotRunError: for models gradscope cannot make inputs for (no declared input, string
            inputs, no fitting size for unknown dimensions).

    Example:
        >>> x, y = synthetic_arrays(model, "mse", 64)  # doctest: +SKIP
    """
    specs = input_specs(model)
    strings = [s.name for s in specs if s.dtype == "string"]
    if strings:
        raise TrialNotRunError(
            f"The model takes strings (input(s) {strings}): gradscope makes up no text and "
            "--data must be numeric; to probe it, save the model without its text preprocessing "
            "(taking token ids) and audit that.",
            stage="inputs",
        )
    size, out_shape = fitting_size(model, specs)
    rng = np.random.default_rng(seed)
    inputs = _fill(specs, size, n, rng)
    taught = teacher_targets(loss, inputs, tuple(out_shape), rng) if teacher else None
    return inputs, taught if taught is not None else draw_targets(loss, out_shape, n, rng)


__all__ = [
    "MAX_EXAMPLE_VALUES",
    "UNKNOWN_DIM",
    "UNKNOWN_DIM_CANDIDATES",
    "InputSpec",
    "draw_targets",
    "fitting_size",
    "input_specs",
    "synthetic_arrays",
    "teacher_targets",
]
