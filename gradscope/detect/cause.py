"""Causes a run proves: the layer where the gradient stops.

A symptom ("no gradient reaches the first layer") sends users to the usual remedies (He init,
ReLU, BatchNormalization), which cannot help when one layer cuts the gradient. When the layer
with weights just before a per-example normalization layer has an exactly zero gradient for the
whole window, the run has measured where the gradient stops; a normalization over a single
element does exactly that (its output does not depend on its input,
:mod:`gradscope.detect.static.normalization`). The vanishing detector then names those layers as
the cause, under the evidence key :data:`CAUSE_KEY`, and recommends the one fix that works.

Exact zeros are the test, not a threshold: floating point gives exactly 0 only when no path
carries a gradient (x minus its own mean), never for a merely small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradscope.data.schema import LayerInfo, StepRecord
from gradscope.data.store import Run
from gradscope.detect.window import finite_values, median_stat, single_element_normalization
from gradscope.model.taxonomy import CENTERING_NORMALIZATION, PER_EXAMPLE_NORMALIZATION

#: The evidence key of a finding's named cause.
CAUSE_KEY = "cause"
#: The finding kind that describes this cause (the static rule's), and the fix it calls for.
CAUSE_KIND = "degenerate_normalization"
CAUSE_FIXES: tuple[str, ...] = ("widen_normalization",)


@dataclass(frozen=True)
class GradientStop:
    """Normalization layers where the gradient stops, and the layers it no longer reaches.

    Attributes:
        layers: the normalization layers, in forward order.
        class_names: their Keras classes.
        zero_layers: every layer with weights whose gradient was exactly zero, in forward order.
        single_element: True when the parameters of every one of ``layers`` prove it normalizes
            over a single element (:func:`gradscope.detect.window.single_element_normalization`);
            False when only the zeros show it.

    Example:
        >>> gradient_stop(run, window.last, 0.7).layers  # doctest: +SKIP
        ('layer_normalization',)
    """

    layers: tuple[str, ...]
    class_names: tuple[str, ...]
    zero_layers: tuple[str, ...]
    single_element: bool

    def to_evidence(self) -> dict[str, Any]:
        """Returns the cause as evidence (JSON-safe).

        Returns:
            ``{"layer", "layers", "class_name", "kind", "single_element",
            "zero_gradient_layers"}``; ``layer`` is the first of ``layers``.
        """
        return {
            "layer": self.layers[0],
            "layers": list(self.layers),
            "class_name": dict(zip(self.layers, self.class_names, strict=True)),
            "kind": CAUSE_KIND,
            "single_element": self.single_element,
            "zero_gradient_layers": list(self.zero_layers),
        }

    @property
    def text(self) -> str:
        """Plain-language sentences naming the layers, what they do and the fix."""
        one = len(self.layers) == 1
        stops = _names(self.layers)
        classes = ", ".join(sorted(set(self.class_names)))
        where = f"'{self.layers[0]}' ({classes})" if one else f"the {classes} layers {stops}"
        starved = _names(self.zero_layers)
        outputs = (
            "its offset beta (x minus its own mean is 0)"
            if set(self.class_names) <= CENTERING_NORMALIZATION
            else "a constant or only the sign of its input"
        )
        subject, verb = ("it", "normalizes") if one else ("each", "normalizes")
        if self.single_element:
            why = (
                f"{subject.capitalize()} {verb} over a single element (one value per scale and "
                f"offset), so it outputs {outputs} whatever its input"
            )
        else:
            why = (
                f"{subject.capitalize()} passes no gradient to its input, as a normalization "
                f"over a single element does: it then outputs {outputs} whatever its input"
            )
        return (
            f"no gradient passes {where}: {len(self.zero_layers)} layer(s) with weights before "
            f"{'it' if one else 'them'} ({starved}) have an exactly zero gradient. {why}. He "
            "init, ReLU or BatchNormalization cannot help; normalize over an axis with more "
            "than one element (e.g. project the input to d_model features first)"
        )


def _names(names: Sequence[str], shown: int = 4) -> str:
    text = ", ".join(f"'{n}'" for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _measured(info: LayerInfo) -> bool:
    # Layers whose gradient the run records (a frozen or unwatched layer has none to judge).
    return info.trainable and info.watched and info.params > 0


def _zero(records: Sequence[StepRecord], name: str) -> bool | None:
    # True if every recorded gradient norm is exactly 0, None without any record of it.
    values = finite_values(records, name, "grad_norm")
    return None if values.size == 0 else not bool(np.any(values))


def gradient_stop(run: Run, records: Sequence[StepRecord], dead_at: float) -> GradientStop | None:
    """Finds the per-example normalization layers where the gradient stops, if the run shows any.

    A stop is a per-example normalization layer
    (:data:`~gradscope.model.taxonomy.PER_EXAMPLE_NORMALIZATION`) whose nearest measured layer
    before it, in forward order, has an exactly zero gradient over all of ``records``. Zeros
    that dead ReLU units explain (that layer's median dead fraction reaches ``dead_at``) do not
    count, unless the stop's parameters prove a single element. Forward order, not the graph,
    decides "before": in a residual block the layer before a normalization is the one that
    feeds it.

    Args:
        run: a loaded run.
        records: the window judged.
        dead_at: dead fraction at which a layer's zero gradient is put down to dead units.

    Returns:
        The :class:`GradientStop`, or None when the run shows none.

    Example:
        >>> gradient_stop(run, window.last, 0.7)  # doctest: +SKIP
        GradientStop(layers=('layer_normalization',), ...)
    """
    layers = list(run.layers)
    zero = {x.name: _zero(records, x.name) for x in layers if _measured(x)}
    stops: list[LayerInfo] = []
    proven: list[bool] = []
    previous: str | None = None
    for info in layers:
        if info.class_name in PER_EXAMPLE_NORMALIZATION and previous is not None and zero[previous]:
            single = single_element_normalization(info)
            dead = median_stat(records, previous, "dead_frac") or 0.0
            if single or dead < dead_at:
                stops.append(info)
                proven.append(single)
        if info.name in zero:
            previous = info.name
    if not stops:
        return None
    return GradientStop(
        layers=tuple(x.name for x in stops),
        class_names=tuple(x.class_name for x in stops),
        zero_layers=tuple(n for n, z in zero.items() if z),
        single_element=all(proven),
    )
