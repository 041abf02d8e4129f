"""Multi-head attention, the one module every Transformer in seqkit is built from.

Vaswani et al. 2017, "Attention Is All You Need", section 3.2:

    Attention(Q, K, V) = softmax(Q·Kᵀ / √d_k) · V
    MultiHead(Q, K, V) = Concat(head_1, …, head_h) · W_O
    head_i = Attention(Q·W_Q_i, K·W_K_i, V·W_V_i)

The same layer serves three uses, which differ only in where keys and values come from and which
positions a query may see:

* **encoder self-attention** (Transformer encoder, BERT): every position sees every real
  position; padding keys are hidden (a *padding mask*);
* **decoder self-attention** (Transformer decoder, GPT): position t sees positions ≤ t only
  (a *causal mask*), plus the padding mask;
* **cross-attention** (Transformer decoder): queries come from the decoder, keys and values from
  the encoder's output ("memory"); only the memory's padding is hidden.

Two interchangeable paths compute it (a test proves them equal for every mask):

* ``"sdpa"`` (default) calls ``F.scaled_dot_product_attention``, a fused kernel that does not keep
  the T×S matrix of probabilities around for the backward pass;
* ``"explicit"`` writes the formula out, for reading, and is also the path that can return the
  attention probabilities (``need_weights=True``) to plot them.

Two extensions serve decoder-only models in today's open-model layout (seqkit.models.decoder):

* **grouped-query attention** (Ainslie et al. 2023, "GQA: Training Generalized Multi-Query
  Transformer Models from Multi-Head Checkpoints"): ``n_kv_head`` < ``n_head`` key/value heads,
  each shared by a group of ``n_head // n_kv_head`` query heads. The key/value projections and
  the cache shrink by that factor; ``n_kv_head = 1`` is multi-query attention (Shazeer 2019);
* **rotary position embeddings** (Su et al. 2021, "RoFormer"): queries and keys are rotated by
  an angle proportional to their position before the dot product (:func:`apply_rotary`), so a
  score depends on the positions only through their difference.

Incremental decoding keeps a key/value cache: a self-attention layer appends the new positions'
keys and values to the cached ones; a cross-attention layer projects the memory once and reuses
it for every generated token.

Shape legend: B batch, T query positions, S key positions, C = d_model, nh heads,
nkv key/value heads (nh unless grouped), hs = C // nh (head size).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_PATHS = ("sdpa", "explicit")

KeyValue = tuple[torch.Tensor, torch.Tensor]
"""One layer's cached keys and values, each (B, nkv, S, hs)."""


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension.

    RoFormer rotates each pair of features (2i, 2i+1) by an angle; Llama's checkpoints pair
    feature i with feature i + hs/2 instead (the "half-rotation" layout). Both are the same
    rotation up to a fixed permutation of the features inside a head, which the trained query
    and key weights absorb, so seqkit uses Llama's layout and its weights load unpermuted.
    """
    x1, x2 = x.chunk(2, dim=-1)  # each (..., hs/2)
    return torch.cat((-x2, x1), dim=-1)  # (..., hs)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys ``x`` (B, nh, T, hs) by their positions' angles (Su et al. 2021).

    ``cos`` and ``sin`` are (T, hs) or (B, 1, T, hs): cos(p·θ_i) and sin(p·θ_i) with each
    frequency θ_i written twice, once per half (see :func:`rotate_half`). Per pair of features
    (a, b) this is the 2-D rotation (a·cos − b·sin, b·cos + a·sin).
    """
    return x * cos + rotate_half(x) * sin  # (B, nh, T, hs)


class AttentionOutput(NamedTuple):
    """What :class:`MultiHeadAttention` returns."""

    output: torch.Tensor
    """(B, T, C): the attended values, heads mixed back by the output projection."""
    key_value: KeyValue | None
    """The keys and values attended to (the cache to pass next time), if ``use_cache``."""
    weights: torch.Tensor | None
    """(B, nh, T, S) attention probabilities, if ``need_weights``."""


def build_attention_mask(
    query_length: int,
    key_length: int,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    device: torch.device | None = None,
) -> torch.Tensor | None:
    """The boolean mask, True where a query may attend to a key, or None when all may.

    Args:
        query_length: T, the number of queries.
        key_length: S, the number of keys. With a cache S > T and the queries are the *last*
            T positions, so query i sits at absolute position S - T + i.
        key_padding_mask: (B, S), 1/True for real keys and 0/False for padding (the
            ``attention_mask`` convention of ``transformers``).
        causal: hide keys after each query's own position.

    Returns:
        (B, 1, T, S), (T, S), or None; it broadcasts over heads.
    """
    mask = None
    if causal:
        # Lower triangle, shifted right by the cached positions: query i sees keys ≤ S - T + i.
        mask = torch.ones(query_length, key_length, dtype=torch.bool, device=device).tril(
            diagonal=key_length - query_length
        )  # (T, S)
    if key_padding_mask is not None:
        padding = key_padding_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, S)
        mask = padding if mask is None else padding & mask  # (B, 1, T, S)
    return mask


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    key_padding_mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    path: str = "sdpa",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax(Q·Kᵀ/√hs + mask)·V over heads: the computation every attention layer shares.

    Args:
        q: (B, nh, T, hs) queries; the last T of the S key positions when there is a cache.
        k, v: (B, nkv, S, hs) keys and values; nkv divides nh (grouped-query attention when
            smaller: query head i reads key/value head i // (nh / nkv)).
        key_padding_mask: (B, S) 1 for real keys, 0 for padding.
        causal: hide keys after each query's own position.
        dropout_p: dropout on the attention probabilities (pass 0 when not training).
        path: ``"sdpa"`` (the fused kernel) or ``"explicit"`` (the formula written out, which
            also returns the probabilities).

    Returns:
        ``(output, weights)``: (B, nh, T, hs), and the (B, nh, T, S) probabilities on the
        explicit path (None on the fused one).
    """
    T, S = q.size(2), k.size(2)
    grouped = k.size(1) != q.size(1)
    if path == "sdpa":
        # enable_gqa lets the kernel pair query head i with key/value head i // (nh / nkv)
        # without copying the keys and values nh / nkv times. Measured against
        # repeat_interleave on this CPU (1 thread, B=4 nh=8 nkv=2 T=64 hs=32, medians, two
        # runs): forward + backward 1.50-1.65 ms vs 1.71-1.72 ms; one decoding step against a
        # 64-position cache 32 µs vs 60 µs. Only passed when grouped.
        gqa = {"enable_gqa": True} if grouped else {}
        if key_padding_mask is None and causal and T == S:
            # The plain lower triangle: the kernel applies it without building it.
            output = F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout_p, is_causal=True, **gqa
            )
            return output, None
        if key_padding_mask is None and causal and T == 1:
            # One new token after a cache sees every cached position: no mask at all.
            causal = False
        # Several new tokens after a cache: is_causal would align the triangle to the top-left
        # corner, but the new queries sit at the *end* of the keys, so the mask is built.
        mask = build_attention_mask(
            T, S, key_padding_mask=key_padding_mask, causal=causal, device=q.device
        )
        output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, **gqa)
        return output, None
    if grouped:
        # Grouped-query attention, spelled out: every key/value head serves the nh / nkv
        # consecutive query heads of its group, so repeat it that many times.
        group = q.size(1) // k.size(1)
        k = k.repeat_interleave(group, dim=1)  # (B, nkv, S, hs) -> (B, nh, S, hs)
        v = v.repeat_interleave(group, dim=1)  # (B, nh, S, hs)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (B, nh, T, S)
    mask = build_attention_mask(
        T, S, key_padding_mask=key_padding_mask, causal=causal, device=q.device
    )
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # hidden keys get probability 0
    weights = F.softmax(scores, dim=-1)  # (B, nh, T, S): each row sums to 1
    dropped = F.dropout(weights, dropout_p) if dropout_p else weights
    return dropped @ v, weights  # (B, nh, T, S) @ (B, nh, S, hs) -> (B, nh, T, hs)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with separate query, key and value projections.

    Separate projections (rather than one fused ``3C`` matrix) let the same layer do
    cross-attention, where queries and keys come from different sequences, and keep the
    parameter names those of BERT's checkpoint (``query``, ``key``, ``value``).

    Args:
        d_model: C, the width of the inputs and the output.
        n_head: heads; each gets ``d_model // n_head`` dimensions.
        n_kv_head: key/value heads for grouped-query attention; must divide ``n_head``. None
            (the default) means ``n_head``: plain multi-head attention.
        dropout: dropout on the attention probabilities while training.
        bias: whether the four projections have biases.
        attention: ``"sdpa"`` or ``"explicit"`` (may be changed later through ``.attention``).
        cross: a cross-attention layer: keys and values come from ``memory``, and a cache
            passed back holds the memory's projected keys and values, reused rather than
            extended.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        dropout: float = 0.0,
        bias: bool = True,
        attention: str = "sdpa",
        cross: bool = False,
        n_kv_head: int | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_head ({n_head})")
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_kv_head < 1 or n_head % n_kv_head:
            raise ValueError(f"n_kv_head ({n_kv_head}) must divide n_head ({n_head})")
        if attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {attention!r}")
        self.n_head = n_head
        self.n_kv_head = n_kv_head
        self.head_size = d_model // n_head
        self.dropout = dropout
        self.attention = attention
        self.cross = cross
        self.query = nn.Linear(d_model, d_model, bias=bias)
        # With grouped-query attention the keys and values have fewer heads: nkv·hs outputs.
        self.key = nn.Linear(d_model, n_kv_head * self.head_size, bias=bias)
        self.value = nn.Linear(d_model, n_kv_head * self.head_size, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)  # W_O: mixes the heads back

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, width = x.shape
        # (B, L, heads·hs) -> (B, heads, L, hs); heads is nh for queries, nkv for keys/values.
        return x.view(B, L, width // self.head_size, self.head_size).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        causal: bool = False,
        past_key_value: KeyValue | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> AttentionOutput:
        """Attend from ``x`` to itself (self-attention) or to ``memory`` (cross-attention).

        Args:
            x: (B, T, C) the positions that ask (queries).
            memory: (B, S, C) the encoder output for cross-attention; None for self-attention.
            key_padding_mask: (B, S) 1 for real keys, 0 for padding. In self-attention with a
                cache it covers the cached positions too.
            causal: self-attention only: hide the future.
            past_key_value: self-attention: keys and values of earlier positions, extended by
                ``x``'s. Cross-attention: the memory's keys and values from an earlier call,
                used instead of projecting ``memory`` again (which may then be None).
            use_cache: return the keys and values attended to.
            need_weights: return the attention probabilities (computed on the explicit path).
            rotary: self-attention only: ``(cos, sin)`` of the new positions, each (T, hs) or
                (B, 1, T, hs), to rotate the queries and the new keys by (:func:`apply_rotary`).
                Cached keys were rotated when they were new, so the cache is reused as is.
        """
        B, T, C = x.shape
        q = self._split_heads(self.query(x))  # (B, nh, T, hs)
        cross = self.cross or memory is not None
        if rotary is not None and cross:
            raise ValueError("rotary position embeddings apply to self-attention only")
        if rotary is not None:
            q = apply_rotary(q, *rotary)  # (B, nh, T, hs)
        if cross and past_key_value is not None:
            k, v = past_key_value  # the memory projected once, reused for every new token
        elif cross:
            k = self._split_heads(self.key(memory))  # (B, nkv, S, hs)
            v = self._split_heads(self.value(memory))  # (B, nkv, S, hs)
        else:
            k = self._split_heads(self.key(x))  # (B, nkv, T, hs)
            v = self._split_heads(self.value(x))  # (B, nkv, T, hs)
            if rotary is not None:
                k = apply_rotary(k, *rotary)  # (B, nkv, T, hs)
            if past_key_value is not None:
                k = torch.cat((past_key_value[0], k), dim=2)  # (B, nkv, S, hs), S = past + T
                v = torch.cat((past_key_value[1], v), dim=2)  # (B, nkv, S, hs)
        y, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            key_padding_mask=key_padding_mask,
            causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
            path="explicit" if need_weights else self.attention,
        )  # (B, nh, T, hs)

        y = y.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) -> (B, T, C): heads side by side
        return AttentionOutput(
            self.out(y), (k, v) if use_cache else None, weights if need_weights else None
        )
