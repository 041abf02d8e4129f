"""What ``transformers``' ``generate()`` (and so ``pipeline("text-generation")``) needs from a
seqkit causal LM, kept in one place so GPT, the open-model decoder and the recurrent LM share it.

seqkit decodes with :func:`seqkit.generation.generate`, and its causal LMs keep their key/value
cache as a plain tuple of ``(k, v)`` pairs, one per layer, extended by concatenation (see
:mod:`seqkit.models.gpt`). ``transformers.GenerationMixin.generate`` instead creates a
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
from transformers.cache_utils import Cache
from transformers.modeling_outputs import CausalLMOutputWithPast

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
