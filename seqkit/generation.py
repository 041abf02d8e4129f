"""Autoregressive decoding shared by every seqkit generator: greedy, sampled and beam search.

Sampling draws each next token from the model's distribution after three optional edits of the
logits, applied in this order:

* temperature: divide the logits by T (T < 1 sharpens, T > 1 flattens);
* top-k (Fan et al. 2018, "Hierarchical Neural Story Generation"): keep the k likeliest tokens;
* top-p / nucleus (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration"): keep the
  smallest set of likeliest tokens whose probabilities add up to at least p.

:func:`generate` works with any model whose ``forward(input_ids, past_key_values=...,
use_cache=True)`` returns ``.logits`` (B, T, V) and its cache (``.cache``, or
``.past_key_values`` before transformers renamed it): the cache is opaque here and simply handed
back to the model with the next token.

Encoder–decoder models (seq2seq GRUs, Transformer translators) decode through
:func:`greedy_search` and :func:`beam_search` instead, which see the model only through a
``step_fn(tokens, state) -> (log_probs, state[, attention])``; see :func:`beam_search`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seqkit.errors import UserError

logger = logging.getLogger(__name__)

StepFn = Callable[[torch.Tensor, Any], tuple]
"""``step_fn(tokens, state) -> (log_probs, new_state[, attention])``; see :func:`beam_search`."""


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


def _returned_cache(output: Any) -> Any:
    """The cache a model returned. transformers 5.x renamed its outputs' ``past_key_values`` to
    ``cache``; the old name still reads, but logs a deprecation warning, so read the field the
    output class declares."""
    if "cache" in getattr(output, "__dataclass_fields__", ()):
        return output.cache
    return output.past_key_values


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
        past = _returned_cache(output) if use_cache and not window_full else None
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
            ``.logits`` and its cache (``.cache`` or ``.past_key_values``). It runs in eval
            mode under ``torch.inference_mode``; its previous training mode is restored
            afterwards.
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


def continue_prompt(
    model: nn.Module,
    tokenizer: Any,
    prompt: str,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    option: str = "the prompt",
) -> str:
    """``prompt`` and its continuation by ``model``, sampled with a generator seeded by
    ``seed`` (the same seed gives the same text): what ``seqkit generate`` prints. A prompt
    longer than a position-embedding model's context keeps its last context-length tokens
    (logged); an empty prompt is a UserError naming it as ``option`` (``--prompt``)."""
    ids = tokenizer.encode(prompt, what="prompt")
    if not ids:
        raise UserError(f"{option} is empty; give at least one character")
    context = _context_length(model)
    if context is not None and len(ids) > context:
        logger.warning(
            "note: the prompt has %d tokens, more than the model's context of %d; keeping the "
            "last %d",
            len(ids),
            context,
            context,
        )
        ids = ids[-context:]
    output = generate(
        model,
        torch.tensor([ids], dtype=torch.long),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        generator=torch.Generator().manual_seed(seed),
    )
    return tokenizer.decode(output[0].tolist())


# ---------------------------------------------------------------------------- encoder–decoder
#
# Greedy and beam search for models that decode from a state rather than from a prompt: a
# seq2seq GRU carries its hidden state and encoder outputs, a Transformer encoder–decoder its
# memory and key/value cache. Both are written against one small interface (see
# :func:`beam_search`) so every encoder–decoder in seqkit decodes the same way.


@dataclass
class DecodeOutput:
    """What :func:`greedy_search` and :func:`beam_search` return, one row per source."""

    sequences: torch.Tensor
    """(B, L) generated ids without the leading bos; a row ends with eos (if it reached one) and
    is padded after it with ``pad_id``."""
    lengths: torch.Tensor
    """(B,) number of generated tokens per row, eos included."""
    scores: torch.Tensor
    """(B,) summed log-probability of each row (beam search: divided by
    ``length ** length_penalty``, the score the search ranked by)."""
    attentions: torch.Tensor | None
    """(B, L, S) the model's attention over its S source positions at each generated token, when
    ``step_fn`` returns it; None otherwise."""


def sample_text(model: nn.Module, tokenizer: Any, settings: Any, seed: int) -> str:
    """Continue ``settings.prompt`` (a recipe's ``sample`` section, checked when the run
    started) with the model: :func:`continue_prompt` with the section's sampling settings."""
    return continue_prompt(
        model,
        tokenizer,
        settings.prompt,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        seed=seed,
        option="sample.prompt",
    )


def _map_state(state: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor in a nested tuple/list/dict ``state``; keep other leaves."""
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {key: _map_state(value, fn) for key, value in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(_map_state(value, fn) for value in state)
    return state


def _unpack_step(output: tuple) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
    if len(output) == 2:
        return output[0], output[1], None
    if len(output) == 3:
        return output
    raise ValueError("step_fn must return (log_probs, state) or (log_probs, state, attention)")


def _check_decode_args(bos_id: int, eos_id: int, max_length: int) -> None:
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    if bos_id < 0 or eos_id < 0:
        raise ValueError(f"bos_id and eos_id must be token ids, got {bos_id} and {eos_id}")


@torch.no_grad()
def greedy_search(
    step_fn: StepFn,
    initial_state: Any,
    *,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    max_length: int,
    pad_id: int | None = None,
    device: torch.device | str | None = None,
) -> DecodeOutput:
    """Pick the likeliest token at every step; same interface as :func:`beam_search`.

    Cheaper than a beam of one (no candidate bookkeeping) and written separately on purpose:
    the test that a beam of one reproduces it checks the beam search, not a shared helper.
    """
    _check_decode_args(bos_id, eos_id, max_length)
    pad_id = eos_id if pad_id is None else pad_id
    tokens = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
    scores = torch.zeros(batch_size, device=device)
    state, steps, attentions = initial_state, [], []
    for _ in range(max_length):
        log_probs, state, attention = _unpack_step(step_fn(tokens, state))  # (B, V)
        best_log_prob, tokens = log_probs.float().max(dim=-1)  # (B,), (B,)
        # A finished row keeps emitting pad and adds nothing to its score or length.
        tokens = tokens.masked_fill(finished, pad_id)
        scores += best_log_prob.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        steps.append(tokens)
        if attention is not None:
            attentions.append(attention.float().masked_fill(finished[:, None], 0.0))
        finished |= tokens == eos_id
        if bool(finished.all()):
            break
    return DecodeOutput(
        sequences=torch.stack(steps, dim=1),
        lengths=lengths,
        scores=scores,
        attentions=torch.stack(attentions, dim=1) if attentions else None,
    )


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    initial_state: Any,
    *,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    beam_size: int,
    max_length: int,
    length_penalty: float = 1.0,
    pad_id: int | None = None,
    device: torch.device | str | None = None,
) -> DecodeOutput:
    """Beam search (Sutskever et al. 2014, "Sequence to Sequence Learning with Neural Networks",
    section 3.1) over any encoder–decoder, with a length-normalized score (Wu et al. 2016, GNMT).

    The model is seen only through ``step_fn``::

        step_fn(tokens, state) -> (log_probs, new_state)
        step_fn(tokens, state) -> (log_probs, new_state, attention)

    * ``tokens``: (N,) the newest token of each of the N hypotheses (bos at the first step);
    * ``state``: anything the model needs to continue — a tensor or a nested tuple/list/dict of
      tensors (other leaves are passed through untouched). **Every tensor in it has the
      hypotheses on dimension 0** (a GRU's (layers, N, H) hidden state must be stored as
      (N, layers, H)); the search reorders and repeats rows along that dimension only;
    * ``log_probs``: (N, V) log-probabilities of the next token (log_softmax of the logits);
    * ``attention``: optional (N, S) weights over the S source positions, collected into
      :attr:`DecodeOutput.attentions`.

    ``initial_state`` has ``batch_size`` rows (one per source sentence); it is repeated
    ``beam_size`` times here (N = batch_size * beam_size, hypotheses of one source adjacent), so
    the encoder runs once per source, not once per beam.

    The search keeps ``beam_size`` hypotheses per source. A hypothesis that emits eos stays in
    its beam, frozen: it can only be extended by pad at no cost, so its score no longer changes.
    Hypotheses are ranked by ``sum of log-probs / length ** length_penalty`` (length counts the
    generated tokens, eos included): 0 ranks by total probability, which favours short outputs;
    1 by the mean log-probability per token. Decoding stops when every beam of every source has
    finished or after ``max_length`` tokens; the best hypothesis of each source is returned.
    With ``beam_size=1`` this is exactly :func:`greedy_search`.

    Args:
        step_fn: see above. It is called under ``torch.no_grad``; put the model in eval mode.
        initial_state: the state after encoding, ``batch_size`` rows on dimension 0.
        batch_size: number of source sentences B.
        bos_id, eos_id: the start token fed first and the token that ends a hypothesis.
        beam_size: hypotheses kept per source, ≥ 1.
        max_length: most tokens generated per source, eos included.
        length_penalty: the exponent α of the length normalization.
        pad_id: what fills a row after its eos (default: ``eos_id``).
        device: where the token tensors live (that of the state).
    """
    _check_decode_args(bos_id, eos_id, max_length)
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    pad_id = eos_id if pad_id is None else pad_id
    B, K = batch_size, beam_size
    state = _map_state(initial_state, lambda t: t.repeat_interleave(K, dim=0))  # (B*K, ...)
    tokens = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    # All K beams start as the same empty hypothesis; only the first may expand at step one,
    # or the same candidate would fill every beam.
    log_prob_sums = torch.full((B, K), float("-inf"), device=device)
    log_prob_sums[:, 0] = 0.0
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    history = torch.empty(B * K, 0, dtype=torch.long, device=device)  # generated tokens
    attention_history: torch.Tensor | None = None  # (B*K, t, S)
    offsets = (torch.arange(B, device=device) * K)[:, None]  # (B, 1): first row of each source

    for _ in range(max_length):
        log_probs, state, attention = _unpack_step(step_fn(tokens, state))
        log_probs = log_probs.float().view(B, K, -1)  # (B, K, V)
        V = log_probs.size(-1)
        # A finished hypothesis has exactly one continuation, pad, worth log 1 = 0.
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[..., pad_id] = 0.0
        log_probs = torch.where(finished[..., None], frozen, log_probs)

        candidate_sums = log_prob_sums[..., None] + log_probs  # (B, K, V)
        candidate_lengths = lengths + (~finished).long()  # (B, K): ≥ 1 from here on
        normalizer = candidate_lengths.float() ** length_penalty  # (B, K)
        ranking = (candidate_sums / normalizer[..., None]).view(B, K * V)
        _, best = ranking.topk(K, dim=-1)  # (B, K) indices into K * V
        beam_origin = torch.div(best, V, rounding_mode="floor")  # (B, K)
        new_tokens = best % V  # (B, K)

        log_prob_sums = candidate_sums.view(B, K * V).gather(1, best)
        lengths = candidate_lengths.gather(1, beam_origin)
        was_finished = finished.gather(1, beam_origin)
        finished = was_finished | (new_tokens == eos_id)

        rows = (offsets + beam_origin).view(-1)  # (B*K,) row of each survivor's parent
        state = _map_state(state, lambda t, rows=rows: t.index_select(0, rows))
        history = torch.cat([history.index_select(0, rows), new_tokens.view(-1, 1)], dim=1)
        if attention is not None:
            step_attention = attention.float().index_select(0, rows)
            step_attention = step_attention.masked_fill(was_finished.view(-1, 1), 0.0)
            attention_history = (
                step_attention[:, None]
                if attention_history is None
                else torch.cat(
                    [attention_history.index_select(0, rows), step_attention[:, None]], dim=1
                )
            )
        tokens = new_tokens.view(-1)
        if bool(finished.all()):
            break

    final_scores = log_prob_sums / lengths.clamp(min=1).float() ** length_penalty  # (B, K)
    best_beam = final_scores.argmax(dim=-1)  # (B,)
    best_rows = offsets.squeeze(1) + best_beam
    return DecodeOutput(
        sequences=history.index_select(0, best_rows),
        lengths=lengths.gather(1, best_beam[:, None]).squeeze(1),
        scores=final_scores.gather(1, best_beam[:, None]).squeeze(1),
        attentions=None
        if attention_history is None
        else attention_history.index_select(0, best_rows),
    )


class TranslatesIds:
    """``translate_ids`` for an encoder–decoder model: greedy or beam search over the step
    function the model prepares for a batch of sources (:meth:`search_setup`). Mixed into the
    GRU seq2seq model and the Transformer, so both decode the same way and the translation
    tasks and commands call either alike."""

    def search_setup(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[StepFn, Any, int, int]:
        """For sources ``input_ids`` (B, S): the step function, its initial state (the encoded
        sources), the token decoding starts from, and the default most tokens generated."""
        raise NotImplementedError

    @torch.no_grad()
    def translate_ids(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        beam_size: int = 1,
        max_length: int | None = None,
        length_penalty: float = 1.0,
    ) -> DecodeOutput:
        """Greedy (``beam_size=1``) or beam-search translations of a padded batch of sources:
        token ids after the start token, in evaluation mode (no dropout)."""
        was_training = self.training
        self.eval()
        try:
            step, state, start, default_length = self.search_setup(input_ids, attention_mask)
            common = dict(
                batch_size=input_ids.size(0),
                bos_id=start,
                eos_id=self.config.eos_token_id,
                max_length=max_length or default_length,
                pad_id=self.config.pad_token_id,
                device=input_ids.device,
            )
            if beam_size == 1:
                return greedy_search(step, state, **common)
            return beam_search(
                step, state, beam_size=beam_size, length_penalty=length_penalty, **common
            )
        finally:
            self.train(was_training)
