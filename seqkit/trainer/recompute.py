"""Gradient (activation) checkpointing: trade compute for memory in a Transformer's blocks.

Training keeps every intermediate activation of the forward pass for the backward pass, so
activation memory grows with depth × batch × sequence length. With checkpointing, each block
keeps only its input; its insides are computed a second time during the backward pass (Chen et
al. 2016, "Training Deep Nets with Sublinear Memory Cost"): about one more forward per step, for
activations that scale with the number of blocks instead of with every operation in them.

The blocks are found generically, as ``transformers`` and ``accelerate`` find the units they
never split: the class names a model lists in ``_no_split_modules`` (GPT's ``Block``, BERT's
``BertLayer``, the decoder's ``DecoderBlock``, the Transformer's encoder and decoder layers).
Each such block's ``forward`` is replaced, on the instance and only while training, by one that
runs it under :func:`torch.utils.checkpoint.checkpoint` (the non-reentrant form, which accepts
keyword arguments and non-tensor outputs, and restores the RNG state so dropout draws the same
masks when recomputing). Nothing is renamed or re-wrapped, so parameter names, state-dict keys,
checkpoints and exported models are exactly those of a run without it; evaluation and generation
(no gradients) call the block's own ``forward`` directly.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from seqkit.errors import UserError

_MARK = "_seqkit_recomputed"
"""Attribute set on a block whose ``forward`` this module replaced (so it is never wrapped
twice, and the original is what is restored)."""


def checkpointable_blocks(model: nn.Module) -> list[nn.Module]:
    """The submodules of ``model`` whose class it names in ``_no_split_modules``."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    return [m for m in model.modules() if m is not model and type(m).__name__ in names]


def _recomputing(block: nn.Module, forward: Callable[..., Any]) -> Callable[..., Any]:
    """``forward``, run under checkpointing when the block trains with gradients."""

    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        if block.training and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    return run


def blocks_to_recompute(models: Mapping[str, nn.Module]) -> list[nn.Module]:
    """The checkpointable blocks of all ``models``; a :class:`UserError` naming
    ``trainer.gradient_checkpointing`` when there is none (the setting would silently change
    nothing)."""
    blocks = [b for model in models.values() for b in checkpointable_blocks(model)]
    if not blocks:
        kinds = " and ".join(sorted({type(m).__name__ for m in models.values()}))
        raise UserError(
            f"trainer.gradient_checkpointing: {kinds} has no Transformer blocks to recompute "
            "(GPT, BERT, decoder and Transformer models have them); set it to false"
        )
    return blocks


@contextlib.contextmanager
def gradient_checkpointing(models: Mapping[str, nn.Module]) -> Iterator[int]:
    """Recompute the Transformer blocks of ``models`` in the backward pass while inside.

    Yields the number of blocks wrapped; on leaving, every block has its own ``forward`` back.
    """
    blocks = blocks_to_recompute(models)
    wrapped = []
    try:
        for block in blocks:
            if getattr(block, _MARK, False):
                continue
            own = "forward" in block.__dict__  # an instance-level forward to put back later
            previous = block.__dict__.get("forward")
            block.forward = _recomputing(block, block.forward)
            setattr(block, _MARK, True)
            wrapped.append((block, own, previous))
        yield len(blocks)
    finally:
        for block, own, previous in wrapped:
            if own:
                block.forward = previous
            else:
                del block.forward
            delattr(block, _MARK)
