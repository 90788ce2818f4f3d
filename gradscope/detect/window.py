"""Windows of records and robust per-layer summaries shared by the run detectors.

Detectors judge medians over a window of records (the last part of the run), never one batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gradscope.config import WindowThresholds
from gradscope.data.schema import LayerInfo, StepRecord, has_nonfinite
from gradscope.data.store import Run
from gradscope.model.taxonomy import EMBEDDING_LAYERS, PER_EXAMPLE_NORMALIZATION

#: Variable names that mark a "weight layer" (a layer with a kernel or a lookup table).
_KERNEL_VARIABLES = frozenset({"kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"})
#: The variable of a lookup table (Embedding and look-alikes in other libraries).
_LOOKUP_VARIABLE = "embeddings"


def usable_records(records: Sequence[StepRecord]) -> list[StepRecord]:
    """Returns the records before NaN/Inf first appeared.

    Once the weights hold NaN every later statistic is garbage (NaN outputs count as "dead",
    NaN gradients as anything); the nonfinite detector reports that, the others judge the
    training that happened before it. A step is non-finite by
    :func:`gradscope.data.schema.has_nonfinite`, the test the callback also reacts to.

    Args:
        records: step records in order.

    Returns:
        The leading records whose loss, gradients and weights are all finite.

    Example:
        >>> records = [StepRecord(0, 0, 1.0, 0.1, {}), StepRecord(1, 0, math.nan, 0.1, {})]
        >>> len(usable_records(records))
        1
    """
    out: list[StepRecord] = []
    for record in records:
        if has_nonfinite(record):
            break
        out.append(record)
    return out


def enough_records(
    records: Sequence[StepRecord],
    usable: Sequence[StepRecord],
    thresholds: WindowThresholds,
    cut_short: bool = False,
) -> bool:
    """Whether a run's usable records are enough to judge.

    ``thresholds.min_records`` of them. When ``cut_short`` is allowed and a non-finite step ended
    the usable records early, ``thresholds.cut_short_records`` are also enough. A run that went
    NaN is not a model that trains fine, so judging its last few finite records cannot raise a
    false alarm on a healthy model. They also show how it got there: the chapter's huge-init
    ReLU net with SGD had gradient norms of ~1e4, then ~1e11, then NaN.

    Args:
        records: all of the run's step records.
        usable: the records before the first non-finite one (:func:`usable_records`).
        thresholds: window thresholds (``min_records``).
        cut_short: whether a run cut short by NaN/Inf may be judged on fewer records.

    Returns:
        Whether to judge.

    Example:
        >>> ok = [StepRecord(i, 0, 1.0, 0.1, {}) for i in range(2)]
        >>> bad = StepRecord(2, 0, math.nan, 0.1, {})
        >>> enough_records(ok, ok, WindowThresholds(), cut_short=True)
        False
        >>> enough_records([*ok, bad], ok, WindowThresholds(), cut_short=True)
        True
    """
    if len(usable) >= thresholds.min_records:
        return True
    return cut_short and len(records) > len(usable) >= thresholds.cut_short_records


def last_window(records: Sequence[StepRecord], thresholds: WindowThresholds) -> list[StepRecord]:
    """Returns the last ``thresholds.fraction`` of the records (at least ``min_records`` of them).

    Args:
        records: step records in order.
        thresholds: window fraction and minimum size.

    Returns:
        The records of the window; all records when there are fewer than ``min_records``.

    Example:
        >>> records = [StepRecord(i, 0, 1.0, 0.1, {}) for i in range(10)]
        >>> len(last_window(records, WindowThresholds()))
        5
    """
    n = len(records)
    size = max(thresholds.min_records, math.ceil(n * thresholds.fraction))
    return list(records[max(0, n - size) :])


def first_window(records: Sequence[StepRecord], thresholds: WindowThresholds) -> list[StepRecord]:
    """Returns the first ``thresholds.early_fraction`` of the records (at least ``min_records``).

    Args:
        records: step records in order.
        thresholds: early fraction and minimum size.

    Returns:
        The records at the start of training.

    Example:
        >>> records = [StepRecord(i, 0, 1.0, 0.1, {}) for i in range(30)]
        >>> len(first_window(records, WindowThresholds()))
        6
    """
    size = max(thresholds.min_records, math.ceil(len(records) * thresholds.early_fraction))
    return list(records[:size])


def finite_values(records: Sequence[StepRecord], layer: str, stat: str) -> np.ndarray:
    """Returns the finite values of one layer statistic over some records.

    Args:
        records: step records.
        layer: layer name.
        stat: statistic name, e.g. ``"grad_norm"``.

    Returns:
        float64 array (records lacking the statistic, NaN and ±Inf are left out).

    Example:
        >>> finite_values([StepRecord(0, 0, 1.0, 0.1, {"d": {"grad_norm": 2.0}})], "d", "grad_norm")
        array([2.])
    """
    values = [r.layers.get(layer, {}).get(stat) for r in records]
    arr = np.array([v for v in values if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def median_stat(records: Sequence[StepRecord], layer: str, stat: str) -> float | None:
    """Median of a layer statistic over records, ignoring missing and non-finite values.

    Args:
        records: step records.
        layer: layer name.
        stat: statistic name.

    Returns:
        The median, or None when no record has a finite value.

    Example:
        >>> recs = [StepRecord(i, 0, 1.0, 0.1, {"d": {"dead_frac": v}})
        ...         for i, v in enumerate([0, 1, 1])]
        >>> median_stat(recs, "d", "dead_frac")
        1.0
    """
    values = finite_values(records, layer, stat)
    return float(np.median(values)) if values.size else None


def median_loss(records: Sequence[StepRecord]) -> float | None:
    """Median of the finite losses of some records.

    Args:
        records: step records.

    Returns:
        The median loss, or None if no record has a finite loss.

    Example:
        >>> median_loss([StepRecord(0, 0, 1.0, 0.1, {}), StepRecord(1, 0, 3.0, 0.1, {})])
        2.0
    """
    losses = np.array([r.loss for r in records if r.loss is not None], dtype=np.float64)
    losses = losses[np.isfinite(losses)]
    return float(np.median(losses)) if losses.size else None


def weight_layers(run: Run) -> list[LayerInfo]:
    """Layers whose gradient flow is compared: trainable, watched layers with a kernel.

    Frozen layers (``trainable=False``) are left out, so they are never "vanishing"; so are
    normalization layers (gamma/beta gradients are a different quantity from a kernel's).

    Args:
        run: a loaded run.

    Returns:
        The layers in forward order.

    Example:
        >>> [x.name for x in weight_layers(run)]  # doctest: +SKIP
        ['dense', 'dense_1']
    """
    out = []
    for info in run.layers:
        if not (info.trainable and info.watched and info.params > 0):
            continue
        has_kernel = bool(_KERNEL_VARIABLES.intersection(info.variables)) or (
            not info.variables and info.kernel_initializer is not None
        )
        if has_kernel:
            out.append(info)
    return out


def sparse_gradient(info: LayerInfo) -> bool:
    """True for a lookup-table layer (Embedding), whose gradient reaches only some rows.

    A step's gradient on an embedding table is zero but for the rows of the batch's tokens, so
    its RMS over the whole table (and its update ratio) measures how much of the vocabulary a
    batch touches, not how well the gradient flows: a keras-io BiLSTM whose embedding learns
    well (98 % of its rows changed) shows an update ratio of 3e-4 and a per-weight gradient RMS
    three orders of magnitude under the output layer's. Runs record the table's norm only, not
    the rows touched, so such layers cannot be judged by those rows; they are left out of the
    gradient-flow comparisons instead (:func:`gradient_flow_layers`).

    Args:
        info: a recorded layer.

    Returns:
        True for an ``Embedding`` class or a layer holding an ``embeddings`` variable.

    Example:
        >>> sparse_gradient(LayerInfo("emb", "Embedding", variables=("embeddings",)))
        True
    """
    return info.class_name in EMBEDDING_LAYERS or _LOOKUP_VARIABLE in info.variables


def gradient_flow_layers(run: Run) -> list[LayerInfo]:
    """The weight layers whose gradients are compared along the network, in forward order.

    :func:`weight_layers` without the lookup tables (:func:`sparse_gradient`): the first/last
    gradient ratio (:func:`gradscope.detect.summary.gradient_ratio`) and the vanishing detector
    judge these, so an Embedding is never the "first layer" of the ratio, never called vanishing
    and never handed initialization or activation fixes. Its norm still counts where a large
    value is what matters (the exploding detector's bound and growth).

    Args:
        run: a loaded run.

    Returns:
        The layers in forward order.

    Example:
        >>> [x.name for x in gradient_flow_layers(run)]  # doctest: +SKIP
        ['bidirectional', 'dense']
    """
    return [x for x in weight_layers(run) if not sparse_gradient(x)]


def single_element_normalization(info: LayerInfo) -> bool:
    """True for a recorded normalization layer that provably normalizes over a single element.

    LayerNormalization and RMSNormalization hold one scale (and offset) per element of their
    normalized axes, so a layer whose every variable has one value normalizes over one element
    (:mod:`gradscope.detect.static.normalization` says what that does). Layers without variables,
    and GroupNormalization (one value per channel, whatever the group size), cannot be told from
    a run; the static rule reads their input shapes instead.

    Args:
        info: a recorded layer.

    Returns:
        True when the layer's parameters prove it.

    Example:
        >>> single_element_normalization(
        ...     LayerInfo("ln", "LayerNormalization", params=2, variables=("gamma", "beta"))
        ... )
        True
    """
    per_element = PER_EXAMPLE_NORMALIZATION.get(info.class_name) == "axis"
    return per_element and bool(info.variables) and info.params == len(info.variables)


def gradient_rms(records: Sequence[StepRecord], info: LayerInfo) -> float | None:
    """Median gradient RMS of a layer: grad_norm / sqrt(params), median over records.

    Normalizing by sqrt(parameter count) makes layers of different sizes comparable: a layer
    with 10x more weights has a ~sqrt(10)x larger norm for the same per-weight gradient.

    Args:
        records: step records of the window.
        info: the layer.

    Returns:
        The median RMS, or None without finite values.

    Example:
        >>> gradient_rms(records, run.layer("dense"))  # doctest: +SKIP
    """
    norm = median_stat(records, info.name, "grad_norm")
    if norm is None or info.params <= 0:
        return None
    return norm / math.sqrt(info.params)


def sample_series(
    records: Sequence[StepRecord], layer: str, stat: str, points: int = 20
) -> list[list[float]]:
    """A short ``[[step, value], ...]`` series of a statistic for evidence, evenly subsampled.

    Args:
        records: step records.
        layer: layer name.
        stat: statistic name.
        points: at most this many points.

    Returns:
        Pairs of step and value (non-finite values kept; JSON turns them into null).

    Example:
        >>> sample_series([StepRecord(3, 0, 1.0, 0.1, {"d": {"dead_frac": 0.5}})], "d", "dead_frac")
        [[3, 0.5]]
    """
    pairs = [
        [r.step, r.layers[layer][stat]]
        for r in records
        if layer in r.layers and stat in r.layers[layer]
    ]
    if len(pairs) <= points:
        return pairs
    idx = np.unique(np.linspace(0, len(pairs) - 1, points).round().astype(int))
    return [pairs[i] for i in idx]
