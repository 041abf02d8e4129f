"""Decoder: a decoder-only language model in today's open-model layout, written layer by layer.

GPT-2 (:mod:`seqkit.models.gpt`) is the 2019 recipe. The open models that followed it (LLaMA,
Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models", and its many
descendants) keep the pre-norm decoder-only Transformer and swap four of its parts:

* **RMSNorm** (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization") instead of
  LayerNorm: no mean subtraction and no bias, only a learned gain;
* **rotary position embeddings** (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
  Position Embedding") instead of learned absolute positions: queries and keys are rotated by
  position-dependent angles, so attention scores depend on relative positions;
* **grouped-query attention** (Ainslie et al. 2023, "GQA") instead of one key/value head per
  query head: fewer key/value heads, a smaller cache, faster decoding;
* **SwiGLU** (Shazeer 2020, "GLU Variants Improve Transformer") instead of a GELU MLP:
  down(silu(gate(x)) ⊙ up(x)), with the hidden width cut to 2/3 to keep the parameter count.

Attention itself is :class:`seqkit.models.attention.MultiHeadAttention`, the layer BERT and the
Transformer use too, with its grouped-query and rotary options switched on.

The file reads top to bottom: RMSNorm, the rotary cache, the SwiGLU feed-forward layer, the block,
the configuration, and finally the whole model. Parameter names follow the Llama checkpoint
(``model.layers.0.mlp.gate_proj.weight`` …) except inside the shared attention layer
(``query``/``key``/``value``/``out`` for Llama's ``q_proj``/``k_proj``/``v_proj``/``o_proj``);
:mod:`seqkit.export.llama` converts to and from ``transformers.LlamaForCausalLM`` by that rename.

Shape legend used in the comments: B batch, T new positions, S positions attended to (past + new),
C = n_embd, nh = n_head, nkv = n_kv_head, hs = C // nh (head size), F = intermediate_size,
V = vocab_size, P = n_positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig
from transformers import initialization as init

from seqkit.checks import (
    MAX_DEPTH,
    MAX_WIDTH,
    check_optional_range,
    check_ranges,
    positive,
)
from seqkit.errors import UserError
from seqkit.models.attention import ATTENTION_PATHS, KeyValue, MultiHeadAttention
from seqkit.models.causal_lm import DecoderOnlyBuilder
from seqkit.models.hub_generation import KeyValueCausalLM
from seqkit.models.initialization import normal_init
from seqkit.parts.base import same_names

# One layer's cache: the rotated keys and the values of every position so far, each
# (B, nkv, S, hs) — grouped-query attention caches nkv heads, not nh. The whole cache is a tuple
# of these, one per layer, extended by concatenation, as GPT's: seqkit.generation.generate hands
# it back to the model unopened.
LayerKV = KeyValue


# ----------------------------------------------------------------------------- RMSNorm


class RMSNorm(nn.Module):
    """x / RMS(x) · g, with RMS(x) = √(mean(x²) + ε) over the features (Zhang & Sennrich 2019).

    LayerNorm's re-centring (subtracting the mean) and its bias turn out not to matter for
    Transformers; dropping them leaves one reduction instead of two. The statistics are computed
    in float32 even for half-precision inputs, because a sum of squares overflows float16 easily.
    """

    def __init__(self, size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))  # g, the learned gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (B, T, C)
        return self.weight * h.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}"


# ----------------------------------------------------------------------------- rotary positions


class RotaryEmbedding(nn.Module):
    """The cos/sin tables of rotary position embeddings (Su et al. 2021), for positions 0…P-1.

    Feature pair i of a head (i < hs/2) is rotated at position p by the angle p·θ_i, with
    θ_i = rope_theta^(-2i/hs): the first pairs turn fast, the last ones slowly, like the
    sinusoids of Vaswani et al. Because a rotation by p·θ followed by the inverse rotation by
    q·θ is a rotation by (p − q)·θ, the score of a rotated query and a rotated key depends on
    their positions only through p − q. :func:`seqkit.models.attention.apply_rotary` applies the
    rotation; this module only keeps the tables.

    The tables are precomputed once for every position (P × hs each, a few hundred kB at
    P = 2048, hs = 64) instead of recomputing sines at every step. They are buffers that are not
    saved (``persistent=False``): they follow ``.to(device)`` but are rebuilt from the config on
    loading (see ``DecoderForCausalLM._init_weights``).
    """

    def __init__(self, head_size: int, max_positions: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.head_size = head_size
        self.max_positions = max_positions
        self.theta = theta
        cos, sin = self.tables()
        self.register_buffer("cos_cached", cos, persistent=False)  # (P, hs)
        self.register_buffer("sin_cached", sin, persistent=False)  # (P, hs)

    def tables(self, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """cos(p·θ_i) and sin(p·θ_i) for every position p and frequency i, each (P, hs).

        Every frequency appears twice, at i and at i + hs/2: Llama's "half-rotation" layout
        pairs feature i with feature i + hs/2 (see :func:`seqkit.models.attention.rotate_half`).
        Computed in float32 the way ``transformers``' Llama computes them, so the two models'
        angles agree to the last bit.
        """
        exponents = torch.arange(0, self.head_size, 2, device=device).float() / self.head_size
        inv_freq = 1.0 / (self.theta**exponents)  # (hs/2,): θ_i
        positions = torch.arange(self.max_positions, device=device).float()  # (P,)
        angles = positions[:, None] * inv_freq[None, :]  # (P, hs/2): p·θ_i
        angles = torch.cat((angles, angles), dim=-1)  # (P, hs)
        return angles.cos(), angles.sin()

    def forward(
        self, start: int, length: int, position_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` for positions ``start … start + length - 1``, each (T, hs), or for
        explicit ``position_ids`` (B, T) → each (B, 1, T, hs), broadcasting over heads."""
        if position_ids is not None:
            if int(position_ids.max()) >= self.max_positions:
                raise ValueError(
                    f"position {int(position_ids.max())} is outside the context "
                    f"({self.max_positions} positions)"
                )
            cos = self.cos_cached[position_ids]  # (B, T, hs) or (T, hs)
            sin = self.sin_cached[position_ids]
            if cos.dim() == 3:
                cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hs)
            return cos, sin
        if start + length > self.max_positions:
            raise ValueError(
                f"sequence of {start + length} tokens is longer than the context "
                f"({self.max_positions} positions)"
            )
        # Consecutive positions are consecutive rows: a slice (a view), not a gather.
        return self.cos_cached[start : start + length], self.sin_cached[start : start + length]


# ----------------------------------------------------------------------------- feed-forward


class SwiGLU(nn.Module):
    """The gated feed-forward layer of Shazeer 2020: down(silu(gate(x)) ⊙ up(x)).

    One projection (``gate_proj``) decides, through SiLU (x·σ(x), Ramachandran et al. 2017), how
    much of another (``up_proj``) passes; ``down_proj`` projects back. Three matrices instead of
    two, so the hidden width F is about 2/3 of the usual 4·C to spend the same parameters
    (see :attr:`DecoderConfig.intermediate_size`). No biases, as in Llama.
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.n_embd, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, F)
        return self.down_proj(h)  # (B, T, C)


# ----------------------------------------------------------------------------- block


class DecoderBlock(nn.Module):
    """One pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)) — GPT-2's wiring with
    RMSNorm, rotary grouped-query attention and SwiGLU as the parts."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.n_embd, eps=config.rms_norm_eps)
        self.self_attn = MultiHeadAttention(
            config.n_embd,
            config.n_head,
            config.dropout,
            bias=False,
            attention=config.attention,
            n_kv_head=config.n_kv_head,
        )
        self.post_attention_layernorm = RMSNorm(config.n_embd, eps=config.rms_norm_eps)
        self.mlp = SwiGLU(config)

    def forward(
        self,
        x: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        past_key_value: LayerKV | None = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, LayerKV | None]:
        attended = self.self_attn(
            self.input_layernorm(x),
            causal=True,
            past_key_value=past_key_value,
            use_cache=use_cache,
            rotary=rotary,
        )
        x = x + attended.output  # (B, T, C)
        x = x + self.mlp(self.post_attention_layernorm(x))  # (B, T, C)
        return x, attended.key_value


# ----------------------------------------------------------------------------- configuration


def swiglu_hidden_size(n_embd: int, multiple_of: int) -> int:
    """2/3 · 4 · n_embd rounded up to a multiple of ``multiple_of`` (LLaMA's rule: 4096 → 11008
    with 256). SwiGLU has three matrices where a GELU MLP has two; 2/3 of the usual 4·C keeps
    the parameter count."""
    hidden = int(2 * 4 * n_embd / 3)
    return multiple_of * -(-hidden // multiple_of)


class DecoderConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`DecoderForCausalLM`.

    transformers 5 configs are dataclasses: each field below is a keyword argument of the
    constructor; any other ``PretrainedConfig`` keyword argument is forwarded to the base class.
    The names are seqkit's (GPT's ``n_embd``, ``n_head``…); ``attribute_map`` also answers to
    Llama's (``hidden_size``, ``num_key_value_heads``…). Invalid sizes raise
    :class:`~seqkit.errors.UserError` with one line naming the field.
    """

    model_type = "seqkit-decoder"
    # Generic names that other libraries (and transformers' own helpers) look for.
    attribute_map = {  # noqa: RUF012 - a class-level constant, as in every transformers config
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_key_value_heads": "n_kv_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 32000
    """Number of distinct tokens: rows of the token embedding, columns of the logits."""
    n_positions: int = 2048
    """Context length: the rotary tables cover positions 0 … n_positions - 1. (Rotary positions
    have no learned table, but generation slides its window at this length.)"""
    n_embd: int = 768
    """Width of the residual stream; must be divisible by ``n_head``."""
    n_layer: int = 12
    """Number of decoder blocks."""
    n_head: int = 12
    """Query heads per block; each has ``n_embd // n_head`` dimensions, which must be even (the
    rotary embedding rotates pairs of features)."""
    n_kv_head: int | None = None
    """Key/value heads (grouped-query attention); must divide ``n_head``. None means
    ``n_head`` (plain multi-head attention); 1 is multi-query attention."""
    intermediate_size: int | None = None
    """Hidden width F of the SwiGLU layer; None means 2/3 · 4 · n_embd rounded up to a multiple of
    ``intermediate_multiple`` (:func:`swiglu_hidden_size`)."""
    intermediate_multiple: int = 256
    """The rounding of the default ``intermediate_size`` (LLaMA: 256). Unused when
    ``intermediate_size`` is given."""
    rope_theta: float | int = 10000.0
    """Base of the rotary frequencies θ_i = rope_theta^(-2i/hs) (LLaMA: 10000; larger bases
    suit longer contexts)."""
    rms_norm_eps: float = 1e-5
    """Added to the mean square in every RMSNorm."""
    dropout: float | int = 0.0
    """Dropout on the attention probabilities while training (Llama's ``attention_dropout``);
    like Llama, the model has no other dropout."""
    initializer_range: float = 0.02
    """Standard deviation of the normal initialisation of every weight matrix."""
    attention: str = "sdpa"
    """``sdpa`` (fused ``F.scaled_dot_product_attention``, the fast default) or ``explicit``
    (softmax(QKᵀ/√hs + mask)V written out; same numbers, slower, for reading)."""
    use_cache: bool = True
    """Whether generation helpers should keep a key/value cache by default."""
    bos_token_id: int | None = None
    """Beginning-of-sequence token id, if the tokenizer has one."""
    eos_token_id: int | None = None
    """End-of-sequence token id: generation stops once every row has produced it."""
    pad_token_id: int | None = None
    """Padding token id, if the tokenizer has one."""
    tie_word_embeddings: bool = False
    """Share one matrix between the token embedding and the output projection. False by default,
    as in Llama; small models often tie (Llama 3.2 1B does)."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_kv_head"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise UserError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "every head gets n_embd // n_head dimensions"
            )
        if (self.n_embd // self.n_head) % 2:
            raise UserError(
                f"the head size n_embd // n_head ({self.n_embd // self.n_head}) must be even: "
                "rotary position embeddings rotate pairs of features"
            )
        if self.n_head % self.n_kv_head:
            raise UserError(
                f"n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head}): "
                "each key/value head serves an equal group of query heads"
            )
        if self.intermediate_multiple < 1:
            raise UserError(
                f"intermediate_multiple must be at least 1, got {self.intermediate_multiple}"
            )
        if self.intermediate_size is None:
            self.intermediate_size = swiglu_hidden_size(self.n_embd, self.intermediate_multiple)
        if self.intermediate_size < 1:
            raise UserError(f"intermediate_size must be at least 1, got {self.intermediate_size}")
        if self.rope_theta <= 0:
            raise UserError(f"rope_theta must be positive, got {self.rope_theta}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.attention not in ATTENTION_PATHS:
            raise UserError(
                f"attention must be one of {', '.join(ATTENTION_PATHS)}, got {self.attention!r}"
            )
        super().__post_init__(**kwargs)

    @property
    def head_size(self) -> int:
        """hs = n_embd // n_head."""
        return self.n_embd // self.n_head


# ----------------------------------------------------------------------------- the model


class DecoderForCausalLM(KeyValueCausalLM):
    """Token embedding, ``n_layer`` blocks, a final RMSNorm and the output projection.

    There is no position embedding at the input: positions enter every attention layer through
    the rotary rotation of queries and keys.

    ``forward``, its ``labels`` convention (next-token targets already aligned with the inputs,
    as for :class:`~seqkit.models.gpt.GPTLMHeadModel`; ``transformers.LlamaForCausalLM`` shifts
    them itself) and its cache are :class:`~seqkit.models.hub_generation.KeyValueCausalLM`'s; this
    class computes the hidden states (:meth:`decode`).
    """

    config_class = DecoderConfig
    base_model_prefix = "model"
    _no_split_modules = ["DecoderBlock"]  # noqa: RUF012 - transformers reads these as class attributes
    # {target: source}; only applied when config.tie_word_embeddings is True.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}  # noqa: RUF012

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__(config)
        self.model = nn.ModuleDict(
            {
                "embed_tokens": nn.Embedding(config.vocab_size, config.n_embd),
                "rotary_emb": RotaryEmbedding(
                    config.head_size, config.n_positions, config.rope_theta
                ),
                "layers": nn.ModuleList(DecoderBlock(config) for _ in range(config.n_layer)),
                "norm": RMSNorm(config.n_embd, eps=config.rms_norm_eps),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()  # initialise weights (``_init_weights``) and tie if configured

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Llama's initialisation: N(0, initializer_range) for every matrix, unit RMSNorm
        gains; and the rotary tables, which are not saved, recomputed from the config."""
        normal_init(module, self.config.initializer_range)
        if isinstance(module, RMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, RotaryEmbedding):
            cos, sin = module.tables(device=module.cos_cached.device)
            init.copy_(module.cos_cached, cos)
            init.copy_(module.sin_cached, sin)

    def decode(
        self,
        input_ids: torch.LongTensor,
        past_key_values: tuple[KeyValue, ...] | None,
        past_length: int,
        position_ids: torch.LongTensor | None,
        use_cache: bool,
    ) -> tuple[torch.Tensor, list[KeyValue] | None]:
        """The final hidden states (B, T, C) of the new tokens, and every layer's keys (already
        rotated) and values so far when ``use_cache`` (the rest of ``forward`` is
        :class:`~seqkit.models.hub_generation.KeyValueCausalLM`'s)."""
        T = input_ids.size(1)
        # The rotation angles of the new positions, shared by every layer.
        rotary = self.model.rotary_emb(past_length, T, position_ids)  # each (T, hs)

        x = self.model.embed_tokens(input_ids)  # (B, T, C)
        presents: list[LayerKV] | None = [] if use_cache else None
        for i, block in enumerate(self.model.layers):
            past = past_key_values[i] if past_key_values is not None else None
            x, present = block(x, rotary, past, use_cache)
            if presents is not None:
                presents.append(present)
        return self.model.norm(x), presents  # (B, T, C)


# ----------------------------------------------------------------------------- recipe builder


@dataclass
class DecoderBuilder(DecoderOnlyBuilder):
    """The ``model`` section of a recipe that trains the open-model decoder
    (``model.architecture: decoder``): the decoder-only sizes (the head size n_embd // n_head
    must be even, for the rotary pairs; ``dropout`` applies to the attention probabilities),
    and the open-model options below."""

    n_kv_head: int | None = None
    """Key/value heads (grouped-query attention), dividing n_head; null = n_head."""
    intermediate_size: int | None = None
    """Hidden width of the SwiGLU layer; null = 2/3 · 4 · n_embd rounded up to a multiple of 256."""
    rope_theta: float = 10000.0
    """Base of the rotary frequencies."""
    tie_weights: bool = False
    """Share the token embedding with the output projection."""

    heads: ClassVar[dict[str, type]] = {"causal-lm": DecoderForCausalLM}
    shape_fields: ClassVar[dict[str, str]] = {
        **DecoderOnlyBuilder.shape_fields,
        **same_names("n_kv_head"),
    }
    tags: ClassVar[tuple[str, ...]] = ("llama-style", "rope", "rmsnorm", "swiglu", "gqa")
    stock: ClassVar[dict[str, str]] = {"llama": "seqkit.export.llama:load_stock_llama"}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges("model", self, {"rope_theta": positive()})
        check_optional_range("model.n_kv_head", self.n_kv_head, 1, MAX_DEPTH, integer=True)
        check_optional_range(
            "model.intermediate_size", self.intermediate_size, 1, MAX_WIDTH, integer=True
        )

    def config(self, task: str, facts: dict[str, Any]) -> DecoderConfig:
        return DecoderConfig(
            **self.common_config(facts),
            n_kv_head=self.n_kv_head,
            intermediate_size=self.intermediate_size,
            rope_theta=self.rope_theta,
            dropout=self.dropout,
            tie_word_embeddings=self.tie_weights,
            **{key: facts[key] for key in ("bos_token_id", "eos_token_id") if key in facts},
        )
