"""The Trainer and what it is made of: config, tasks, callbacks, checkpoints, logging.

Names are imported on first use, so that reading a recipe (which needs only
:class:`TrainerConfig`) does not pay for importing torch and accelerate.
"""

from importlib import import_module
from typing import TYPE_CHECKING

_HOMES = {
    "Callback": "seqkit.trainer.callbacks",
    "EarlyStopping": "seqkit.trainer.callbacks",
    "TrainerControl": "seqkit.trainer.callbacks",
    "TrainerConfig": "seqkit.trainer.config",
    "ClassificationTask": "seqkit.trainer.tasks",
    "LanguageModelingTask": "seqkit.trainer.tasks",
    "SupervisedTask": "seqkit.trainer.tasks",
    "Task": "seqkit.trainer.tasks",
    "Trainer": "seqkit.trainer.trainer",
    "TrainOutput": "seqkit.trainer.trainer",
}
__all__ = [
    "Callback",
    "ClassificationTask",
    "EarlyStopping",
    "LanguageModelingTask",
    "SupervisedTask",
    "Task",
    "TrainOutput",
    "Trainer",
    "TrainerConfig",
    "TrainerControl",
]

if TYPE_CHECKING:
    from seqkit.trainer.callbacks import Callback, EarlyStopping, TrainerControl
    from seqkit.trainer.config import TrainerConfig
    from seqkit.trainer.tasks import (
        ClassificationTask,
        LanguageModelingTask,
        SupervisedTask,
        Task,
    )
    from seqkit.trainer.trainer import Trainer, TrainOutput


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'seqkit.trainer' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
