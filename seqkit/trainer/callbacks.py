"""Callbacks: the Trainer's extension points.

As in transformers' ``TrainerCallback`` and Lightning's ``Callback``, a callback changes the loop
only through a small :class:`TrainerControl` (stop, save, evaluate), and a callback with state
implements ``state_dict``/``load_state_dict`` so that resume restores it. The event list is short
on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqkit.trainer.trainer import Trainer


@dataclass
class TrainerControl:
    """Requests from callbacks, read by the Trainer after each event and then cleared."""

    should_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False


class Callback:
    """Base class: override the events you need."""

    def on_train_begin(self, trainer: Trainer, control: TrainerControl) -> None:
        pass

    def on_step_end(self, trainer: Trainer, control: TrainerControl, logs: dict) -> None:
        """After each optimizer step; ``logs`` holds the training metrics on logging steps."""

    def on_evaluate(self, trainer: Trainer, control: TrainerControl, metrics: dict) -> None:
        pass

    def on_train_end(self, trainer: Trainer, control: TrainerControl) -> None:
        pass

    def protected_checkpoints(self) -> set[int]:
        """Checkpoint steps that rotation must keep (e.g. the best one)."""
        return set()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class EarlyStopping(Callback):
    """Stop after ``patience`` evaluations without improvement; restore the best weights.

    Each improvement asks for a checkpoint, so the best weights always exist on disk, and that
    checkpoint is protected from rotation until training ends.
    """

    def __init__(self, patience: int, metric: str = "eval/loss", mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"early stopping mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.metric = metric
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.evaluations_without_improvement = 0

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def on_evaluate(self, trainer: Trainer, control: TrainerControl, metrics: dict) -> None:
        if self.metric not in metrics:
            raise KeyError(
                f"early stopping watches {self.metric!r}, but evaluation reported {sorted(metrics)}"
            )
        value = float(metrics[self.metric])
        if self._improved(value):
            self.best, self.best_step = value, trainer.step
            self.evaluations_without_improvement = 0
            control.should_save = True
        else:
            self.evaluations_without_improvement += 1
            if self.evaluations_without_improvement >= self.patience:
                control.should_stop = True

    def on_train_end(self, trainer: Trainer, control: TrainerControl) -> None:
        if self.best_step is not None and self.best_step != trainer.step:
            trainer.restore_weights(self.best_step)

    def protected_checkpoints(self) -> set[int]:
        return set() if self.best_step is None else {self.best_step}

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "evaluations_without_improvement": self.evaluations_without_improvement,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        self.best_step = state["best_step"]
        self.evaluations_without_improvement = state["evaluations_without_improvement"]
