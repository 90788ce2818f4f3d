"""Repair thresholds (gradscope.fix): how fix trials train, verify and search.

How long a fix trial trains, when a fixed copy "learns measurably better" than the original,
and how long the search goes on; sources per field. Re-exported by :mod:`gradscope.config`.

Example:
    >>> REPAIR_THRESHOLDS.trial_seeds
    3
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RepairThresholds:
    """How ``gradscope fix`` verifies a fix by learning, and how long it searches.

    A candidate is kept only when the findings it targets are gone from its trial **and** it
    learns measurably better than the model before it, both trained on the same examples, in the
    same batch order, from the same seed. Learning is measured on the trial's own examples after
    the trial (loss, and accuracy when the loss has labels), not on single batches.

    Attributes:
        trial_examples: examples a fix trial trains on (a seeded subset of the user's data, or
            synthetic examples whose targets a random linear teacher computes from the inputs,
            so a network that trains can learn them). A few hundred examples seen several times
            (issue 17; AutoTrainer judges learning over epochs, not steps): small enough to keep
            a trial seconds on a CPU, large enough that an accuracy step of 1/256 is noise.
        trial_epochs: passes over those examples per trial when neither ``--steps`` nor
            ``--epochs`` is given (8 x 256 / 32 = 64 steps at batch size 32); AutoTrainer's
            progress rules compare epochs, and eight leave a trend after the first.
        min_loss_gain: the fixed copy's loss on the trial examples after the trial must be at
            least this fraction below the original's (5 %; gradscope choice: the whole trial set
            is scored, so there is no batch noise, and five times the 1 % "not worse"
            tolerance). An original whose loss ends non-finite is judged by its loss at the
            start of the trial: a copy must learn, not merely stay finite.
        min_accuracy_gain: with labels, the alternative to the loss gain: accuracy on the trial
            examples up by at least this much (0.05; the binomial standard error of an accuracy
            near 0.5 on 256 examples is 0.031, and both trials are scored on the same examples).
            A copy whose accuracy falls by more than this is worse, whatever its loss.
        max_loss_increase: a copy whose trial loss rises by more than this fraction is worse,
            whatever its accuracy (1 %, the earlier "not worse" tolerance of batch noise).
        trial_seeds: seeds the original is trialled on when its first trial shows nothing to
            fix (:mod:`gradscope.fix.seeds`): the user's training is one draw, and a rate far
            too high kills a network on some seeds only (the zoo's CNN at Adam(0.3) died in 3
            of 10 trials). Three catch a one-in-three failure 70 % of the time at twice the
            cost of one trial more (gradscope choice).
        seed_spread_loss: the trials of one model on those seeds are unsteady (learning is a
            lottery) when their final losses spread by this share of the best trial's drop from
            the start or more (0.3; gradscope choice: 11 healthy zoo models and the 6 healthy
            scenarios measured up to 0.18 over three seeds, the CNN at Adam(0.3) 0.52).
        seed_spread_accuracy: ... or, with labels, their final accuracies by this much or more
            (0.15, three times ``min_accuracy_gain``; the same healthy networks measured up to 0.06,
            the CNN at Adam(0.3) 0.39).
        budget_seconds: default wall-clock budget of ``fix --auto``'s search (``--budget``).
            Single fixes in plan order come first, then combinations; a candidate is not started
            once the budget is spent (the running one finishes). 120 s is about 15 candidate
            trials of a small network on a CPU (gradscope choice).
    """

    trial_examples: int = 256
    trial_epochs: int = 8
    min_loss_gain: float = 0.05
    min_accuracy_gain: float = 0.05
    max_loss_increase: float = 0.01
    trial_seeds: int = 3
    seed_spread_loss: float = 0.3
    seed_spread_accuracy: float = 0.15
    budget_seconds: float = 120.0


REPAIR_THRESHOLDS = RepairThresholds()
