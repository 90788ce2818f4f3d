"""What a model file declares, and what loading it produced: the records the loader modules share.

Kept apart from the loading code so that reading a file (:mod:`gradscope.model.sniff`), checking
it (:mod:`gradscope.model.capacity`) and deserializing it (:mod:`gradscope.model.deserialize`) can
all name these types without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscope.errors import GradscopeInputError
from gradscope.model.spec import ModelSpec, spec_from_config


@dataclass(frozen=True)
class StoredModel:
    """What a model file declares, read without deserializing anything.

    Attributes:
        path: the file.
        format: ``"keras"`` or ``"h5"``.
        model_config: the stored model config.
        optimizer_config: the stored optimizer config, if the model was saved compiled.
        keras_version: the Keras version that wrote the file, if recorded.
        lambda_layers: names of Lambda layers (Python bytecode that runs on load).
        unknown_objects: class names Keras does not know (custom code needed).
        loss: the stored loss config (a name such as ``"mse"`` or a serialized loss), if any.
    """

    path: Path
    format: str
    model_config: Mapping[str, Any]
    optimizer_config: Mapping[str, Any] | None
    keras_version: str | None
    lambda_layers: tuple[str, ...] = ()
    unknown_objects: tuple[str, ...] = ()
    loss: Any = None

    @property
    def spec(self) -> ModelSpec:
        """The static description of the stored model."""
        return spec_from_config(self.model_config, self.optimizer_config)

    @property
    def needs_unsafe(self) -> bool:
        """True if loading would run code from the file or from unknown custom objects."""
        return bool(self.lambda_layers or self.unknown_objects)


@dataclass
class LoadedModel:
    """A safely loaded model.

    Attributes:
        stored: what the file declares.
        model: the deserialized Keras model.
        spec: its static description.
    """

    stored: StoredModel
    model: Any
    spec: ModelSpec = field(init=False)

    def __post_init__(self) -> None:
        self.spec = self.stored.spec


class ModelRebuildError(GradscopeInputError):
    """The file is a safe Keras model file, but this Keras cannot rebuild the model.

    The stored config is still available (``stored``), so static rules can run on it.
    """

    def __init__(self, message: str, stored: StoredModel) -> None:
        super().__init__(message)
        self.stored = stored
