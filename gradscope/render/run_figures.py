"""The figures of one run's section: heatmap, depth profile, update ratio, activations, loss.

Each builder takes the run's arranged data (:class:`~gradscope.render.rundata.RunData`) and
returns a figure view, or None when the run recorded nothing to draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradscope.data.store import Run
from gradscope.render import act_figures, figures
from gradscope.render.findings_view import figure_view
from gradscope.render.fmt import pct
from gradscope.render.matrix import moment_indices
from gradscope.render.rundata import RunData
from gradscope.render.view import FigureView


def heatmap_figure(data: RunData, scale: tuple[float, float] | None = None) -> FigureView | None:
    """Layers × steps gradient-norm heatmap.

    Args:
        data: the run's arranged data.
        scale: a colour scale shared with compared runs; default the run's own range.

    Returns:
        The figure, or None without recorded gradients.

    Example:
        >>> heatmap_figure(RunData.of(load_run("runs/mlp"))).kind  # doctest: +SKIP
        'heatmap'
    """
    if not data.grad_layers:
        return None
    shared = " The colour scale is shared by the compared runs." if scale is not None else ""
    return figure_view(
        "Gradient norm per layer over steps",
        "Each row is a layer (input on top), each column a recorded step; colour is the "
        "gradient L2 norm on a log scale. Grey: not recorded or zero." + shared,
        figures.grad_heatmap(data.sub("grad_norm", data.grad_layers), scale),
        "heatmap",
    )


def depth_figure(data: RunData) -> FigureView | None:
    """Gradient norm by depth at a few moments of training (the chapter's picture).

    Args:
        data: the run's arranged data.

    Returns:
        The figure, or None when the run recorded nothing to draw.

    Example:
        >>> depth_figure(RunData.of(load_run("runs/mlp"))).title  # doctest: +SKIP
        'Gradient norm by depth'
    """
    if not data.grad_layers:
        return None
    m = data.sub("grad_norm", data.grad_layers)
    profiles = [(f"step {int(m.steps[j])}", m.values[:, j]) for j in moment_indices(len(m.steps))]
    return figure_view(
        "Gradient norm by depth",
        "Gradient L2 norm per layer (input on the left) at a few moments of training. Lines "
        "falling steeply towards the input are the vanishing-gradient picture.",
        figures.depth_profile(data.grad_layers, profiles),
        "depth",
    )


def update_ratio_figure(data: RunData) -> FigureView | None:
    """Update ratio ‖Δw‖/‖w‖ per layer over steps against CS231n's 1e-3 band.

    Args:
        data: the run's arranged data.

    Returns:
        The figure, or None when the run recorded nothing to draw.

    Example:
        >>> update_ratio_figure(RunData.of(load_run("runs/mlp"))).kind  # doctest: +SKIP
        'update-ratio'
    """
    ratio = data.sub("update_ratio", data.grad_layers)
    if not data.grad_layers or not ratio.has_data():
        return None
    return figure_view(
        "Update ratio ‖Δw‖/‖w‖",
        f"Per-step relative weight update per layer. The dashed line is "
        f"{figures.UPDATE_RATIO_TARGET:g} (CS231n's rule of thumb); the band spans one "
        "order of magnitude either side. Far below: the layer barely learns.",
        figures.layer_lines(
            ratio,
            "update ratio",
            band=figures.UPDATE_RATIO_BAND,
            target=figures.UPDATE_RATIO_TARGET,
        ),
        "update-ratio",
    )


def fraction_notes(
    layers: Sequence[str], dead: np.ndarray, sat: np.ndarray, output: str | None
) -> tuple[str, ...]:
    """What the dead/saturated chart alone would not say, derived from its numbers.

    A statistic that does not apply (no ReLU-family layer: nothing can "die"), one that is 0 %
    everywhere, and the output layer's saturation (its confidence, never judged) are said in
    words. The HTML report and the TensorBoard dashboard show the same sentences.

    Args:
        layers: layers with activation statistics, forward order.
        dead: window-median dead fraction per layer, NaN where it does not apply.
        sat: window-median saturated fraction per layer, NaN where it does not apply.
        output: the model's output layer, or None.

    Returns:
        The notes, in display order.

    Example:
        >>> fraction_notes(["h", "out"], np.array([np.nan] * 2), np.array([0.0, 0.9]), "out")
        ... # doctest: +NORMALIZE_WHITESPACE
        ('No ReLU-family layers: the dead fraction does not apply.',
         'Saturation: 0 % in all 1 sigmoid/tanh hidden layers.',
         "Output layer 'out': 90 % of its outputs saturated, i.e. confident predictions; the
         output layer is never judged (grey bar).")
    """
    dead, sat = np.asarray(dead, dtype=float), np.asarray(sat, dtype=float)
    hidden = np.array([name != output for name in layers], dtype=bool)
    notes: list[str] = []
    dead_known = dead[np.isfinite(dead)]
    if not dead_known.size:
        notes.append("No ReLU-family layers: the dead fraction does not apply.")
    elif not dead_known.any():
        notes.append(f"Dead units: 0 % in all {dead_known.size} ReLU-family layers.")
    sat_known = sat[hidden & np.isfinite(sat)]
    if not sat_known.size:
        notes.append("No sigmoid/tanh hidden layers: saturation does not apply.")
    elif not sat_known.any():
        notes.append(f"Saturation: 0 % in all {sat_known.size} sigmoid/tanh hidden layers.")
    out_sat = sat[~hidden]
    if out_sat.size and np.isfinite(out_sat[0]) and out_sat[0] > 0:
        notes.append(
            f"Output layer '{output}': {pct(float(out_sat[0]))} of its outputs saturated, i.e. "
            "confident predictions; the output layer is never judged (grey bar)."
        )
    return tuple(notes)


def fractions_figure(data: RunData) -> tuple[FigureView | None, tuple[str, ...]]:
    """Dead and saturated fractions per layer, and the notes of :func:`fraction_notes`.

    A statistic that does not apply is left out of the chart; when no judged bar would be
    visible (every value 0 %), the chart is replaced by the notes, so the reader never faces an
    empty frame. The output layer's saturation bar is grey.

    Args:
        data: the run's arranged data.

    Returns:
        ``(figure or None, notes)``.

    Example:
        >>> figure, notes = fractions_figure(RunData.of(load_run("runs/sigmoid")))  # doctest: +SKIP
        >>> figure is None, notes[0]  # doctest: +SKIP
        (True, 'No ReLU-family layers: the dead fraction does not apply.')
    """
    layers = data.act_layers
    if not layers:
        return None, ()
    dead = data.median_array("dead_frac", layers)
    sat = data.median_array("sat_frac", layers)
    output = data.output_layer
    notes = fraction_notes(layers, dead, sat, output)
    judged_sat = np.where([name != output for name in layers], sat, np.nan)
    if not (np.nan_to_num(dead) > 0).any() and not (np.nan_to_num(judged_sat) > 0).any():
        return None, notes
    series = [(k, v) for k, v in (("dead", dead), ("saturated", sat)) if np.isfinite(v).any()]
    figure = figure_view(
        "Dead and saturated units per layer",
        "Median over the summary window. Dead: ReLU-family unit off for the whole batch. "
        "Saturated: sigmoid/tanh unit in its flat tail; grey: the output layer's confidence.",
        act_figures.fraction_bars(layers, series, "fraction of units", confidence_layer=output),
        "fractions",
    )
    return figure, notes


def act_stats_figure(data: RunData) -> FigureView | None:
    """Activation mean ± standard deviation per layer (window medians).

    Args:
        data: the run's arranged data.

    Returns:
        The figure, or None when the run recorded nothing to draw.

    Example:
        >>> act_stats_figure(RunData.of(load_run("runs/mlp"))).kind  # doctest: +SKIP
        'act-stats'
    """
    if not data.act_layers:
        return None
    mean = data.median_array("act_mean", data.act_layers)
    std = data.median_array("act_std", data.act_layers)
    if not np.isfinite(mean).any():
        return None
    return figure_view(
        "Activation statistics per layer",
        "Median over the summary window of the recorded activation mean and standard deviation.",
        act_figures.activation_stats(data.act_layers, mean, std),
        "act-stats",
    )


def act_hist_figure(data: RunData) -> FigureView | None:
    """The last recorded activation histogram of each layer, as a ridgeline.

    Args:
        data: the run's arranged data.

    Returns:
        The figure, or None when the run recorded nothing to draw.

    Example:
        >>> act_hist_figure(RunData.of(load_run("runs/mlp"))).facts  # doctest: +SKIP
        (('xlim', '0,7.5'),)
    """
    hist = data.run.histograms
    names = [x for x in data.run.layer_names if f"act/{x}" in hist and f"edges/act/{x}" in hist]
    if not names:
        return None
    edges = [hist[f"edges/act/{x}"] for x in names]
    counts = [hist[f"act/{x}"][-1] for x in names]
    return figure_view(
        "Activation distributions",
        "Recorded activation histograms per layer at the last histogram snapshot, over the "
        "bins that hold values. The end bins also count values beyond the recorded range.",
        act_figures.histogram_ridges(names, edges, counts, "activation value"),
        "act-hist",
    )


def loss_figure(run: Run) -> FigureView | None:
    """Batch loss (and validation loss at epoch ends) with the learning rate.

    Args:
        run: the run.

    Returns:
        The figure, or None without a recorded loss.

    Example:
        >>> loss_figure(load_run("runs/mlp")).kind  # doctest: +SKIP
        'loss'
    """
    steps, loss = run.series("loss")
    if not len(steps):
        return None
    series = [("batch loss", steps, loss)]
    val = [(e.step, e.logs["val_loss"]) for e in run.epochs if "val_loss" in e.logs]
    if val:
        series.append(
            ("val_loss (epoch end)", np.array([v[0] for v in val]), np.array([v[1] for v in val]))
        )
    lr_steps, lr = run.series("lr")
    return figure_view(
        "Loss and learning rate",
        "Recorded batch loss (and validation loss at epoch ends) with the learning rate "
        "(dashed, right axis from 0).",
        figures.loss_and_lr(series, (lr_steps, lr) if len(lr_steps) else None),
        "loss",
    )
