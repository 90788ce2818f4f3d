"""Trials: the one short recorded training run of a copy of a model.

The audit's probe (:mod:`gradscope.audit.probe`) and the fix trials (:mod:`gradscope.fix.verify`)
both run :func:`run_trial`: it copies the model, compiles the copy by the one optimizer policy
(:class:`OptimizerPolicy`: the model's own compile settings, else ``SGD(0.01, momentum=0.9)``),
fits it on the batches :func:`feed` and a seed define, with ``GradScope(freq=1)``, and loads the
run. Modules: :mod:`~gradscope.trial.data` (the data feeder), :mod:`~gradscope.trial.synthetic`
(inputs a model accepts when there is no data: token ids, sequence lengths, dtypes, several
inputs), :mod:`~gradscope.trial.policy` (how the copy is compiled), :mod:`~gradscope.trial.runner`
(the run). A trial that cannot run through no fault of the data raises
:class:`gradscope.errors.TrialNotRunError`.

Example::

    from gradscope.trial import feed, run_trial
    result = run_trial(model, feed(model, n=128), steps=8, log_dir="runs/probe")
    result.run.records[-1].loss
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradscope._lazy import lazy_exports

if TYPE_CHECKING:
    from gradscope.trial.data import TrialData, batch_order, feed, load_npz_data
    from gradscope.trial.policy import (
        DEFAULT_OPTIMIZER,
        OptimizerPolicy,
        compile_as_saved,
        infer_loss,
    )
    from gradscope.trial.runner import TrialResult, run_trial

# Resolved on first use: every module here imports TensorFlow.
_LAZY = {
    "TrialData": "gradscope.trial.data",
    "batch_order": "gradscope.trial.data",
    "feed": "gradscope.trial.data",
    "load_npz_data": "gradscope.trial.data",
    "DEFAULT_OPTIMIZER": "gradscope.trial.policy",
    "OptimizerPolicy": "gradscope.trial.policy",
    "compile_as_saved": "gradscope.trial.policy",
    "infer_loss": "gradscope.trial.policy",
    "TrialResult": "gradscope.trial.runner",
    "run_trial": "gradscope.trial.runner",
}

__all__ = [
    "DEFAULT_OPTIMIZER",
    "OptimizerPolicy",
    "TrialData",
    "TrialResult",
    "batch_order",
    "compile_as_saved",
    "feed",
    "infer_loss",
    "load_npz_data",
    "run_trial",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
