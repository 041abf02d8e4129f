"""Tasks: the part of training that differs from one model family to the next.

The Trainer owns everything that is the same for every model (devices, precision, accumulation,
clipping, schedules, the loop, evaluation cadence, checkpoints). A task owns the rest: which
models exist, which optimizers update them, and how a batch becomes a loss. This is the split
minGPT's trainer argues for ("nothing in this file has anything to do with GPT") taken one step
further, so that a GAN (two optimizers) or a DQN agent (batches drawn from an environment) trains
with the same loop as a language model.

Contract, in the order the Trainer uses it:

- ``models``: named modules. The Trainer wraps them for distributed training in place and
  unwraps them for saving; a task never moves them to a device itself.
- ``configure_optimizers(build)``: optimizers by name, in the order they step. ``build(module,
  lr=None)`` returns the optimizer the recipe asked for.
- ``train_batches()``: ``None`` to train on the Trainer's DataLoader, or an endless iterator of
  batches (an environment feeding a replay buffer).
- ``training_step(batch, optimizer_name)``: the mean loss over the batch's targets (or a dict with
  ``"loss"`` and extra scalars to log). Called once per micro-batch and optimizer.
- ``num_targets(batch)``: how many targets the mean in ``training_step`` is over, so gradient
  accumulation can weight micro-batches by targets rather than count them equally. An int, or
  a 0-d tensor when counting needs the device (reading it back would make the host wait).
- ``evaluation_step(batch)``: ``{metric: (sum, count)}`` so evaluation streams batch by batch.
- ``throughput_unit`` and ``flops_per_target()``: what a target is (tokens, examples), for the
  logged ``train/<unit>_per_s``, and the training FLOPs per target when known (for MFU).
- ``summarize(metrics)``: derived metrics (perplexity from loss) once evaluation is complete.
- ``state_dict()``/``load_state_dict()``: anything beyond model weights that resume must restore.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

OptimizerFactory = Callable[..., torch.optim.Optimizer]
Batch = Any


class Task:
    """Base class; override what differs. See the module docstring for the contract."""

    throughput_unit = "examples"
    """What one target is, in the logged ``train/<unit>_per_s``."""

    def __init__(self, models: Mapping[str, nn.Module] | nn.Module):
        if isinstance(models, nn.Module):
            models = {"model": models}
        self.models: dict[str, nn.Module] = dict(models)

    @property
    def model(self) -> nn.Module:
        """The single model of a one-model task."""
        if len(self.models) != 1:
            raise AttributeError("task.model is only defined for tasks with one model")
        return next(iter(self.models.values()))

    def configure_optimizers(self, build: OptimizerFactory) -> dict[str, torch.optim.Optimizer]:
        """One optimizer over every model, by default."""
        modules = list(self.models.values())
        target = modules[0] if len(modules) == 1 else nn.ModuleList(modules)
        return {"model": build(target)}

    def train_batches(self) -> Iterator[Batch] | None:
        """Batches from somewhere other than the Trainer's DataLoader; None means use it."""
        return None

    def training_step(self, batch: Batch, optimizer_name: str) -> torch.Tensor | dict:
        raise NotImplementedError

    def num_targets(self, batch: Batch) -> int | torch.Tensor:
        """Targets behind the mean loss: non-ignored labels if the batch has them, else rows."""
        if isinstance(batch, Mapping):
            labels = batch.get("labels")
            if isinstance(labels, torch.Tensor):
                if labels.dim() > 1 and not labels.is_floating_point():
                    return (labels != -100).sum()  # token-level targets, -100 = ignored
                return labels.shape[0]
            first = next((v for v in batch.values() if isinstance(v, torch.Tensor)), None)
            return 1 if first is None else first.shape[0]
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            return batch[0].shape[0]
        return 1

    def evaluation_step(self, batch: Batch) -> dict[str, tuple[torch.Tensor, float]]:
        """Default: the training loss of the first optimizer, summed over targets."""
        out = self.training_step(batch, next(iter(self._optimizer_names())))
        loss = out["loss"] if isinstance(out, dict) else out
        count = self.num_targets(batch)
        return {"loss": (loss.detach().float() * count, count)}

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        return metrics

    def flops_per_target(self) -> float | None:
        """Training FLOPs (forward and backward) per target, or None when unknown."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def _optimizer_names(self) -> list[str]:
        return getattr(self, "optimizer_names", ["model"])


class SupervisedTask(Task):
    """A model whose ``forward(**batch)`` returns an output with ``.loss``: no task code needed."""

    def training_step(self, batch: Mapping[str, torch.Tensor], optimizer_name: str):
        return self.model(**batch).loss


class LanguageModelingTask(SupervisedTask):
    """Supervised next-token prediction; also reports perplexity = exp(mean loss)."""

    throughput_unit = "tokens"

    def flops_per_target(self) -> float | None:
        """6·N per token for the weights (2 forward, 4 backward; Kaplan et al. 2020), plus
        12·L·T·C for a Transformer's attention scores over a context of T (nanoGPT's
        ``estimate_mfu``); recurrent models have no such term."""
        weights = sum(p.numel() for m in self.models.values() for p in m.parameters())
        config = getattr(self.model, "config", None)
        layers = getattr(config, "n_layer", None)
        width = getattr(config, "n_embd", None)
        context = getattr(config, "n_positions", None)
        attention = 12 * layers * context * width if layers and width and context else 0
        return float(6 * weights + attention)

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        if "loss" in metrics:
            # Clamp so an untrained model's huge loss reports inf-free perplexity.
            metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
        return metrics
