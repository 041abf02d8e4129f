"""The Trainer: one training loop for every model in seqkit, built on ``accelerate``.

It is the only place that knows about devices, processes, mixed precision, gradient accumulation
and clipping, LR schedules, evaluation cadence, checkpoints and logging. What differs between
models lives in a :class:`~seqkit.trainer.tasks.Task`; extension happens through
:mod:`~seqkit.trainer.callbacks`. Nothing subclasses the Trainer.

Three details other trainers get wrong, and this one is tested for:

- Gradient accumulation weights each micro-batch by its number of targets, so the accumulated
  gradient equals the gradient of the mean loss over the whole large batch (not the mean of
  per-micro-batch means), across processes too.
- The LR scheduler steps exactly once per optimizer step, whatever the accumulation and the
  number of processes (so it is never handed to ``accelerator.prepare``).
- Resume restores weights, optimizers, schedulers, RNG states, callback and task state and the
  data position, and never replays data to find its place: a resumed CPU run ends with the same
  weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import gather_object, set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from seqkit.errors import UserError
from seqkit.trainer.callbacks import Callback, EarlyStopping, TrainerControl
from seqkit.trainer.checkpoint import (
    CHECKPOINT_WEIGHTS,
    CheckpointManager,
    capture_rng_state,
    load_module_weights,
    load_trainer_state,
    load_tree,
    restore_rng_state,
    save_module_weights,
    save_tree,
)
from seqkit.trainer.config import TrainerConfig
from seqkit.trainer.heap import return_free_heap
from seqkit.trainer.logging import MetricsLogger, plot_loss
from seqkit.trainer.optim import build_optimizer, l1_penalty
from seqkit.trainer.recompute import blocks_to_recompute, gradient_checkpointing
from seqkit.trainer.sampling import ResumableStream, ShardedBatchSampler, ShardedEvalSampler
from seqkit.trainer.schedules import build_scheduler, load_scheduler_state, scheduler_state
from seqkit.trainer.tasks import SupervisedTask, Task
from seqkit.trainer.throughput import ThroughputMeter
from seqkit.trainer.trackers import start_trackers, tracker_list
from seqkit.trainer.without_dtensor import clip_grad_norm, device_placements

logger = logging.getLogger(__name__)


class TrainingDiverged(UserError):
    """The loss or the gradients stopped being finite and ``nan_policy`` is ``stop``."""


@dataclass
class TrainOutput:
    """What :meth:`Trainer.train` returns."""

    step: int
    train_loss: float | None
    eval_metrics: dict[str, float]


def cpu_only() -> bool:
    """True when no accelerator is present.

    accelerate only starts its gloo (multi-CPU) backend under ``accelerate launch`` when told
    it is on CPU; otherwise every launched process would train alone as process 0 of 1.
    """
    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return not (
        torch.cuda.is_available()
        or (mps is not None and mps.is_available())
        or (xpu is not None and xpu.is_available())
    )


def process_state() -> PartialState:
    """The process group seqkit runs in (one process, or several under accelerate launch)."""
    return PartialState(cpu=cpu_only())


def _as_is(item: Any) -> Any:
    """The DataLoader's collate function for a stream that batches itself."""
    return item


def _target_count(count: int | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A micro-batch's number of targets as a float32 scalar on ``device``, without waiting.

    ``torch.as_tensor(7, device=cuda)`` builds the number on the host and copies it over with a
    blocking copy (the host waits for the device's queue); ``torch.full`` launches a fill
    kernel instead. A tensor count is already where the batch is."""
    if isinstance(count, torch.Tensor):
        return count.to(device=device, dtype=torch.float32)
    return torch.full((), float(count), dtype=torch.float32, device=device)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """Train a task (or a model whose ``forward(**batch)`` returns ``.loss``).

    Args:
        task: a :class:`Task`, or a model, which is wrapped in :class:`SupervisedTask`.
        config: the loop's settings.
        output_dir: the run directory (checkpoints, metrics.jsonl, loss.png, TensorBoard logs).
        train_data: a map-style dataset, or a :class:`ResumableStream` (an ``IterableDataset``
            that says where it stands, so a checkpoint can resume it mid-stream); not needed
            when the task draws its own batches.
        eval_data: a map-style dataset evaluated every ``config.eval_every`` steps.
        collate_fn: turns a list of examples into a batch (default: torch's default collate).
        callbacks: extra callbacks; early stopping is added from the config.
        train_lengths: one length per training example, to batch examples of similar length
            together (length bucketing, see :class:`ShardedBatchSampler`); None for random
            batches.
        hyperparameters: what the trackers of ``config.report_to`` record for the run, nested
            (the whole recipe, say); default: ``config`` under ``trainer``. See
            :func:`seqkit.trainer.trackers.start_trackers`.
    """

    def __init__(
        self,
        task: Task | nn.Module,
        config: TrainerConfig,
        *,
        output_dir: str | Path,
        train_data: Dataset | None = None,
        eval_data: Dataset | None = None,
        collate_fn: Callable | None = None,
        callbacks: Sequence[Callback] = (),
        train_lengths: Sequence[int] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ):
        config.validate()
        self.task = task if isinstance(task, Task) else SupervisedTask(task)
        self.config = config
        self.output_dir = Path(output_dir)
        self.train_data = train_data
        self.eval_data = eval_data
        self.collate_fn = collate_fn
        self.train_lengths = train_lengths
        self.hyperparameters = hyperparameters
        self.callbacks = list(callbacks)
        if config.early_stopping_patience is not None:
            self.callbacks.append(
                EarlyStopping(
                    config.early_stopping_patience,
                    config.early_stopping_metric,
                    config.early_stopping_mode,
                )
            )
        process_state()  # first, so that the Accelerator joins the right process group
        precision, self._precision_source = config.resolved_mixed_precision()
        # accelerate keeps one AcceleratorState per process, and refuses a second Accelerator
        # with other settings ("already initialized"): a notebook that trains twice, the second
        # time in bf16, would fail. Each Trainer starts from fresh per-run settings; the process
        # group (PartialState) is kept, so this is a no-op for the processes of one launch.
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        self.accelerator = Accelerator(
            cpu=cpu_only(),
            mixed_precision=precision,
            log_with=tracker_list(config.report_to, self.output_dir) or None,
            project_dir=str(self.output_dir),
        )
        if isinstance(train_data, IterableDataset) and not isinstance(train_data, ResumableStream):
            # A plain stream cannot say where it stands: resume would replay or skip data.
            raise ValueError("an IterableDataset train_data must be a ResumableStream")
        if train_data is not None and not isinstance(train_data, ResumableStream):
            needed = config.batch_size * self.accelerator.num_processes
            if len(train_data) < needed:
                raise UserError(
                    f"the training data has {len(train_data)} examples, fewer than one batch "
                    f"(trainer.batch_size {config.batch_size} × {self.accelerator.num_processes} "
                    "process(es)); use a smaller batch or more data"
                )
        self.step = 0
        self.skipped_steps = 0
        """Optimizer steps left out because the loss or gradients were not finite."""
        self._epoch = 0
        self._batch_in_epoch = 0
        self._stream_position: Any = None
        """Where a :class:`ResumableStream` stands after the last batch drawn (None: at the
        start of the epoch); saved with ``(epoch, batch_in_epoch)``."""
        self._training_models: dict[str, nn.Module] = dict(self.task.models)
        """What ``training_step`` runs: the task's modules, wrapped for the processes by
        :meth:`_prepare`. The task's own ``models`` stay the plain modules."""
        self._prepared = False
        self._resumed_window: dict[str, torch.Tensor] = {}
        self._first_bad_step: dict[str, torch.Tensor] = {}
        """Per optimizer, the first step with a non-finite loss or gradient norm (0 = none),
        kept on the device until the host next reads numbers (see :meth:`_check_health`)."""
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", config.keep_last)
        if config.gradient_checkpointing:
            blocks_to_recompute(self.task.models)  # a model without blocks: refused now

    # ------------------------------------------------------------------ set-up

    def _prepare(self) -> None:
        """Wrap models and optimizers for the device/processes; build schedulers."""
        if self._prepared:
            return
        acc = self.accelerator
        set_seed(self.config.seed)

        def build(module: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
            return build_optimizer(module, self.config, lr=lr)

        optimizers = self.task.configure_optimizers(build)
        default_evaluation = type(self.task).evaluation_step is Task.evaluation_step
        evaluates = self.eval_data is not None and default_evaluation
        if evaluates and self.task.evaluation_optimizer not in optimizers:
            # A task's mistake, not a user's: name it before training rather than at the
            # first evaluation, hours in.
            raise ValueError(
                f"{type(self.task).__name__}.evaluation_optimizer is "
                f"{self.task.evaluation_optimizer!r}, not one of its optimizers {list(optimizers)}"
            )
        # Only models that train are wrapped: DDP refuses a module without a parameter that
        # takes gradients (a DQN's target network, a frozen teacher), so those just move to
        # the device and stay plain modules on every process.
        names = [
            n for n, m in self.task.models.items() if any(p.requires_grad for p in m.parameters())
        ]
        prepared = acc.prepare(
            *[self.task.models[n] for n in names],
            *optimizers.values(),
            device_placement=device_placements(acc, len(names), len(optimizers)),
        )
        if not isinstance(prepared, tuple):
            prepared = (prepared,)
        wrapped = dict(zip(names, prepared[: len(names)], strict=True))
        self._training_models = {
            n: wrapped[n] if n in wrapped else m.to(acc.device) for n, m in self.task.models.items()
        }
        if self.config.compile:
            # Only the training steps run compiled: torch.compile returns a wrapper around the
            # same module (its state dict prefixes every key with ``_orig_mod.``), so the task's
            # plain modules, which checkpoints, evaluation and generation use, are untouched.
            for name in wrapped:
                self._training_models[name] = torch.compile(wrapped[name])
        self.optimizers = dict(zip(optimizers, prepared[len(names) :], strict=True))
        # Schedulers are deliberately NOT prepared: accelerate would step them once per process.
        self.schedulers = {
            name: build_scheduler(opt.optimizer if hasattr(opt, "optimizer") else opt, self.config)
            for name, opt in self.optimizers.items()
        }
        self._prepared = True

    def _train_batches(self) -> Iterator[Any]:
        """Endless micro-batches, tracking (epoch, batch) so a checkpoint can record them."""
        acc = self.accelerator
        own = self.task.train_batches()
        if own is not None:
            for batch in own:
                yield _to_device(batch, acc.device)
            return
        if self.train_data is None:
            raise ValueError("Trainer needs train_data unless the task draws its own batches")
        if isinstance(self.train_data, ResumableStream):
            yield from self._stream_batches(self.train_data)
            return
        sampler = ShardedBatchSampler(
            len(self.train_data),
            self.config.batch_size,
            seed=self.config.seed,
            num_processes=acc.num_processes,
            process_index=acc.process_index,
            lengths=self.train_lengths,
        )
        while True:
            sampler.set_position(self._epoch, self._batch_in_epoch)
            loader = DataLoader(
                self.train_data,
                batch_sampler=sampler,
                collate_fn=self.collate_fn,
                num_workers=self.config.num_workers,
                # A private generator: starting an epoch must not draw from the global RNG,
                # or a resumed run (which starts its epoch iterator elsewhere) would diverge.
                generator=torch.Generator().manual_seed(self.config.seed + self._epoch),
            )
            for batch in loader:
                # Counted before yielding: the position is "next batch to draw".
                self._batch_in_epoch += 1
                yield _to_device(batch, acc.device)
            self._epoch += 1
            self._batch_in_epoch = 0

    def _stream_batches(self, stream: ResumableStream) -> Iterator[Any]:
        """Endless micro-batches of a stream, tracking (epoch, batch, stream position)."""
        acc = self.accelerator
        while True:
            stream.start(
                self._epoch,
                self._stream_position,
                self.config.batch_size,
                acc.num_processes,
                acc.process_index,
            )
            loader = DataLoader(
                stream,
                batch_size=None,  # the stream batches and shards itself
                collate_fn=_as_is,
                num_workers=self.config.num_workers,
                generator=torch.Generator().manual_seed(self.config.seed + self._epoch),
            )
            drawn = 0
            for batch, position in loader:
                drawn += 1
                self._batch_in_epoch += 1
                self._stream_position = position
                yield _to_device(batch, acc.device)
            if drawn == 0 and self._stream_position is None:
                raise UserError(
                    "the training stream holds fewer examples than one batch (trainer.batch_size "
                    f"{self.config.batch_size} × {acc.num_processes} process(es)); use a smaller "
                    "batch or more data"
                )
            self._epoch += 1
            self._batch_in_epoch = 0
            self._stream_position = None

    # ------------------------------------------------------------------ training

    def _optimizer_step(self, micro_batches: list[Any]) -> dict[str, torch.Tensor]:
        """One optimizer step per optimizer over the micro-batches of this step."""
        acc, task, config = self.accelerator, self.task, self.config
        # Target counts stay tensors on the device: turning them into Python numbers would
        # make the host wait for the device on every micro-batch.
        counts = [_target_count(task.num_targets(b), acc.device) for b in micro_batches]
        total = torch.stack(counts).sum()
        if acc.num_processes > 1:
            total = acc.reduce(total, "sum")
        # DDP averages gradients over processes; multiplying by the process count turns that
        # average back into a sum, so each target weighs the same wherever it was computed.
        weights = [n * acc.num_processes / total for n in counts]
        models = self._training_models
        multi = len(self.optimizers) > 1
        sums: dict[str, torch.Tensor] = {}
        stepped = False
        for name, optimizer in self.optimizers.items():
            optimizer.zero_grad(set_to_none=True)
            step_sums: dict[str, torch.Tensor] = {}
            health = torch.zeros((), device=acc.device)  # becomes nan/inf if anything is
            for i, (batch, weight) in enumerate(zip(micro_batches, weights, strict=True)):
                last = i == len(micro_batches) - 1
                with contextlib.ExitStack() as stack:
                    if not last:
                        for model in models.values():
                            stack.enter_context(acc.no_sync(model))
                    with acc.autocast():
                        out = task.training_step(models, batch, name)
                    metrics = out if isinstance(out, dict) else {"loss": out}
                    loss = metrics["loss"]
                    if config.l1 > 0:
                        loss = loss + config.l1 * sum(
                            l1_penalty(m) for m in self.task.models.values()
                        )
                    acc.backward(loss * weight)
                health = health + loss.detach().float()
                for key, value in metrics.items():
                    key = f"{name}/{key}" if multi else key
                    # Weighted by targets so the logged value is the mean over the window.
                    value = value.detach().float() * counts[i]
                    step_sums[key] = step_sums[key] + value if key in step_sums else value
            if config.max_grad_norm is not None:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                norm = clip_grad_norm(acc, params, config.max_grad_norm)
                if norm is not None:
                    health = health + norm.detach().float()
                    # Weighted like the losses: the log shows the window's target-weighted mean.
                    key = f"{name}/grad_norm" if multi else "grad_norm"
                    step_sums[key] = norm.detach().float() * sum(counts)
            if config.nan_policy == "stop":
                # No synchronisation here: the step is taken, and the first step whose loss or
                # gradient norm was not finite is remembered on the device and looked at when
                # the host reads numbers anyway (logging, evaluation, checkpoints, the end).
                self._remember_health(name, health)
                take_step = True
            else:  # skip: whether to step must be known now, which costs one synchronisation
                take_step = self._all_finite(health)
            if take_step:
                stepped = True
                optimizer.step()
                for key, value in step_sums.items():
                    sums[key] = sums[key] + value if key in sums else value
            else:
                self._skip_step()
            # The schedule follows the step count, skipped steps included.
            self.schedulers[name].step()
        if stepped:  # a skipped step's metrics stay out of the logged means
            sums["_targets"] = torch.stack(counts).sum()
        return sums

    def _remember_health(self, optimizer_name: str, health: torch.Tensor) -> None:
        """Record (on the device) the first step at which ``health`` is not finite."""
        first = self._first_bad_step.get(optimizer_name)
        if first is None:
            first = torch.zeros((), dtype=torch.long, device=health.device)
        bad = ~torch.isfinite(health)
        self._first_bad_step[optimizer_name] = torch.where(bad & (first == 0), self.step + 1, first)

    def _check_health(self) -> None:
        """Stop (``nan_policy`` stop) if any step so far had a non-finite loss or gradient norm.

        Called only where the host synchronises anyway. The weights in memory went through the
        bad step, so the last good checkpoint's are loaded back before stopping.
        """
        if not self._first_bad_step:
            return
        names = list(self._first_bad_step)
        steps = torch.stack([self._first_bad_step[n] for n in names])
        if self.accelerator.num_processes > 1:
            steps = self.accelerator.gather(steps[None]).reshape(-1, len(names))
        else:
            steps = steps[None]
        found = []  # (first bad step over all processes, optimizer name)
        for name, column in zip(names, steps.T.tolist(), strict=True):
            bad_steps = [step for step in column if step]
            if bad_steps:
                found.append((min(bad_steps), name))
        if not found:
            return
        step, name = min(found)
        latest = self.checkpoints.latest()
        if latest is not None:
            self.restore_weights(int(latest.name.removeprefix("step-")))
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
        raise TrainingDiverged(
            f"the loss or gradient norm of {name!r} is not finite at step {step}; "
            f"{kept} (lower trainer.lr, or set trainer.nan_policy=skip to skip such steps)"
        )

    def _all_finite(self, health: torch.Tensor) -> bool:
        """Whether this step's losses and gradient norm are finite on every process.

        One synchronisation per optimizer step; every process must take the same branch, or
        the ones that stepped would diverge from the ones that did not.
        """
        bad = (~torch.isfinite(health)).float()
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, "sum")
        return not bool(bad.item())

    def _skip_step(self) -> None:
        """``nan_policy`` skip: leave the weights as they are and count the step."""
        self.skipped_steps += 1
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    def train(self, resume: bool = False) -> TrainOutput:
        """Train to ``config.max_steps``; with ``resume``, continue from the newest checkpoint."""
        with contextlib.ExitStack() as stack:
            if self.config.gradient_checkpointing:
                # Only while training: the models handed back run their blocks as before.
                stack.enter_context(gradient_checkpointing(self.task.models))
            return self._train(resume)

    def _train(self, resume: bool) -> TrainOutput:
        self._prepare()
        acc, config = self.accelerator, self.config
        control = TrainerControl()
        if resume:
            latest = self.checkpoints.latest()
            if latest is None:
                raise UserError(f"--resume: no complete checkpoint in {self.checkpoints.root}")
            self._load_checkpoint(latest)
        if acc.is_main_process:
            # Said at the start of training, not on construction: a mistake found while the
            # Trainer is built stays the only line a user sees.
            logger.info("mixed precision: %s, from %s", acc.mixed_precision, self._precision_source)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.checkpoints.cleanup_staging()
        self.logger = (
            MetricsLogger(
                self.output_dir / "metrics.jsonl", resume_step=self.step if resume else None
            )
            if acc.is_main_process
            else None
        )
        if config.report_to:
            start_trackers(acc, config, self.output_dir, self.hyperparameters)
        for callback in self.callbacks:
            callback.on_train_begin(self, control)

        for model in self._training_models.values():
            model.train()
        batches = self._train_batches()
        progress = tqdm(
            total=config.max_steps,
            initial=self.step,
            desc="train",
            disable=not (acc.is_main_process and config.progress_bar),
            dynamic_ncols=True,
        )
        window: dict[str, torch.Tensor] = self._resumed_window if resume else {}
        last_train_loss: float | None = None
        eval_metrics: dict[str, float] = {}
        start_time = time.perf_counter()
        self._throughput = ThroughputMeter(
            self.task.throughput_unit, self.task.flops_per_target(), acc.device.type
        )
        while self.step < config.max_steps and not control.should_stop:
            micro = [next(batches) for _ in range(config.grad_accum_steps)]
            sums = self._optimizer_step(micro)
            for key, value in sums.items():
                window[key] = window[key] + value if key in window else value
            self.step += 1
            progress.update(1)

            logs: dict[str, float] = {}
            if self.step % config.log_every == 0 or self.step == config.max_steps:
                logs = self._reduce_window(window)  # checks the health on the way
                window = {}
                logs["train/lr"] = self._current_lr()
                if self.skipped_steps:
                    logs["train/skipped_steps"] = float(self.skipped_steps)
                logs["train/elapsed_s"] = time.perf_counter() - start_time
                last_train_loss = logs.get("train/loss", last_train_loss)
                self._log(logs)
                if "train/loss" in logs:
                    shown = {"loss": f"{logs['train/loss']:.4f}"}
                    rate = logs.get(f"train/{self.task.throughput_unit}_per_s")
                    if rate is not None:
                        shown[f"{self.task.throughput_unit[:3]}/s"] = f"{rate:,.0f}"
                    progress.set_postfix(shown, refresh=False)
            for callback in self.callbacks:
                callback.on_step_end(self, control, logs)

            at_end = self.step >= config.max_steps
            if (
                control.should_evaluate
                or at_end
                or (config.eval_every and self.step % config.eval_every == 0)
            ) and self.eval_data is not None:
                self._check_health()
                started = time.perf_counter()
                eval_metrics = self.evaluate()
                self._throughput.exclude(time.perf_counter() - started)
                self._log(eval_metrics)
                self._say_evaluation(eval_metrics)
                for callback in self.callbacks:
                    callback.on_evaluate(self, control, eval_metrics)
                control.should_evaluate = False
            if (
                control.should_save
                or at_end
                or control.should_stop
                or (config.save_every and self.step % config.save_every == 0)
            ):
                # The window of unlogged sums goes into the checkpoint, so resume logs the same
                # numbers as an uninterrupted run.
                started = time.perf_counter()
                self.save_checkpoint(window)
                self._throughput.exclude(time.perf_counter() - started)
                control.should_save = False
        progress.close()
        self._check_health()
        # The steps' freed activations would otherwise sit under the plot's and the closing
        # sample's new allocations and set the run's peak memory (seqkit.trainer.heap).
        return_free_heap()

        for callback in self.callbacks:
            callback.on_train_end(self, control)
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.logger.close()
            plot_loss(self.output_dir / "metrics.jsonl", self.output_dir / "loss.png")
        if config.report_to:
            # Not acc.end_training(): it also destroys the process group, after which
            # evaluate(), a second train() or the caller's own barriers fail under several
            # processes. The group belongs to the program, not to one training run.
            for tracker in acc.trackers:
                tracker.finish()
            acc.trackers.clear()
        return TrainOutput(self.step, last_train_loss, eval_metrics)

    def _reduce_window(self, window: dict[str, torch.Tensor]) -> dict[str, float]:
        """Target-weighted means of the metrics summed since the last log, over processes.

        The finiteness check rides along: one flag per optimizer (any non-finite step so far)
        joins the same tensor, so logging reads the device once. Only when a flag is up does
        :meth:`_check_health` read again, for the exact step to name before stopping."""
        if not window:
            self._check_health()
            return {}
        keys = sorted(window)
        flags = [(first != 0).float() for first in self._first_bad_step.values()]
        stacked = torch.stack([window[k].to(self.accelerator.device) for k in keys] + flags)
        if self.accelerator.num_processes > 1:
            stacked = self.accelerator.reduce(stacked, "sum")
        read = stacked.tolist()  # the one read of a logging step
        if any(read[len(keys) :]):
            self._check_health()  # raises TrainingDiverged
        values = dict(zip(keys, read[: len(keys)], strict=True))
        targets = values.pop("_targets")
        logs = {f"train/{k}": v / targets for k, v in values.items()}
        # Targets of every process: the run's throughput, not one process's share.
        return logs | self._throughput.measure(targets)

    def _say_evaluation(self, metrics: Mapping[str, float]) -> None:
        """One line per evaluation during training: ``eval step 200: loss 1.52 · …``.

        Through the library's logger (the CLI shows it on stderr; a program that imports
        seqkit decides), written around the progress bar rather than through it."""
        if not (metrics and self.accelerator.is_main_process and logger.isEnabledFor(logging.INFO)):
            return
        shown = " · ".join(f"{k.removeprefix('eval/')} {v:.4g}" for k, v in metrics.items())
        with tqdm.external_write_mode():
            logger.info("eval step %d: %s", self.step, shown)

    def _current_lr(self) -> float:
        optimizer = next(iter(self.optimizers.values()))
        return float(optimizer.param_groups[0]["lr"])

    def _log(self, metrics: dict[str, float]) -> None:
        if self.logger is not None:
            self.logger.log(self.step, metrics)
        if self.config.report_to:
            self.accelerator.log(metrics, step=self.step)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Stream the evaluation set through ``task.evaluation_step``; returns ``eval/*``."""
        self._prepare()
        if self.eval_data is None:
            return {}
        acc, task = self.accelerator, self.task
        sampler = ShardedEvalSampler(
            len(self.eval_data),
            self.config.eval_batch_size or self.config.batch_size,
            acc.num_processes,
            acc.process_index,
        )
        loader = DataLoader(
            self.eval_data,
            batch_sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.config.num_workers,
            generator=torch.Generator().manual_seed(self.config.seed),  # leave the global RNG be
        )
        # Evaluate the unwrapped modules: shards may differ in length across processes, and a
        # DDP forward on one process only would wait for the others.
        models = task.models
        was_training = {n: m.training for n, m in self._training_models.items()}
        for model in models.values():
            model.eval()
        sums: dict[str, torch.Tensor] = {}
        batches = len(loader)
        if self.config.eval_batches is not None:
            batches = min(batches, self.config.eval_batches)
        progress = tqdm(
            total=batches,
            desc="eval",
            leave=False,
            # Like the training bar, on the main process when trainer.progress_bar; and only on
            # a terminal (None), since a bar that is erased when done only clutters a log file.
            disable=None if acc.is_main_process and self.config.progress_bar else True,
            dynamic_ncols=True,
        )
        try:
            for i, batch in enumerate(loader):
                if self.config.eval_batches is not None and i >= self.config.eval_batches:
                    break
                with acc.autocast():
                    results = task.evaluation_step(models, _to_device(batch, acc.device))
                for key, (total, count) in results.items():
                    pair = torch.stack(
                        [
                            torch.as_tensor(total, dtype=torch.float64, device=acc.device),
                            torch.as_tensor(count, dtype=torch.float64, device=acc.device),
                        ]
                    )
                    sums[key] = sums[key] + pair if key in sums else pair
                progress.update(1)
        finally:
            progress.close()
            for name, model in self._training_models.items():
                model.train(was_training[name])
        keys = sorted(sums)
        if acc.num_processes > 1:
            # Every process must join the reduction with the same keys, even one whose shard
            # was empty (an evaluation set smaller than the process count: one graph, one
            # batch of episodes); otherwise the all-reduce pairs tensors of different shapes
            # and waits forever.
            keys = sorted(set(gather_object(keys)))
            zero = torch.zeros(2, dtype=torch.float64, device=acc.device)
            stacked = (
                torch.stack([sums.get(k, zero) for k in keys]) if keys else zero.new_zeros(0, 2)
            )
            stacked = acc.reduce(stacked, "sum")
            sums = dict(zip(keys, stacked, strict=True))
        metrics = {k: (v[0] / v[1]).item() for k, v in sums.items() if v[1] > 0}
        metrics = task.summarize(metrics)
        return {f"eval/{k}": float(v) for k, v in metrics.items()}

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, window: dict[str, torch.Tensor] | None = None) -> Path:
        """Write the full training state to ``checkpoints/step-N`` atomically."""
        acc = self.accelerator
        acc.wait_for_everyone()
        self._check_health()
        for name, model in self.task.models.items():
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                # Never publish a NaN: the last good checkpoint stays the newest one.
                raise TrainingDiverged(
                    f"model {name!r} has non-finite weights at step {self.step}; not writing "
                    f"a checkpoint (the last good one is {self.checkpoints.latest()})"
                )
        if acc.is_main_process:
            self.checkpoints.staging_dir(self.step)
        acc.wait_for_everyone()
        staging = self.checkpoints.root / f".step-{self.step}.tmp"
        if acc.is_main_process:
            for name, model in self.task.models.items():
                save_module_weights(model, staging / CHECKPOINT_WEIGHTS.format(name=name))
            for name, optimizer in self.optimizers.items():
                save_tree(optimizer.state_dict(), staging, f"optimizer-{name}")
            state = {
                "step": self.step,
                "epoch": self._epoch,
                "batch_in_epoch": self._batch_in_epoch,
                "stream_position": self._stream_position,
                "skipped_steps": self.skipped_steps,
                "schedulers": {n: scheduler_state(s) for n, s in self.schedulers.items()},
                "callbacks": [c.state_dict() for c in self.callbacks],
                "task": self.task.state_dict(),
                "log_window": {k: v.cpu() for k, v in (window or {}).items()},
                "num_processes": acc.num_processes,
            }
            save_tree(state, staging, "trainer_state")
        acc.wait_for_everyone()
        save_tree(capture_rng_state(), staging, f"rng-{acc.process_index}")
        acc.wait_for_everyone()
        final = self.checkpoints.root / f"step-{self.step}"
        if acc.is_main_process:
            final = self.checkpoints.commit(self.step)
            protected = set().union(*(c.protected_checkpoints() for c in self.callbacks))
            self.checkpoints.rotate(protect=protected)
        acc.wait_for_everyone()
        return final

    def _load_checkpoint(self, directory: Path) -> None:
        acc = self.accelerator
        state = load_trainer_state(directory, self.config.max_steps)
        if state["num_processes"] != acc.num_processes:
            raise UserError(
                f"checkpoint {directory} was written by {state['num_processes']} process(es); "
                f"resume it with the same number (now {acc.num_processes})"
            )
        if isinstance(self.train_data, ResumableStream):
            self.train_data.check_position(state.get("stream_position"))
        for name, model in self.task.models.items():
            load_module_weights(model, directory / CHECKPOINT_WEIGHTS.format(name=name))
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(load_tree(directory, f"optimizer-{name}"))
        for name, scheduler in self.schedulers.items():
            load_scheduler_state(scheduler, state["schedulers"][name])
        for callback, callback_state in zip(self.callbacks, state["callbacks"], strict=False):
            callback.load_state_dict(callback_state)
        self.task.load_state_dict(state["task"])
        self.step = state["step"]
        self._epoch = state["epoch"]
        self._batch_in_epoch = state["batch_in_epoch"]
        self._stream_position = state.get("stream_position")
        self.skipped_steps = state.get("skipped_steps", 0)
        self._resumed_window = state["log_window"]
        restore_rng_state(load_tree(directory, f"rng-{acc.process_index}"))

    def restore_weights(self, step: int) -> None:
        """Load the model weights of checkpoint ``step`` (early stopping's best)."""
        directory = self.checkpoints.root / f"step-{step}"
        for name, model in self.task.models.items():
            load_module_weights(model, directory / CHECKPOINT_WEIGHTS.format(name=name))

    def unwrapped_model(self, name: str | None = None) -> nn.Module:
        """The plain module (no DDP wrapper), for saving and generation."""
        if name is None:
            if len(self.task.models) != 1:
                raise ValueError("this task has several models; name one")
            return next(iter(self.task.models.values()))
        return self.task.models[name]
