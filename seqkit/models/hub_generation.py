"""What ``transformers``' ``generate()`` (and so ``pipeline("text-generation")``) needs from a
seqkit causal LM, kept in one place so GPT, the open-model decoder and the recurrent LM share it,
and the ``transformers`` base class of the two Transformer ones (:class:`KeyValueCausalLM`).

seqkit decodes with :func:`seqkit.generation.generate`, and its causal LMs keep their key/value
cache as a plain tuple of ``(k, v)`` pairs, one per layer, extended by concatenation (see
:mod:`seqkit.models.gpt_network`). ``transformers.GenerationMixin.generate`` instead creates a
``DynamicCache`` (transformers' ``Cache`` class), passes it to ``forward`` as ``cache=`` (named
``past_key_values=`` before transformers 5.x renamed it) and expects the same object back in the
output. The two meet here without changing how seqkit's own layers work:

* :func:`read_cache` turns a ``Cache`` into seqkit's tuple (``None`` while it is empty), so the
  layers run exactly as they do under :func:`seqkit.generation.generate`;
* :func:`write_cache` appends the new positions' keys and values to the ``Cache`` through its
  public ``update``. Each layer's cache is thereby copied twice per step under ``generate()``
  (once by the layer's concatenation, once by ``DynamicCache.update``); seqkit's own generation,
  the CLI's path, is unchanged and pays nothing for this.

Beam search and the other ``generate()`` strategies reorder the ``Cache`` themselves
(``Cache.reorder_cache``), and the layers read it afresh at every step, so they work too.
Padding (an ``attention_mask`` with zeros, i.e. batched prompts of different lengths) is not
supported by these models: their ``forward`` raises.

The models inherit ``transformers.GenerationMixin`` (that is what makes ``can_generate()``
true); transformers' default ``prepare_inputs_for_generation`` does the rest: it passes only the
tokens the cache has not seen, the ``Cache`` and the all-ones ``attention_mask``, and the models
compute positions from the cache's length. A recurrent LM has no key/value cache: its state *is*
the cache. It opts out of ``DynamicCache`` (``_supports_default_dynamic_cache``), returns its
state as the output's cache, and ``generate()`` hands it back at the next step.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast

from seqkit.models.causal_lm import next_token_loss

LayerKV = tuple[torch.Tensor, torch.Tensor]

CACHE_FIELD = (
    "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
)
"""The name of the cache in transformers' model outputs: ``cache`` since transformers 5.x renamed
``past_key_values`` (the old name still reads, with a deprecation warning at every access)."""


def causal_lm_output(
    logits: torch.Tensor, loss: torch.Tensor | None = None, cache: Any = None
) -> CausalLMOutputWithPast:
    """A ``CausalLMOutputWithPast`` with ``cache`` under the name this transformers uses."""
    return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE_FIELD: cache})


def cache_argument(past_key_values: Any, kwargs: dict[str, Any]) -> Any:
    """The cache a ``forward`` was given: ``past_key_values`` (seqkit's name and older
    transformers') or ``cache`` (transformers' ``generate()`` today), taken out of ``kwargs``."""
    cache = kwargs.pop("cache", None)
    return cache if cache is not None else past_key_values


def read_cache(cache: Cache) -> tuple[LayerKV, ...] | None:
    """seqkit's tuple cache — ``(k, v)`` per layer, each (B, heads, S_past, hs) — holding what
    ``cache`` holds; None while it is empty (the first step)."""
    if cache.get_seq_length() == 0:
        return None
    return tuple((layer.keys, layer.values) for layer in cache.layers)


def write_cache(cache: Cache, presents: tuple[LayerKV, ...], past_length: int) -> Cache:
    """Append to ``cache`` the positions of ``presents`` (seqkit's full tuple cache after a
    step) beyond the first ``past_length``, i.e. the ones this step computed."""
    for layer_idx, (keys, values) in enumerate(presents):
        cache.update(keys[:, :, past_length:], values[:, :, past_length:], layer_idx)
    return cache


class KeyValueCausalLM(PreTrainedModel, GenerationMixin):
    """Base of the causal LMs whose cache holds each layer's keys and values.

    A subclass defines ``lm_head`` and ``decode(input_ids, past_key_values, past_length,
    position_ids, use_cache) -> (hidden, presents)``: the final hidden states (B, T, C) of the
    new tokens, and the cache of every position so far (one ``(k, v)`` pair per layer) when
    ``use_cache``, else None. ``transformers``' ``generate()`` and
    ``pipeline("text-generation")`` run it, with a key/value cache (through the functions
    above); seqkit's own :func:`seqkit.generation.generate` is the
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
                docstring of :mod:`seqkit.models.causal_lm`); -100 marks a position that does not
                count.
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
