"""Optimizers: parameter groups with and without weight decay, and the optimizers themselves.

Weight decay is applied only to the weights of matmul-like layers (Linear, convolutions, the
recurrent matrices of an LSTM). Biases, normalization parameters and embeddings are left alone:
decaying a LayerNorm gain towards zero or shrinking rare tokens' embeddings fights the model
rather than regularizing it (the split nanoGPT and BERT use).

References:
    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW): the decay
    is applied to the weights directly instead of being added to the gradient, so Adam's
    per-parameter scaling does not weaken it. ``adam`` keeps the classic L2 form for comparison.
    Sutskever et al., "On the importance of initialization and momentum in deep learning",
    ICML 2013 (Nesterov momentum for SGD).

Speed (measured on a 2-core CPU, ~10M parameters, torch 2.13): the ``fused`` kernels are 4-6x
faster than both the per-tensor loop and ``foreach`` for AdamW, Adam, SGD and Adagrad, and agree
with them to float32 rounding (~2e-7 after 20 steps), so they are used wherever torch accepts
them. RMSprop has no fused kernel; its ``foreach`` path is ~4x faster than the loop.

Memory: each optimizer is torch's own class with the same update and the same ``state_dict``,
built without importing ``torch._dynamo`` (:class:`WithoutCompilerImport`), which torch.optim
otherwise loads on first use: 71 MB of resident memory and about 1 s, in a run that compiles
nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from seqkit.errors import UserError
from seqkit.trainer.config import OPTIMIZERS, TrainerConfig

# Module types whose parameters never take weight decay. Norm layers written from scratch in
# seqkit have only 1-D parameters, which the 1-D rule below already catches.
NO_DECAY_MODULES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LazyBatchNorm1d,
    nn.LazyBatchNorm2d,
    nn.LazyBatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.Embedding,
    nn.EmbeddingBag,
)


def _classified_parameters(model: nn.Module) -> Iterator[tuple[nn.Parameter, bool]]:
    """Yield each trainable parameter once, with ``True`` when it takes weight decay.

    A parameter shared by several modules (an embedding tied to the output head) is seen once
    per owner; it takes decay only if every owner says so, so the embedding's no-decay wins.
    """
    decay: dict[int, bool] = {}
    params: dict[int, nn.Parameter] = {}  # insertion order = first appearance, deterministic
    for module in model.modules():
        no_decay_module = isinstance(module, NO_DECAY_MODULES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            takes_decay = not no_decay_module and param.ndim >= 2 and not name.endswith("bias")
            key = id(param)
            params.setdefault(key, param)
            decay[key] = decay.get(key, True) and takes_decay
    for key, param in params.items():
        yield param, decay[key]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split the trainable parameters of ``model`` into a ``decay`` and a ``no_decay`` group.

    Each group is a dict for a ``torch.optim`` constructor, with a ``name`` key for logging.
    Empty groups are left out; frozen parameters (``requires_grad=False``) are not included.
    """
    decay, no_decay = [], []
    for param, takes_decay in _classified_parameters(model):
        (decay if takes_decay else no_decay).append(param)
    groups = [
        {"name": "decay", "params": decay, "weight_decay": weight_decay},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


class WithoutCompilerImport:
    """Mixin for a ``torch.optim`` class: the same methods, minus their import of torch's compiler.

    torch.optim decorates ``add_param_group``, ``zero_grad``, ``state_dict`` and
    ``load_state_dict`` with ``torch._disable_dynamo`` and every ``step`` with
    ``_use_grad_for_differentiable``, so that ``torch.compile`` does not trace into them. Both
    decorators import ``torch._dynamo`` on their first call, whether or not anything is
    compiled: 71 MB of resident memory (sympy, FX, the inductor config) and about 1.1 s on this
    project's machine, a sixth of a ``gpt/shakespeare-char`` run's peak. Training never calls an
    optimizer inside a compiled region (``trainer.compile`` compiles the model's forward only),
    so this mixin calls the undecorated functions instead, with the grad mode the step decorator
    would have set. The arithmetic, the ``state_dict`` layout and the step hooks
    (``register_step_pre_hook``, the LR schedulers' step counting) are torch's own; a test
    checks the updates bit for bit against the decorated class.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The torch class's step without its wrappers (the grad-mode decorator, and the profiling
        # hook torch adds to a class's step when its first instance is built), found once per
        # class rather than on every step. This class's own step gets that hook, so step hooks
        # still run once.
        cls._torch_step = staticmethod(inspect.unwrap(super().step))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _LOAD_STATE_DICT(self, state_dict)

    def step(self, closure: Any = None) -> Any:
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return self._torch_step(self, closure)


# torch.optim.Optimizer's methods under their compiler decorators (``inspect.unwrap`` follows
# ``functools.wraps``; a method without a decorator is returned as it is).
_ADD_PARAM_GROUP = inspect.unwrap(torch.optim.Optimizer.add_param_group)
_ZERO_GRAD = inspect.unwrap(torch.optim.Optimizer.zero_grad)
_STATE_DICT = inspect.unwrap(torch.optim.Optimizer.state_dict)
_LOAD_STATE_DICT = inspect.unwrap(torch.optim.Optimizer.load_state_dict)


# torch's optimizers with the mixin: named classes (not made on the fly) so that an optimizer
# pickles, and ``isinstance(optimizer, torch.optim.AdamW)`` still holds.


class AdamW(WithoutCompilerImport, torch.optim.AdamW):
    """``torch.optim.AdamW`` without importing the compiler (:class:`WithoutCompilerImport`)."""


class Adam(WithoutCompilerImport, torch.optim.Adam):
    """``torch.optim.Adam`` without importing the compiler (:class:`WithoutCompilerImport`)."""


class SGD(WithoutCompilerImport, torch.optim.SGD):
    """``torch.optim.SGD`` without importing the compiler (:class:`WithoutCompilerImport`)."""


class RMSprop(WithoutCompilerImport, torch.optim.RMSprop):
    """``torch.optim.RMSprop`` without importing the compiler (:class:`WithoutCompilerImport`)."""


class Adagrad(WithoutCompilerImport, torch.optim.Adagrad):
    """``torch.optim.Adagrad`` without importing the compiler (:class:`WithoutCompilerImport`)."""


WITHOUT_COMPILER_IMPORT: dict[type[torch.optim.Optimizer], type[torch.optim.Optimizer]] = {
    torch.optim.AdamW: AdamW,
    torch.optim.Adam: Adam,
    torch.optim.SGD: SGD,
    torch.optim.RMSprop: RMSprop,
    torch.optim.Adagrad: Adagrad,
}
"""torch's optimizer class → the same class without the compiler import."""


def build_optimizer(
    model: nn.Module, config: TrainerConfig, lr: float | None = None
) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over :func:`parameter_groups` of ``model``.

    ``lr`` overrides ``config.lr`` for tasks with several optimizers (a GAN's generator and
    discriminator). The Trainer's schedule later rescales each group's ``lr`` from this value.
    """
    name = config.optimizer.lower()
    if name not in OPTIMIZERS:
        raise UserError(
            f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    groups = parameter_groups(model, config.weight_decay)
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimize")
    lr = config.lr if lr is None else lr

    if name == "adamw":
        # Decoupled decay: p <- p - lr * wd * p, independent of the adaptive scaling.
        return _with_fast_kernel(
            torch.optim.AdamW, groups, lr=lr, betas=tuple(config.betas), eps=config.eps
        )
    if name == "adam":
        # Classic L2: wd * p is added to the gradient, then scaled like the gradient.
        return _with_fast_kernel(
            torch.optim.Adam, groups, lr=lr, betas=tuple(config.betas), eps=config.eps
        )
    if name == "sgd":
        if config.nesterov and config.momentum <= 0:
            raise UserError("trainer.nesterov needs trainer.momentum > 0")
        return _with_fast_kernel(
            torch.optim.SGD, groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov
        )
    if name == "rmsprop":
        # No fused RMSprop in torch; foreach was measured ~4x faster than the loop on CPU.
        return WITHOUT_COMPILER_IMPORT[torch.optim.RMSprop](
            groups, lr=lr, momentum=config.momentum, eps=config.eps, foreach=True
        )
    return _with_fast_kernel(torch.optim.Adagrad, groups, lr=lr, eps=config.eps)


def _with_fast_kernel(
    optimizer_class: type[torch.optim.Optimizer], groups: list[dict[str, Any]], **kwargs: Any
) -> torch.optim.Optimizer:
    """Build with ``fused=True``; fall back to torch's default where fused is not supported.

    torch rejects ``fused`` at construction for devices or dtypes without a fused kernel, so
    the fallback happens here, never in the middle of training.
    """
    optimizer_class = WITHOUT_COMPILER_IMPORT[optimizer_class]
    try:
        return optimizer_class(groups, fused=True, **kwargs)
    except (RuntimeError, ValueError):
        return optimizer_class(groups, **kwargs)


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of ``|w|`` over the parameters that take weight decay (a 0-d tensor).

    The Trainer adds ``config.l1 * l1_penalty(model)`` to the loss; biases, norms and
    embeddings are spared for the same reasons as with weight decay.
    """
    weights = [param for param, takes_decay in _classified_parameters(model) if takes_decay]
    if not weights:
        reference = next(model.parameters(), None)
        device = reference.device if reference is not None else None
        return torch.zeros((), device=device)
    # Python's sum rather than torch.stack: parameters may differ in dtype (mixed precision).
    return sum(weight.abs().sum() for weight in weights)
