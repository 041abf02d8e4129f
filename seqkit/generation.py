"""Autoregressive decoding shared by every seqkit generator: greedy and sampled.

Sampling draws each next token from the model's distribution after three optional edits of the
logits, applied in this order:

* temperature: divide the logits by T (T < 1 sharpens, T > 1 flattens);
* top-k (Fan et al. 2018, "Hierarchical Neural Story Generation"): keep the k likeliest tokens;
* top-p / nucleus (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration"): keep the
  smallest set of likeliest tokens whose probabilities add up to at least p.

:func:`generate` works with any model whose ``forward(input_ids, past_key_values=...,
use_cache=True)`` returns ``.logits`` (B, T, V) and ``.past_key_values``: the cache is opaque
here and simply handed back to the model with the next token.
"""

from __future__ import annotations

import torch
from torch import nn


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``; ``temperature`` must be positive (0 means greedy, handled by the
    caller)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to rescale logits, got {temperature}")
    return logits if temperature == 1.0 else logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit outside the ``k`` largest of its row to -inf (ties at the k-th value are
    kept). ``k`` ≥ the vocabulary size leaves the logits unchanged."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    if k >= logits.size(-1):
        return logits
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep, per row, the smallest set of likeliest tokens whose total probability is ≥ ``p``;
    set the other logits to -inf. The likeliest token always survives, so even a tiny ``p``
    leaves something to sample."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (..., V)
    # A token is dropped when the tokens *before* it already reach p; shifting the cumulative
    # sum by one position keeps the token that crosses p and always keeps the first.
    drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def _context_length(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "n_positions", None)


@torch.inference_mode()
def _generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    do_sample: bool,
    eos_token_id: int | None,
    generator: torch.Generator | None,
    max_context: int | None,
    use_cache: bool,
) -> torch.Tensor:
    batch_size = input_ids.size(0)
    # Preallocate the whole output once; each step writes one column instead of concatenating.
    tokens = input_ids.new_empty(batch_size, input_ids.size(1) + max_new_tokens)
    tokens[:, : input_ids.size(1)] = input_ids
    length = input_ids.size(1)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=input_ids.device)
    past = None  # the model's cache, covering tokens[:, :length - 1] once it exists

    for _ in range(max_new_tokens):
        window_full = max_context is not None and length > max_context
        if past is not None and not window_full:
            # Only the newest token goes through the model; the cache holds the rest.
            output = model(tokens[:, length - 1 : length], past_key_values=past, use_cache=True)
        else:
            # First step, no cache, or the window is full. A model with learned positions has no
            # embedding past max_context, and the cached keys were computed at positions that
            # would now all have to shift by one, so the cache cannot be extended: re-encode the
            # last max_context tokens from position 0, exactly as a model without a cache sees
            # them. Once the window is full every step pays this, as in nanoGPT.
            start = length - max_context if window_full else 0
            output = model(tokens[:, start:length], use_cache=use_cache and not window_full)
        past = output.past_key_values if use_cache and not window_full else None
        logits = output.logits[:, -1, :]  # (B, V): the distribution of the next token

        if do_sample:
            logits = apply_temperature(logits, temperature)
            if top_k is not None:
                logits = top_k_filter(logits, top_k)
            if top_p is not None:
                logits = top_p_filter(logits, top_p)
            probs = logits.float().softmax(dim=-1)
            next_token = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
        else:
            next_token = logits.argmax(dim=-1)  # (B,)

        if eos_token_id is not None:
            # A row that already ended keeps emitting eos so all rows stay the same length.
            next_token = next_token.masked_fill(finished, eos_token_id)
            finished |= next_token == eos_token_id
        tokens[:, length] = next_token
        length += 1
        if eos_token_id is not None and bool(finished.all()):
            break
    return tokens[:, :length]


def generate(
    model: nn.Module,
    input_ids: torch.LongTensor,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    do_sample: bool | None = None,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
    max_context: int | None = None,
    use_cache: bool = True,
) -> torch.LongTensor:
    """Continue ``input_ids`` (B, T) by up to ``max_new_tokens`` tokens; returns prompt + new.

    Args:
        model: any model whose ``forward(input_ids, past_key_values=..., use_cache=True)`` returns
            ``.logits`` and ``.past_key_values``. It runs in eval mode under
            ``torch.inference_mode``; its previous training mode is restored afterwards.
        input_ids: (B, T) prompt token ids, T ≥ 1.
        max_new_tokens: number of tokens to add (fewer if every row reaches ``eos_token_id``).
        temperature: logits are divided by it before sampling; 0 means greedy.
        top_k: sample only among the k likeliest tokens.
        top_p: sample only within the nucleus of total probability ``top_p``.
        do_sample: sample (True) or take the argmax (False); default: ``temperature > 0``.
        eos_token_id: stop once every row has produced it; finished rows are padded with it.
        generator: the random source for sampling; the same seed gives the same tokens.
        max_context: the longest sequence the model can read; default
            ``model.config.n_positions`` when it exists. Longer sequences are decoded with a
            sliding window over the last ``max_context`` tokens.
        use_cache: keep the model's key/value cache between steps (False recomputes the whole
            window every step; same tokens, slower — useful to test a cache).

    Returns:
        (B, T + n) token ids, n ≤ ``max_new_tokens``.
    """
    if input_ids.dim() != 2 or input_ids.size(1) == 0:
        raise ValueError(f"input_ids must be (batch, length ≥ 1), got {tuple(input_ids.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if do_sample is None:
        do_sample = temperature > 0
    if do_sample and temperature == 0:
        raise ValueError("do_sample=True needs a temperature > 0 (temperature 0 is greedy)")
    if max_context is None:
        max_context = _context_length(model)

    was_training = model.training
    model.eval()
    try:
        return _generate(
            model,
            input_ids,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            do_sample,
            eos_token_id,
            generator,
            max_context,
            use_cache,
        )
    finally:
        model.train(was_training)
