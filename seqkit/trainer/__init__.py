"""The Trainer and what it is made of: config, tasks, callbacks, checkpoints, logging."""

from seqkit.trainer.callbacks import Callback, EarlyStopping, TrainerControl
from seqkit.trainer.config import TrainerConfig
from seqkit.trainer.tasks import LanguageModelingTask, SupervisedTask, Task
from seqkit.trainer.trainer import Trainer, TrainOutput

__all__ = [
    "Callback",
    "EarlyStopping",
    "LanguageModelingTask",
    "SupervisedTask",
    "Task",
    "TrainOutput",
    "Trainer",
    "TrainerConfig",
    "TrainerControl",
]
