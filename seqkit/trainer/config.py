"""TrainerConfig: every knob of the training loop, one documented field each.

The `trainer` section of a recipe is validated into this dataclass, so the docstring under each
field is also the reference for recipe authors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainerConfig:
    """Settings of :class:`seqkit.trainer.Trainer`."""

    max_steps: int = 1000
    """Number of optimizer steps to train for."""
    batch_size: int = 32
    """Examples per micro-batch on each process."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated into one optimizer step."""
    lr: float = 1e-3
    """Peak learning rate (reached after warm-up)."""
    seed: int = 0
    """Seed for weights, data order, dropout and sampling."""

    optimizer: str = "adamw"
    """One of adamw, adam, sgd, rmsprop, adagrad."""
    weight_decay: float = 0.0
    """L2 / decoupled weight decay; never applied to biases, norms or embeddings."""
    l1: float = 0.0
    """Coefficient of an L1 penalty on the same weights that take weight decay (0 = off)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam/AdamW moment coefficients."""
    eps: float = 1e-8
    """Adam/AdamW/RMSprop/Adagrad denominator epsilon."""
    momentum: float = 0.9
    """SGD and RMSprop momentum."""
    nesterov: bool = False
    """Use Nesterov momentum with SGD."""

    schedule: str = "constant"
    """One of constant, linear, cosine, step, cyclic, cosine_restarts, inverse_sqrt."""
    warmup_steps: int = 0
    """Linear warm-up from 0 to `lr` over this many optimizer steps (all schedules)."""
    min_lr: float = 0.0
    """Floor of linear/cosine decay and the low end of the cyclic schedule."""
    decay_steps: int | None = None
    """Steps over which linear/cosine decay to `min_lr`; default `max_steps`."""
    step_size: int = 1000
    """Step schedule: multiply the LR by `gamma` every `step_size` steps."""
    gamma: float = 0.1
    """Step schedule: decay factor."""
    cycle_steps: int = 1000
    """Cyclic schedule: steps in one full triangle (min_lr -> lr -> min_lr)."""
    restart_steps: int = 1000
    """Cosine with warm restarts: length of the first period."""
    restart_mult: int = 1
    """Cosine with warm restarts: factor by which each period grows."""

    max_grad_norm: float | None = 1.0
    """Clip the global gradient norm to this value (null = no clipping)."""
    mixed_precision: str = "no"
    """One of no, bf16, fp16 (passed to accelerate)."""
    nan_policy: str = "stop"
    """What a NaN or infinite loss or gradient norm does: stop (name the step, keep the last
    good checkpoint) or skip (leave the weights unchanged for that step and count it)."""

    eval_every: int = 200
    """Evaluate every this many optimizer steps (and at the end); 0 = only at the end."""
    eval_batches: int | None = None
    """Limit evaluation to this many batches (null = the whole evaluation set)."""
    eval_batch_size: int | None = None
    """Micro-batch size for evaluation; default `batch_size`."""
    save_every: int = 500
    """Write a checkpoint every this many optimizer steps (and at the end); 0 = only at the end."""
    keep_last: int = 3
    """Keep only the newest this many checkpoints (the best one is always kept)."""
    log_every: int = 10
    """Log training metrics every this many optimizer steps."""

    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement and restore the best weights."""
    early_stopping_metric: str = "eval/loss"
    """Metric watched by early stopping."""
    early_stopping_mode: str = "min"
    """min or max: whether a smaller or larger metric is better."""

    num_workers: int = 0
    """DataLoader worker processes."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """accelerate trackers to log to (tensorboard, wandb, trackio, ...); metrics.jsonl always."""
    progress_bar: bool = True
    """Show a tqdm progress bar on the main process."""
