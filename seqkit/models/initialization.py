"""The weight initialisation GPT-2, BERT and the open-model decoder share.

GPT-2 (Radford et al. 2019) and BERT (Devlin et al. 2019) draw every matrix and embedding from
N(0, 0.02²) — ``initializer_range`` in their configs — with zero biases and unit LayerNorms;
Llama-style decoders keep the normal draw and replace LayerNorm by RMSNorm (a gain only). Each
model's ``_init_weights`` calls :func:`normal_init` and then adds what is its own (GPT-2's scaled
residual projections, BERT's MLM bias, the decoder's RMSNorm gains and rotary tables).

The functions are ``transformers.initialization``'s, which skip tensors loaded from a checkpoint,
so ``from_pretrained`` never re-draws a loaded weight.
"""

from __future__ import annotations

from torch import nn
from transformers import initialization as init


def normal_init(module: nn.Module, std: float) -> None:
    """N(0, std²) weights and zero biases for linear layers and embeddings; unit gain and zero
    bias for LayerNorm. Any other module is left alone."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        init.normal_(module.weight, mean=0.0, std=std)
        if getattr(module, "bias", None) is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)
