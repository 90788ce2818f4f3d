"""Frozen option and threshold dataclasses.

Every threshold gradscope uses is a named field here, so that it can be documented (README lists
each one with its source) and overridden in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Repair thresholds (gradscope.fix) have their own module; re-exported so that
# ``from gradscope.config import REPAIR_THRESHOLDS, RepairThresholds`` keeps working.
from gradscope.config_repair import REPAIR_THRESHOLDS as REPAIR_THRESHOLDS
from gradscope.config_repair import RepairThresholds as RepairThresholds


@dataclass(frozen=True)
class ActivationThresholds:
    """When an activation output counts as dead or saturated.

    Attributes:
        saturation_preactivation: |z| beyond which sigmoid/tanh are treated as saturated. 5.0 is
            DeepDiagnosis's rule (ICSE 2022, "|z| >= 5"); sigmoid'(5) ≈ 0.0066, i.e. the unit passes
            less than 3% of its peak gradient (0.25).
        dead_output: a ReLU-family output at or below this value is "off". A unit is dead when it
            is off for every example of the batch (the definition used by DeepDiagnosis and the
            issue: "output <= 0 for every example").
    """

    saturation_preactivation: float = 5.0
    dead_output: float = 0.0

    @property
    def sigmoid_low(self) -> float:
        """Sigmoid output below which a unit is saturated low (sigmoid(-z_sat))."""
        return 1.0 / (1.0 + math.exp(self.saturation_preactivation))

    @property
    def sigmoid_high(self) -> float:
        """Sigmoid output above which a unit is saturated high (sigmoid(z_sat))."""
        return 1.0 - self.sigmoid_low

    @property
    def tanh_abs(self) -> float:
        """|tanh| output above which a unit is saturated (tanh(z_sat))."""
        return math.tanh(self.saturation_preactivation)


@dataclass(frozen=True)
class HistogramBins:
    """Fixed histogram bins, identical for every layer and step so histograms compare over time.

    Attributes:
        grad_log10_range: gradients are binned by log10|g| in this range; 1e-14..1e4 covers float32
            gradients from "vanished" to "exploded".
        grad_bins: number of gradient bins.
        act_bins: number of activation bins.
        act_unbounded_range: bin range for unbounded activations (ReLU-family, linear); values
            outside land in the edge bins.
    """

    grad_log10_range: tuple[float, float] = (-14.0, 4.0)
    grad_bins: int = 72
    act_bins: int = 64
    act_unbounded_range: tuple[float, float] = (-6.0, 6.0)


ACTIVATION_THRESHOLDS = ActivationThresholds()
HISTOGRAM_BINS = HistogramBins()


# ----------------------------------------------------------------------------------------------
# Detector thresholds (gradscope.detect, gradscope.detect.static). One frozen dataclass per
# detector; DETECT_THRESHOLDS bundles them. Sources are cited per field; "gradscope choice" marks
# values without a published source, with the reasoning.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowThresholds:
    """Which records a run detector judges: never one batch, always a window.

    Attributes:
        fraction: detectors judge the median over the last ``fraction`` of the records.
            DeepDiagnosis judges the first batch of each epoch and its own result files show many
            alarms on normal models (PRIOR_ART.md); a median over half the run is robust to single
            noisy batches while still describing the end of training (gradscope choice).
        min_records: below this many records in the window a run detector stays silent, except
            the nonfinite detector, for which one record is proof (gradscope choice: a median of
            fewer than 3 values is one batch again).
        early_fraction: the "start of training" window (first 20% of records) that loss and
            gradient growth are compared against (gradscope choice).
        cut_short_records: finite records before the first NaN/Inf that are enough for the
            exploding detector when NaN/Inf cut the run short of ``min_records``: two, the least
            that shows a change from one step to the next (gradscope choice; a run that went
            NaN is not a model that trains fine).
    """

    fraction: float = 0.5
    min_records: int = 3
    early_fraction: float = 0.2
    cut_short_records: int = 2


@dataclass(frozen=True)
class ProgressThresholds:
    """When a run counts as learning; gradient findings of a learning run are only "info".

    AutoTrainer (ICSE 2021) reports gradient problems only when training also fails to converge
    (max accuracy < 0.6 or best epoch-to-epoch gain < 0.01); gradscope gates the same way so a
    model that trains fine gets no warnings.

    Attributes:
        good_accuracy: best training accuracy at or above which the run is learning (AutoTrainer).
        min_accuracy_gain: with two or more epochs, accuracy must also have improved by this much
            from the first epoch (AutoTrainer's 0.01 gain).
        min_loss_drop: without an accuracy metric, the run is learning when the median loss of
            the last window is at least this fraction below that of the first window (0.5: the
            loss halved; gradscope choice, a margin far above batch-to-batch noise).
        trend_min_records: losses needed to judge the per-batch loss trend: the default probe's
            8 (Gilbert 1987: Mann-Kendall's normal approximation from n = 8-10).
        trend_z: the loss falls when Mann-Kendall's z <= -1.645, one-sided 5 % (Mann 1945).
        short_run_drop: a run of < 2 epochs also learns when its loss falls and its Theil-Sen
            line drops this much (gradscope: 20-step probes drop 0.30-0.44 healthy, 0.19 sick).
    """

    good_accuracy: float = 0.6
    min_accuracy_gain: float = 0.01
    min_loss_drop: float = 0.5
    trend_min_records: int = 8
    trend_z: float = 1.645
    short_run_drop: float = 0.25


@dataclass(frozen=True)
class VanishingThresholds:
    """Vanishing gradients: gradient RMS shrinking by orders of magnitude toward the input.

    Gradient size per layer is RMS = grad_norm / sqrt(params), so a big first layer is not
    mistaken for a healthy one (the issue asks for normalisation by parameter count).

    Attributes:
        warning_ratio: first/last RMS ratio below which gradients have vanished. AutoTrainer's
            ``gra_rate < 1e-3`` (first/last kernel gradient norm).
        error_ratio: two further orders of magnitude (1e-5): early layers effectively receive no
            signal (gradscope choice, DeepDiagnosis's absolute floor |∇W| < 1e-7 is of this order
            for unit-scale last-layer gradients).
        stalled_update_ratio: layers below the output whose median ‖ΔW‖/‖W‖ (median over the
            window, then over those layers) is below this do not train; the lower bound of
            DeepDiagnosis's healthy range [1e-5, 1e-1] (CS231n: ≈1e-3 healthy).
        stalled_relative_update: ... or whose update ratio is below this fraction of the output
            layer's: with the output layer at CS231n's healthy 1e-3, 1e-2 puts them at
            DeepDiagnosis's 1e-5 floor, two orders of magnitude slower. Being relative, the rule
            does not depend on the learning rate's absolute value.
        training_update_ratio: the last layer counts as training when its ratio is at least this,
            one decade below CS231n's healthy 1e-3 (gradscope choice).
        starved_ratio: a saturated/dead layer whose gradient RMS is below this fraction of the
            next weight layer's blocks it (a decade; gradscope choice, detect/cost.py).
    """

    warning_ratio: float = 1e-3
    error_ratio: float = 1e-5
    stalled_update_ratio: float = 1e-5
    stalled_relative_update: float = 1e-2
    training_update_ratio: float = 1e-4
    starved_ratio: float = 0.1


@dataclass(frozen=True)
class ExplodingThresholds:
    """Exploding gradients: growth toward the input, growth over steps, a bound, loss divergence.

    Attributes:
        toward_input_ratio: first/last gradient RMS ratio above which gradients grow toward the
            input; AutoTrainer's ``gra_rate > 70``.
        growth_over_steps: median total gradient norm of the last window over that of the first
            window; 100 = two orders of magnitude (gradscope choice: healthy training keeps the
            gradient norm within an order of magnitude or lets it shrink as the loss falls).
        max_grad_norm: absolute bound on a layer's gradient L2 norm; 1e3 mirrors AutoTrainer's
            loss bound (loss ≥ 1e3 = exploded).
        loss_rise_factor: the loss diverges when the median loss of the last window is this many
            times that of the first window (gradscope choice: training that doubles its loss is
            moving away from any minimum).
        loss_bound: a finite loss at or above this is treated as divergent (AutoTrainer: 1e3).
        clipping_growth: ``missing_clipping`` stays a warning when the total norm grew this
            much over the probe: a decade, as for ``growth_over_steps`` (detect/evidence.py).
    """

    toward_input_ratio: float = 70.0
    growth_over_steps: float = 100.0
    max_grad_norm: float = 1e3
    loss_rise_factor: float = 2.0
    loss_bound: float = 1e3
    clipping_growth: float = 10.0


@dataclass(frozen=True)
class DyingReluThresholds:
    """Dying ReLU: fraction of units that output ≤ 0 for a whole batch, median over the window.

    Attributes:
        warning_fraction: SageMaker Debugger's DeadRelu flags a layer when more than 50% of its
            units are dead.
        error_fraction: AutoTrainer and DeepDiagnosis both use 70%.
    """

    warning_fraction: float = 0.5
    error_fraction: float = 0.7


@dataclass(frozen=True)
class SaturationThresholds:
    """Saturation: fraction of sigmoid/tanh outputs in the flat tails (|z| ≥ 5 equivalent).

    The output layer is never judged: a confident softmax/sigmoid output is the goal.

    Attributes:
        warning_fraction: DeepDiagnosis flags more than 50% of pre-activations with |z| ≥ 5, and
            SageMaker Debugger's SaturatedActivation flags a layer above 50%.
        error_fraction: 90% of outputs pass less than 3% of the peak gradient (gradscope choice:
            the layer is close to fully blocked).
    """

    warning_fraction: float = 0.5
    error_fraction: float = 0.9


@dataclass(frozen=True)
class NonfiniteThresholds:
    """NaN/Inf in loss, gradients or weights (always an error; one record is proof).

    Attributes:
        max_steps_listed: how many affected steps are listed in the evidence.
    """

    max_steps_listed: int = 10


@dataclass(frozen=True)
class UnstableLossThresholds:
    """Unstable loss (AutoTrainer's oscillating loss): a rate too high, CS231n's ‖ΔW‖/‖W‖ ≫ 1e-3.

    Attributes:
        high_update_ratio: median over the weight layers of their update ratio at or above this
            (10x CS231n's ≈ 1e-3; noisy small-batch SGD that learns measured up to 1e-2).
        error_update_ratio: error from here: DeepDiagnosis's healthy range [1e-5, 1e-1], top.
        max_loss_drop: the loss "does not decrease" when the last window's median is less than
            this fraction below the first window's (gradscope choice, above minibatch noise).
        oscillation_rise: ... or the loss oscillates: an epoch's loss this fraction above the
            previous epoch's is a rise (AutoTrainer's gap of 0.03, here relative to the loss).
        oscillation_share: rises in at least this share of the epochs (AutoTrainer: 0.2).
        min_weight_growth: the steps add up: the weight norm of the last window over the first's
            (median over layers). Noise steps cancel: 0.99-1.003 with batches of 4 on 30-60 %
            random labels; rates 100x too high measured 1.3-19 (gradscope choice).
    """

    high_update_ratio: float = 1e-2
    error_update_ratio: float = 1e-1
    max_loss_drop: float = 0.1
    oscillation_rise: float = 0.03
    oscillation_share: float = 0.2
    min_weight_growth: float = 1.1


@dataclass(frozen=True)
class SlowConvergenceThresholds:
    """Slow convergence (AutoTrainer): a rate far too low, CS231n's ‖ΔW‖/‖W‖ ≪ 1e-3.

    Attributes:
        low_update_ratio: median over the weight layers of their update ratio below this: half
            a decade under CS231n's 1e-3 (gradscope choice: healthy zoo and scenario models
            measured 1.3e-3 to 1.4e-2, plain SGD(0.01) on digits 4e-4, Adam 100x too low 1.5e-4).
        max_layer_update_ratio: ... and no layer at or above this: CS231n's healthy 1e-3.
        error_update_ratio: error below this: DeepDiagnosis's healthy range [1e-5, 1e-1], bottom.
        max_loss_drop: the loss is "flat" below this relative drop (as ``unstable_loss``).
        min_relative_gradient: median over layers of ‖∇W‖/‖W‖ at least this: small steps despite
            a large gradient are the rate's fault, with a small one a minimum (gradscope choice:
            converged MLPs measured 1e-4 to 9e-3, the same far from a minimum 5e-2 and more).
    """

    low_update_ratio: float = 3e-4
    max_layer_update_ratio: float = 1e-3
    error_update_ratio: float = 1e-5
    max_loss_drop: float = 0.1
    min_relative_gradient: float = 1e-2


@dataclass(frozen=True)
class StaticThresholds:
    """Static rules on a model description (no data).

    Attributes:
        mismatch_warning_depth: a ReLU-family stack initialized with variance-1 schemes (Glorot,
            LeCun) loses half the signal variance per layer (He et al. 2015, eq. 10); from 5 such
            layers (variance x 1/32) the mismatch is a warning, below it is info (Keras's default
            glorot_uniform + relu in a shallow net trains fine; gradscope choice).
        init_variance_factor: a fixed-scale RandomNormal/RandomUniform whose weight variance x
            fan_in is this many times off the ideal for the activation is a mismatch. 10 follows
            SageMaker Debugger's PoorWeightInitialization (variance ratio across layers > 10).
        saturating_stack_depth: this many consecutive hidden sigmoid/tanh layers without
            BatchNormalization is a deep saturating stack. Glorot & Bengio (2010) showed top hidden
            layers of 4-5 layer sigmoid networks saturating with standard initialization; Géron
            ch. 11 uses it to motivate ReLU, better init and BN.
        standardized_mean_tol: with data, SELU inputs count as standardized when every
            feature's |mean| is at most this (Klambauer et al. 2017 assume mean 0, variance 1; the
            tolerance of half a standard deviation is a gradscope choice).
        standardized_std_range: ... and every feature's standard deviation lies in this range
            (a factor of 2 around 1; gradscope choice). Constant features (std 0) are ignored.
    """

    mismatch_warning_depth: int = 5
    init_variance_factor: float = 10.0
    saturating_stack_depth: int = 5
    standardized_mean_tol: float = 0.5
    standardized_std_range: tuple[float, float] = (0.5, 2.0)


@dataclass(frozen=True)
class DetectThresholds:
    """All detector thresholds, passed to :func:`gradscope.detect.detect` and the audit.

    Attributes:
        window: which records are judged.
        progress: when a run counts as learning.
        vanishing: vanishing-gradient thresholds.
        exploding: exploding-gradient thresholds.
        dying_relu: dying-ReLU thresholds.
        saturation: saturation thresholds.
        nonfinite: NaN/Inf thresholds.
        unstable_loss: unstable-loss (learning rate too high) thresholds.
        slow_convergence: slow-convergence (learning rate too low) thresholds.
        static: static-rule thresholds.
    """

    window: WindowThresholds = WindowThresholds()
    progress: ProgressThresholds = ProgressThresholds()
    vanishing: VanishingThresholds = VanishingThresholds()
    exploding: ExplodingThresholds = ExplodingThresholds()
    dying_relu: DyingReluThresholds = DyingReluThresholds()
    saturation: SaturationThresholds = SaturationThresholds()
    nonfinite: NonfiniteThresholds = NonfiniteThresholds()
    unstable_loss: UnstableLossThresholds = UnstableLossThresholds()
    slow_convergence: SlowConvergenceThresholds = SlowConvergenceThresholds()
    static: StaticThresholds = StaticThresholds()


DETECT_THRESHOLDS = DetectThresholds()
