"""What seqkit's decoder-only Transformer language models share: the loss and the recipe.

GPT (:mod:`seqkit.models.gpt_network`) and the open-model decoder (:mod:`seqkit.models.decoder`)
differ in their layers, not in their contract with the rest of the toolkit: the same arguments,
the same ``labels`` convention and loss (:func:`next_token_loss`), the same cache in and out. As
``transformers`` models they share one ``forward``
(:class:`seqkit.models.hub_generation.KeyValueCausalLM`); each model file writes only what is its
own, the way its hidden states are computed, so the file still reads as the architecture from
embeddings to final norm. Their recipes' ``model`` sections likewise share the sizes every
decoder-only Transformer has (:class:`DecoderOnlyBuilder`). Nothing here imports
``transformers``: a GPT run trains without it (:class:`seqkit.models.gpt_network.StandaloneGPT`).

``labels`` convention (it differs from ``transformers``' GPT-2 and Llama): labels are the
next-token targets *already aligned* with the inputs — ``labels[:, t]`` is the token that should
follow ``input_ids[:, t]``, and -100 marks a position to ignore. The model shifts nothing; this
is nanoGPT's ``targets``. ``transformers``' causal LMs instead take labels equal to the inputs
and shift them internally. The loss is the mean cross-entropy over the targets that are not -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from seqkit import checks
from seqkit.errors import UserError
from seqkit.models.attention import ATTENTION_PATHS
from seqkit.parts.base import ModelBuilder, same_names


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, T, V) ``logits`` against aligned (B, T) ``labels``, skipping
    -100. Flattening to (B*T, V) is a view of the logits, no copy."""
    return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)


@dataclass
class DecoderOnlyBuilder(ModelBuilder):
    """The fields of a decoder-only Transformer's ``model`` section that every such architecture
    has, checked once; a subclass adds its own and builds its config from
    :meth:`common_config`."""

    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention (query) heads per block; must divide n_embd."""
    n_embd: int = 128
    """Width of the residual stream."""
    block_size: int = 64
    """Context length in tokens."""
    dropout: float = 0.0
    """Dropout rate (where the architecture applies it: see its config)."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the readable path, proven equal by a test)."""

    shape_fields: ClassVar[dict[str, str]] = {
        **same_names("n_layer", "n_head", "n_embd"),
        "n_positions": "block_size",
    }

    def __post_init__(self) -> None:
        checks.check_ranges(
            "model",
            self,
            {
                "n_layer": checks.count(1, checks.MAX_DEPTH),
                "n_head": checks.count(1, checks.MAX_DEPTH),
                "n_embd": checks.count(1, checks.MAX_WIDTH),
                "block_size": checks.count(1, checks.MAX_POSITIONS),
                "dropout": checks.probability(),
            },
        )
        checks.check_choice("model.attention", self.attention, ATTENTION_PATHS)
        if self.n_embd % self.n_head:
            raise UserError(
                f"model.n_embd ({self.n_embd}) must be divisible by model.n_head ({self.n_head})"
            )

    def common_config(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The config fields every decoder-only model takes from these settings and the data."""
        return {
            "vocab_size": facts["vocab_size"],
            "n_positions": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "attention": self.attention,
        }

    def runtime_settings(self) -> dict[str, Any]:
        return {"attention": self.attention}
