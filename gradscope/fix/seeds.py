"""The user's training is one draw: trial the original on more seeds when one trial sees nothing.

A learning rate far too high can kill a network on one seed and spare it on the next: the zoo's
CNN at Adam(0.3) trained the zoo's way ends at chance on seed 0 and at 0.94 and 0.98 on seeds 1
and 2; its fix trials on ten seeds (same 256 examples) ended between 0.24 and 0.99, three of them
dead. One trial that learns is no proof of health, so when the original's first trial shows
nothing to fix, :func:`probe_seeds` trials it on up to
:attr:`~gradscope.config.RepairThresholds.trial_seeds` seeds in all (same examples, other batch
orders and dropout draws):

* the first seed whose trial shows something to fix becomes the seed of every trial of the
  search;
* if none does but their results spread apart (:func:`unsteady`), learning is a lottery: the
  search runs on the seed that did worst, and a candidate must also be steady over the same
  seeds (:func:`steady_over`).

Example:
    >>> probe = probe_seeds(model, data, root, 64, 0, 32, first, needs_search)  # doctest: +SKIP
    >>> probe.seed, probe.unsteady  # doctest: +SKIP
    (2, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras

from gradscope.config import (
    DETECT_THRESHOLDS,
    REPAIR_THRESHOLDS,
    DetectThresholds,
    RepairThresholds,
)
from gradscope.fix.trials import TrialStats
from gradscope.fix.verify import fix_trial
from gradscope.trial.data import TrialData


@dataclass(frozen=True)
class SeedProbe:
    """The original's trials over several seeds, and the one the search uses.

    Attributes:
        seeds: the seeds trialled, in order (the first is the caller's).
        trials: the original's trial on each.
        index: which of them the search uses.
        unsteady: the trials' results spread apart (:func:`unsteady`) although none showed
            anything to fix.
    """

    seeds: tuple[int, ...]
    trials: tuple[TrialStats, ...]
    index: int = 0
    unsteady: bool = False

    @property
    def seed(self) -> int:
        """The seed of the search's trials."""
        return self.seeds[self.index]

    @property
    def trial(self) -> TrialStats:
        """The original's trial on that seed."""
        return self.trials[self.index]


def _final(trial: TrialStats) -> tuple[float, float | None]:
    loss = trial.learned_loss
    return (math.inf if loss is None or not math.isfinite(loss) else loss), trial.learned_accuracy


def spread(trials: Sequence[TrialStats]) -> tuple[float, float | None]:
    """How far apart the trials of one model ended: by loss, and by accuracy.

    Args:
        trials: trials of the same model on the same examples, on different seeds.

    Returns:
        ``(loss, accuracy)``: the range of the final losses as a share of the best trial's drop
        from the start (inf when a loss is not finite or nothing dropped), and the range of the
        final accuracies (None without labels).

    Example:
        >>> spread([seed_0, seed_1])  # doctest: +SKIP
        (0.52, 0.39)
    """
    finals = [_final(t) for t in trials]
    losses = [f[0] for f in finals]
    best = min(losses)
    start = trials[0].curve.start if trials[0].curve is not None else None
    start_loss = start.loss if start is not None else None
    drop = (start_loss - best) if start_loss is not None and math.isfinite(best) else 0.0
    loss_spread = (
        (max(losses) - best) / drop if drop > 0 and math.isfinite(max(losses)) else math.inf
    )
    accuracies = [f[1] for f in finals]
    if any(a is None for a in accuracies):
        return loss_spread, None
    known = [a for a in accuracies if a is not None]
    return loss_spread, max(known) - min(known)


def unsteady(
    trials: Sequence[TrialStats], thresholds: RepairThresholds = REPAIR_THRESHOLDS
) -> bool:
    """Do the trials of one model on several seeds end too far apart to trust any one of them?

    Args:
        trials: at least two trials of the same model on the same examples.
        thresholds: ``seed_spread_loss`` and ``seed_spread_accuracy``.

    Returns:
        True if the final losses spread by ``seed_spread_loss`` of the best drop or more, or the
        accuracies by ``seed_spread_accuracy`` or more.

    Example:
        >>> unsteady([seed_0, seed_1, seed_2])  # doctest: +SKIP
        True
    """
    if len(trials) < 2:
        return False
    loss, acc = spread(trials)
    return loss >= thresholds.seed_spread_loss or (
        acc is not None and acc >= thresholds.seed_spread_accuracy
    )


def worst(trials: Sequence[TrialStats]) -> int:
    """The index of the trial that ended worst: lowest accuracy with labels, else highest loss.

    Args:
        trials: trials of one model.

    Returns:
        Its index.

    Example:
        >>> worst([seed_0, seed_1, seed_2])  # doctest: +SKIP
        2
    """
    finals = [_final(t) for t in trials]
    if all(a is not None for _, a in finals):
        return min(range(len(finals)), key=lambda i: (finals[i][1], -finals[i][0]))
    return max(range(len(finals)), key=lambda i: finals[i][0])


def probe_seeds(
    model: keras.Model,
    data: TrialData,
    root: Path,
    steps: int,
    seed: int,
    batch_size: int,
    first: TrialStats,
    needs_search: Callable[[TrialStats], bool],
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    kinds: Collection[str] | None = None,
    repair: RepairThresholds = REPAIR_THRESHOLDS,
) -> SeedProbe:
    """Trials the original on more seeds until one shows something to fix.

    Args:
        model: the original (not trained; copies are).
        data: the trial examples, the same for every seed.
        root: folder of the runs (``original_seed<N>`` each).
        steps: trial steps.
        seed: the first seed (of ``first``); the others follow it.
        batch_size: examples per step.
        first: the original's trial on ``seed``.
        needs_search: does a trial show something to fix (a targeted finding, no learning)?
        thresholds: detector thresholds.
        kinds: finding kinds the trials look for.
        repair: ``trial_seeds`` and the spread margins.

    Returns:
        The :class:`SeedProbe`: the first seed whose trial needs a search; else, if the trials
        are :func:`unsteady`, the worst one; else the first.

    Example:
        >>> probe_seeds(model, data, root, 64, 0, 32, first, needs).seeds  # doctest: +SKIP
        (0, 1, 2)
    """
    seeds, trials = [seed], [first]
    if needs_search(first):
        return SeedProbe(tuple(seeds), tuple(trials))
    for extra in range(seed + 1, seed + repair.trial_seeds):
        trial = fix_trial(
            model, data, root / f"original_seed{extra}", steps, extra, batch_size, thresholds, kinds
        )
        seeds.append(extra)
        trials.append(trial)
        if needs_search(trial):
            return SeedProbe(tuple(seeds), tuple(trials), len(trials) - 1)
    if unsteady(trials, repair):
        return SeedProbe(tuple(seeds), tuple(trials), worst(trials), True)
    return SeedProbe(tuple(seeds), tuple(trials))


def steady_over(
    model: keras.Model,
    trial: TrialStats,
    probe: SeedProbe,
    data: TrialData,
    root: Path,
    steps: int,
    batch_size: int,
    thresholds: DetectThresholds = DETECT_THRESHOLDS,
    kinds: Collection[str] | None = None,
    repair: RepairThresholds = REPAIR_THRESHOLDS,
) -> bool:
    """Is a candidate steady over the probe's seeds (its trial on the search's seed given)?

    Args:
        model: the candidate (not trained; copies are).
        trial: its trial on ``probe.seed``.
        probe: the original's seeds.
        data: the trial examples.
        root: folder of the extra runs (``seed<N>`` each).
        steps: trial steps.
        batch_size: examples per step.
        thresholds: detector thresholds.
        kinds: finding kinds the trials look for.
        repair: the spread margins.

    Returns:
        True if its trials on every seed of the probe are not :func:`unsteady`.

    Example:
        >>> steady_over(fixed, v.after, probe, data, root, 64, 32)  # doctest: +SKIP
        True
    """
    trials = [trial]
    for other in probe.seeds:
        if other != probe.seed:
            trials.append(
                fix_trial(
                    model, data, root / f"seed{other}", steps, other, batch_size, thresholds, kinds
                )
            )
    return not unsteady(trials, repair)


__all__ = ["SeedProbe", "probe_seeds", "spread", "steady_over", "unsteady", "worst"]
