"""The weight initialisation GPT-2, BERT and the open-model decoder share.

GPT-2 (Radford et al. 2019) and BERT (Devlin et al. 2019) draw every matrix and embedding from
N(0, 0.02²) — ``initializer_range`` in their configs — with zero biases and unit LayerNorms;
Llama-style decoders keep the normal draw and replace LayerNorm by RMSNorm (a gain only). Each
model's ``_init_weights`` calls :func:`normal_init` and then adds what is its own (GPT-2's scaled
residual projections, BERT's MLM bias, the decoder's RMSNorm gains and rotary tables).

``transformers``' ``from_pretrained`` marks each tensor it loaded from a checkpoint
(``_is_hf_initialized``) before it initialises the rest, so the functions here leave a marked
tensor alone: a loaded weight is never re-drawn. They need only torch, so a network that trains
without ``transformers`` (:class:`seqkit.models.gpt_network.StandaloneGPT`) is initialised by
the same code, drawing the same numbers from the same seed.
"""

from __future__ import annotations

import torch
from torch import nn


def _loaded(tensor: torch.Tensor) -> bool:
    """Whether ``from_pretrained`` filled ``tensor`` from a checkpoint."""
    return bool(getattr(tensor, "_is_hf_initialized", False))


def normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> None:
    """Draw ``tensor`` from N(mean, std²) in place, unless it was loaded."""
    if not _loaded(tensor):
        nn.init.normal_(tensor, mean=mean, std=std)


def zeros_(tensor: torch.Tensor) -> None:
    """Fill ``tensor`` with zeros in place, unless it was loaded."""
    if not _loaded(tensor):
        nn.init.zeros_(tensor)


def ones_(tensor: torch.Tensor) -> None:
    """Fill ``tensor`` with ones in place, unless it was loaded."""
    if not _loaded(tensor):
        nn.init.ones_(tensor)


def normal_init(module: nn.Module, std: float) -> None:
    """N(0, std²) weights and zero biases for linear layers and embeddings; unit gain and zero
    bias for LayerNorm. Any other module is left alone."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        normal_(module.weight, mean=0.0, std=std)
        if getattr(module, "bias", None) is not None:
            zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        ones_(module.weight)
        zeros_(module.bias)
