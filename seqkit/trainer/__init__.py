"""The Trainer and what it is made of: config, tasks, callbacks, checkpoints, logging."""

from seqkit.trainer.config import TrainerConfig

__all__ = ["TrainerConfig"]
