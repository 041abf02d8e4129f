"""What seqkit's decoder-only Transformer language models share: ``forward`` and the recipe.

GPT (:mod:`seqkit.models.gpt`) and the open-model decoder (:mod:`seqkit.models.decoder`) differ
in their layers, not in their contract with the rest of the toolkit: the same arguments, the
same ``labels`` convention, the same cache in and out, the same output. That contract is written
once here, in :class:`KeyValueCausalLM`; each model file writes only what is its own, the way its
hidden states are computed (:meth:`KeyValueCausalLM.decode`), so the file still reads as the
architecture from embeddings to final norm. Their recipes' ``model`` sections likewise share
the sizes every decoder-only Transformer has (:class:`DecoderOnlyBuilder`).

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
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast

from seqkit import checks
from seqkit.errors import UserError
from seqkit.models.attention import ATTENTION_PATHS
from seqkit.models.hub_generation import (
    LayerKV,
    cache_argument,
    causal_lm_output,
    read_cache,
    write_cache,
)
from seqkit.parts.base import ModelBuilder, same_names


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, T, V) ``logits`` against aligned (B, T) ``labels``, skipping
    -100. Flattening to (B*T, V) is a view of the logits, no copy."""
    return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)


class KeyValueCausalLM(PreTrainedModel, GenerationMixin):
    """Base of the causal LMs whose cache holds each layer's keys and values.

    A subclass defines ``lm_head`` and ``decode(input_ids, past_key_values, past_length,
    position_ids, use_cache) -> (hidden, presents)``: the final hidden states (B, T, C) of the
    new tokens, and the cache of every position so far (one ``(k, v)`` pair per layer) when
    ``use_cache``, else None. ``transformers``' ``generate()`` and
    ``pipeline("text-generation")`` run it, with a key/value cache
    (:mod:`seqkit.models.hub_generation`); seqkit's own :func:`seqkit.generation.generate` is the
    faster path and slides a window past the context length, where ``generate()`` stops with an
    error.
    """

    main_input_name = "input_ids"

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: torch.LongTensor | None = None,
        past_key_values: tuple[LayerKV, ...] | Cache | None = None,
        use_cache: bool = False,
        position_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Next-token logits for every input position, and the loss when ``labels`` are given.

        Args:
            input_ids: (B, T) token ids.
            labels: (B, T) next-token targets already aligned with ``input_ids`` (see the module
                docstring); -100 marks a position that does not count.
            past_key_values: the cache returned by an earlier call with ``use_cache=True``: one
                ``(k, v)`` pair per layer, each (B, heads, S_past, hs). ``input_ids`` then holds
                only the new tokens. A ``transformers`` ``Cache`` (what ``generate()`` passes,
                also as ``cache=``) is read and extended in place instead.
            use_cache: return the keys and values of all positions so far as the output's
                cache.
            position_ids: (B, T) or (T,) positions; by default they continue after the cache.
            attention_mask: (B, S) must be all ones if given: padding is not supported. (Named
                in the signature because ``generate()`` builds (B, T) positions only for a
                model that declares it.)
            **kwargs: accepted for compatibility with generic callers (``return_dict``…).

        Returns:
            ``CausalLMOutputWithPast`` with ``logits`` (B, T, V), ``loss`` (or None) and the
            cache (or None): seqkit's tuple, or the ``Cache`` it was given.
        """
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError(
                f"{type(self).__name__} does not support padding: attention_mask must be all 1"
            )
        past_key_values = cache_argument(past_key_values, kwargs)
        hub_cache = past_key_values if isinstance(past_key_values, Cache) else None
        if hub_cache is not None:  # transformers' generate(): see seqkit.models.hub_generation
            past_key_values = read_cache(hub_cache)
            use_cache = True
        past_length = past_key_values[0][0].size(2) if past_key_values is not None else 0

        hidden, presents = self.decode(
            input_ids, past_key_values, past_length, position_ids, use_cache
        )
        logits = self.lm_head(hidden)  # (B, T, V)

        loss = next_token_loss(logits, labels) if labels is not None else None
        if hub_cache is not None:
            return causal_lm_output(logits, loss, write_cache(hub_cache, presents, past_length))
        return causal_lm_output(logits, loss, tuple(presents) if presents is not None else None)


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
