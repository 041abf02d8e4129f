"""Learning-rate schedules as pure functions of the optimizer-step count.

:func:`lr_multiplier` gives the factor on the peak learning rate for the optimizer step that is
about to run, ``step`` being the number of optimizer steps already taken (0 for the first).
:func:`build_scheduler` wraps it in ``torch.optim.lr_scheduler.LambdaLR``, stepped once per
optimizer step, so ``group["lr"] = base_lr * lr_multiplier(step)``.

Warm-up (every schedule): for ``step < warmup_steps`` the factor is
``(step + 1) / (warmup_steps + 1)``, as in nanoGPT: the first step already moves the weights
(a factor of 0 would waste it) and the ramp reaches exactly 1 at ``step == warmup_steps``, where
the schedule proper begins. The schedules count their own time ``t = step - warmup_steps``.

Schedules:
    constant         1 after warm-up.
    linear, cosine   from 1 down to ``min_lr / lr`` at ``step == decay_steps`` (counted from
                     step 0, warm-up included, like nanoGPT's ``lr_decay_iters``; default
                     ``max_steps``), then flat.
    step             ``gamma ** (t // step_size)``.
    cyclic           the triangular policy of Smith, "Cyclical Learning Rates for Training
                     Neural Networks", WACV 2017: linear between ``min_lr`` and ``lr`` with
                     period ``cycle_steps``, starting at ``min_lr``. After a warm-up the cycle
                     starts at its peak instead, so the LR does not drop from ``lr`` to
                     ``min_lr`` at the end of the warm-up.
    cosine_restarts  SGDR (Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
                     Restarts", ICLR 2017): cosine from ``lr`` to ``min_lr`` over a period of
                     ``restart_steps``, then a restart at ``lr``; each period is
                     ``restart_mult`` times longer than the one before.
    inverse_sqrt     the Transformer's schedule (Vaswani et al., "Attention Is All You Need",
                     2017, section 5.3): after warm-up, ``sqrt(warmup_steps / step)``, i.e.
                     decay proportional to the inverse square root of the step number (with no
                     warm-up, ``1 / sqrt(step)`` from step 1).

``min_lr`` is an absolute learning rate. It becomes the factor ``min_lr / base_lr`` of each
parameter group, so a task whose optimizers use different learning rates (a GAN) still decays
each of them to the same ``min_lr``.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from seqkit.errors import UserError
from seqkit.trainer.config import SCHEDULES as SCHEDULES  # re-exported: the names live there
from seqkit.trainer.config import USES_MIN_LR, TrainerConfig


def check_schedule(config: TrainerConfig, base_lr: float | None = None) -> None:
    """Raise :class:`UserError` for settings no schedule can follow together.

    The fields are checked by :meth:`TrainerConfig.validate`; this is the check against
    ``base_lr``, a task's own learning rate for one optimizer (a GAN's two).
    """
    base_lr = config.lr if base_lr is None else base_lr
    if config.schedule in USES_MIN_LR and not 0 <= config.min_lr <= base_lr:
        raise UserError(
            f"trainer.min_lr ({config.min_lr}) must lie between 0 and the learning rate ({base_lr})"
        )


def lr_multiplier(step: int, config: TrainerConfig, base_lr: float | None = None) -> float:
    """Factor on ``base_lr`` (default ``config.lr``) for the optimizer step after ``step`` steps.

    Pure: the same arguments always give the same factor, which is what makes resume exact.
    """
    check_schedule(config, base_lr)
    return _multiplier(step, config, config.lr if base_lr is None else base_lr)


def _multiplier(step: int, config: TrainerConfig, base_lr: float) -> float:
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / (warmup + 1)
    t = step - warmup
    low = config.min_lr / base_lr if base_lr > 0 else 0.0
    schedule = config.schedule

    if schedule == "constant":
        return 1.0
    if schedule in ("linear", "cosine"):
        end = config.max_steps if config.decay_steps is None else config.decay_steps
        span = end - warmup
        progress = 1.0 if span <= 0 else min(t / span, 1.0)
        if schedule == "linear":
            return 1.0 - progress * (1.0 - low)
        return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return config.gamma ** (t // config.step_size)
    if schedule == "inverse_sqrt":
        # 1 at step == warmup (where the warm-up ramp ends), then ∝ step^-½.
        return math.sqrt(max(warmup, 1) / max(step, 1))
    if schedule == "cyclic":
        period = config.cycle_steps
        # After a warm-up, start half a cycle in: at the peak the warm-up just reached.
        shifted = t + period / 2 if warmup > 0 else t
        position = (shifted % period) / period  # 0 -> 1 over one cycle
        height = 1.0 - abs(2.0 * position - 1.0)  # triangle: 0 -> 1 -> 0
        return low + (1.0 - low) * height
    # cosine_restarts: find the period that contains t. Periods grow geometrically, so the loop
    # runs O(log t) times; with restart_mult == 1 they are all equal and a modulo suffices.
    period = config.restart_steps
    if config.restart_mult == 1:
        t %= period
    else:
        while t >= period:
            t -= period
            period *= config.restart_mult
    return low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * t / period))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainerConfig) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_multiplier` to each parameter group.

    Each group's own starting ``lr`` is its base, so ``min_lr`` stays absolute. The lambdas are
    ``functools.partial`` objects of a module-level function: their ``__dict__`` is empty, so
    ``state_dict`` stays free of anything that would need pickling.
    """
    lambdas = []
    for group in optimizer.param_groups:
        # initial_lr is set by a scheduler built earlier on this optimizer; lr otherwise.
        base_lr = group.get("initial_lr", group["lr"])
        check_schedule(config, base_lr)
        lambdas.append(functools.partial(_multiplier, config=config, base_lr=base_lr))
    return LambdaLR(optimizer, lambdas)


def scheduler_state(scheduler: LambdaLR) -> dict[str, Any]:
    """The scheduler's state as plain JSON-able values (no lambdas, no tensors)."""
    state = {key: value for key, value in scheduler.state_dict().items() if key != "lr_lambdas"}
    state = json.loads(json.dumps(state))  # fails loudly if torch ever adds a non-JSON field
    return state


def load_scheduler_state(scheduler: LambdaLR, state: dict[str, Any]) -> None:
    """Restore what :func:`scheduler_state` captured; the lambdas come from the config."""
    scheduler.load_state_dict({**state, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
