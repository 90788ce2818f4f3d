"""Run data model: the records gradscope writes while training and reads back for diagnosis."""

from gradscope.data.reader import Run, RunFormatError, load_run
from gradscope.data.rundirs import list_runs, new_run_dir
from gradscope.data.schema import (
    GRAD_STATS,
    LAYER_STATS,
    SCHEMA_VERSION,
    EpochRecord,
    LayerInfo,
    RunMeta,
    StepRecord,
)
from gradscope.data.store import RunWriter

__all__ = [
    "GRAD_STATS",
    "LAYER_STATS",
    "SCHEMA_VERSION",
    "EpochRecord",
    "LayerInfo",
    "Run",
    "RunFormatError",
    "RunMeta",
    "RunWriter",
    "StepRecord",
    "list_runs",
    "load_run",
    "new_run_dir",
]
