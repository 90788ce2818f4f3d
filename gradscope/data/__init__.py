"""Run data model: the records gradscope writes while training and reads back for diagnosis."""

from gradscope.data.schema import (
    GRAD_STATS,
    LAYER_STATS,
    SCHEMA_VERSION,
    EpochRecord,
    LayerInfo,
    RunMeta,
    StepRecord,
)
from gradscope.data.store import Run, RunFormatError, RunWriter, load_run

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
    "load_run",
]
