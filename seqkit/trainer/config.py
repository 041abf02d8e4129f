"""TrainerConfig: every knob of the training loop, one documented field each.

The `trainer` section of a recipe is validated into this dataclass, so the docstring under each
field is also the reference for recipe authors.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass, field

from seqkit.checks import (
    MAX_BATCH,
    MAX_SEED,
    MAX_STEPS,
    check_choice,
    check_range,
    check_ranges,
    count,
    non_negative,
    positive,
    probability,
    show,
)
from seqkit.errors import UserError

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop", "adagrad")
"""Values of ``optimizer``."""
SCHEDULES = ("constant", "linear", "cosine", "step", "cyclic", "cosine_restarts", "inverse_sqrt")
"""Values of ``schedule`` (see :mod:`seqkit.trainer.schedules`)."""
USES_MIN_LR = ("linear", "cosine", "cyclic", "cosine_restarts")
"""Schedules that go down to (or cycle through) ``min_lr``."""
MIXED_PRECISION = ("no", "bf16", "fp16")
"""Values of ``mixed_precision``."""
ACCELERATE_MIXED_PRECISION = "ACCELERATE_MIXED_PRECISION"
"""The variable through which ``accelerate launch`` hands its precision (from
``--mixed_precision`` or the ``accelerate config`` file) to each process it starts."""
NAN_POLICIES = ("stop", "skip")
"""Values of ``nan_policy``."""
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "trackio": ("trackio",),
    "comet_ml": ("comet_ml",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "clearml": ("clearml",),
    "dvclive": ("dvclive",),
    "swanlab": ("swanlab",),
    "aim": ("aim",),
}
"""The trackers accelerate 1.x knows (``accelerate.utils.LoggerType`` without ``all``), each
with the distributions that provide it (any one will do)."""
_MODULE_OF = {"mlflow-skinny": "mlflow"}
"""The module a tracker distribution installs, where its name differs."""
PROJECT_PATTERN = re.compile(r"[A-Za-z0-9_.\- ]{1,128}")
"""What ``project`` may hold: characters every tracker accepts in a project name (wandb refuses
``/ \\ # ? % :``; TensorBoard and MLflow take any)."""
MAX_WORKERS = 256
"""Most DataLoader worker processes (each is a whole Python process)."""


@dataclass
class TrainerConfig:
    """Settings of :class:`seqkit.trainer.Trainer`."""

    max_steps: int = 1000
    """Number of optimizer steps to train for."""
    batch_size: int = 32
    """Examples per micro-batch on each process."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated into one optimizer step. The Trainer accumulates itself
    (weighting micro-batches by targets), so ``accelerate launch --gradient_accumulation_steps``,
    which only DeepSpeed reads, does not apply: set it here."""
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
    mixed_precision: str | None = None
    """One of no, bf16, fp16; null (the default) = what accelerate was told (``accelerate
    launch --mixed_precision``, the ``accelerate config`` file), else no. A value here wins."""
    gradient_checkpointing: bool = False
    """Recompute each Transformer block's activations in the backward pass instead of keeping
    them (GPT, BERT, decoder and Transformer models): less memory for about one more forward
    pass per step; the weights, checkpoints and exported model are the same as without."""
    compile: bool = False
    """``torch.compile`` the model for the training steps (evaluation and generation run it
    uncompiled). The first step pays the compilation (measured on a 2-core CPU for a small GPT:
    about 2 minutes with an empty inductor cache, 10 s with a warm one), and a batch of a new
    shape compiles again; checkpoints and the exported model are the same as without."""
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
    """Keep only the newest this many checkpoints (the best one is always kept); 0 = keep all."""
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
    """accelerate trackers to log to (tensorboard, wandb, trackio, ...); metrics.jsonl always.
    TensorBoard writes into the run's ``tensorboard/`` folder; every tracker records this config
    as the run's hyperparameters."""
    project: str = "seqkit"
    """The experiment trackers file the run under (the wandb, trackio, comet_ml and swanlab
    project, MLflow's experiment, ClearML's project); the run is named after its folder."""
    progress_bar: bool = True
    """Show a tqdm progress bar on the main process."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse any value the loop cannot follow, naming the field and its valid range.

        Runs on construction; the Trainer runs it again, for a config changed after that.
        """
        check_ranges(
            "trainer",
            self,
            {
                "max_steps": count(1, MAX_STEPS),
                "batch_size": count(1, MAX_BATCH),
                "grad_accum_steps": count(1, MAX_BATCH),
                "lr": positive(),
                "seed": count(0, MAX_SEED),
                "weight_decay": non_negative(),
                "l1": non_negative(),
                "eps": positive(),
                "momentum": probability(),
                "warmup_steps": count(0, MAX_STEPS),
                "min_lr": non_negative(),
                "decay_steps": count(1, MAX_STEPS),
                "step_size": count(1, MAX_STEPS),
                "gamma": {"low": 0, "high": 1, "low_open": True},
                "cycle_steps": count(1, MAX_STEPS),
                "restart_steps": count(1, MAX_STEPS),
                "restart_mult": count(1, 1000),
                "max_grad_norm": positive(),
                "eval_every": count(0, MAX_STEPS),
                "eval_batches": count(1, MAX_STEPS),
                "eval_batch_size": count(1, MAX_BATCH),
                "save_every": count(0, MAX_STEPS),
                "keep_last": count(0, 10_000),
                "log_every": count(1, MAX_STEPS),
                "early_stopping_patience": count(1, MAX_STEPS),
                "num_workers": count(0, MAX_WORKERS),
            },
        )
        for name in ("gradient_checkpointing", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(
                    f"trainer.{name} must be true or false, got {show(getattr(self, name))}"
                )
        if len(self.betas) != 2:
            raise UserError(f"trainer.betas must be a list of 2 numbers, got {list(self.betas)}")
        for i, beta in enumerate(self.betas):
            check_range(f"trainer.betas[{i}]", beta, **probability())
        # Optimizer names are case-blind (AdamW reads as adamw), as build_optimizer reads them.
        check_choice(
            "trainer.optimizer",
            self.optimizer.lower() if isinstance(self.optimizer, str) else self.optimizer,
            OPTIMIZERS,
        )
        check_choice("trainer.schedule", self.schedule, SCHEDULES)
        if self.mixed_precision is not None:
            check_choice("trainer.mixed_precision", self.mixed_precision, MIXED_PRECISION)
        check_choice("trainer.nan_policy", self.nan_policy, NAN_POLICIES)
        check_choice("trainer.early_stopping_mode", self.early_stopping_mode, ("min", "max"))
        if not (
            isinstance(self.early_stopping_metric, str)
            and self.early_stopping_metric.startswith("eval/")
            and len(self.early_stopping_metric) > len("eval/")
        ):
            raise UserError(
                "trainer.early_stopping_metric must name an evaluation metric such as "
                f"eval/loss, got {show(self.early_stopping_metric)}"
            )
        _check_trackers(self.report_to)
        if not (isinstance(self.project, str) and PROJECT_PATTERN.fullmatch(self.project)):
            raise UserError(
                "trainer.project must be 1-128 letters, digits, spaces or - _ . (a name every "
                f"tracker accepts), got {show(self.project)}"
            )
        # decay_steps left at its default (max_steps) is not checked: a smoke test that cuts
        # max_steps below warm-up is legitimate and simply never leaves the warm-up.
        if self.decay_steps is not None and self.decay_steps < self.warmup_steps:
            raise UserError(
                f"trainer.decay_steps ({self.decay_steps}) must be >= trainer.warmup_steps "
                f"({self.warmup_steps}): decay starts after warm-up"
            )

    def resolved_mixed_precision(self) -> tuple[str, str]:
        """``(precision, where it came from)``: the recipe's value when it sets one, else
        accelerate's (as ``accelerate launch`` passes it), else ``no``.

        accelerate's own rule is the other way round (an explicit ``Accelerator`` argument
        beats the launcher), so the Trainer resolves the precision and passes it explicitly.
        """
        if self.mixed_precision is not None:
            return self.mixed_precision, "trainer.mixed_precision"
        launched = os.environ.get(ACCELERATE_MIXED_PRECISION)
        if launched is None:
            return "no", "the default (neither the recipe nor accelerate set one)"
        if launched.lower() not in MIXED_PRECISION:
            raise UserError(
                f"{ACCELERATE_MIXED_PRECISION} is {show(launched)} (from accelerate launch or "
                f"accelerate config); seqkit trains in {', '.join(MIXED_PRECISION)}: launch "
                "with another --mixed_precision, or set trainer.mixed_precision"
            )
        return launched.lower(), f"accelerate ({ACCELERATE_MIXED_PRECISION})"


def _check_trackers(report_to: list[str]) -> None:
    """Every name in ``trainer.report_to`` must be a tracker accelerate knows, installed."""
    for i, name in enumerate(report_to):
        check_choice(f"trainer.report_to[{i}]", name, TRACKERS)
        if not any(_installed(distribution) for distribution in TRACKERS[name]):
            raise UserError(
                f"trainer.report_to: the {name} tracker needs the {TRACKERS[name][0]} package, "
                f"which is not installed (pip install {TRACKERS[name][0]}, or drop {name})"
            )


def _installed(distribution: str) -> bool:
    """Whether ``distribution`` is installed, judged as accelerate judges it: its module is
    importable *and* the package is registered. A folder named like the module (the ``wandb/``
    that wandb leaves in the working directory) is importable too, but accelerate would then
    drop the tracker without a word and the run would log nowhere."""
    if importlib.util.find_spec(_MODULE_OF.get(distribution, distribution)) is None:
        return False
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
