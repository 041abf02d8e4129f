"""accelerate calls made without importing ``torch.distributed.tensor`` where no DTensor can exist.

accelerate 1.x supports models sharded with DTensors (FSDP2, tensor parallelism), and two of
the calls the Trainer makes find out whether a model is one by importing
``torch.distributed.tensor`` and asking ``isinstance(p, DTensor)`` of its parameters:
``Accelerator.prepare`` (should the model be moved to the device?) and
``Accelerator.clip_grad_norm_`` (which norms belong to which device mesh?). That import costs
25-40 MB of resident memory (depending on what is loaded already), a tenth of a small run's
peak (``gpt/shakespeare-char``, 200 steps: 430 MB with it and torch's compiler, 358 MB
without), and buys nothing where no DTensor exists.

No parameter or gradient can be a DTensor before that module is imported. Until it is, and
outside the distributed types whose own logic accelerate must keep (FSDP, which shards with
DTensors; DeepSpeed and XLA, which handle clipping themselves; Megatron-LM, which refuses an
explicit placement), these functions give accelerate the answer it would have computed. Once
anything imports the module, both defer to accelerate.
"""

from __future__ import annotations

import sys

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

# Where accelerate's own logic must run: it shards (FSDP), clips in its engine (DeepSpeed, XLA)
# or refuses a device placement it did not choose (DeepSpeed, Megatron-LM).
_ACCELERATE_DECIDES = (
    DistributedType.FSDP,
    DistributedType.DEEPSPEED,
    DistributedType.MEGATRON_LM,
    DistributedType.XLA,
)


def _no_dtensor_possible(acc: Accelerator) -> bool:
    return "torch.distributed.tensor" not in sys.modules and acc.distributed_type not in (
        _ACCELERATE_DECIDES
    )


def device_placements(acc: Accelerator, models: int, optimizers: int) -> list[bool | None] | None:
    """The ``device_placement`` list for ``acc.prepare(*models, *optimizers)``, or None to let
    accelerate decide: where no model can hold a DTensor, each model is placed as the
    accelerator's ``device_placement`` setting says, as accelerate would place it."""
    if not _no_dtensor_possible(acc):
        return None
    # An optimizer's None means "as the accelerator's setting says" too.
    return [acc.device_placement] * models + [None] * optimizers


def clip_grad_norm(
    acc: Accelerator, parameters: list[torch.Tensor], max_norm: float
) -> torch.Tensor | None:
    """``acc.clip_grad_norm_(parameters, max_norm)``: the total gradient norm, after scaling
    the gradients down to ``max_norm`` when it is larger. Where no gradient can be a DTensor,
    accelerate's path is gradients unscaled (mixed precision) and then torch's own clipping,
    which is what this runs."""
    if not _no_dtensor_possible(acc):
        return acc.clip_grad_norm_(parameters, max_norm)
    acc.unscale_gradients()
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
