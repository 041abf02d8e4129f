"""The encoder–decoder Transformer, written layer by layer.

Vaswani et al. 2017, "Attention Is All You Need": an encoder reads the source sentence with
self-attention; a decoder writes the target one token at a time, attending to its own past
(masked self-attention) and to the encoder's output (cross-attention). Every sub-layer is wrapped
in a residual connection and a LayerNorm.

The file reads top to bottom: positional encodings, the position-wise feed-forward layer, the
residual wrapper (post-LN as in the paper, or pre-LN), the encoder layer, the decoder layer, the
configuration, and the whole model. Attention itself lives in :mod:`seqkit.models.attention`, the
one module shared with BERT and GPT.

Choices from the paper, each a config field:

* sinusoidal positions (section 3.5), or learned ones (``position_encoding="learned"``);
* embeddings scaled by √d_model before adding positions (section 3.4);
* one embedding matrix shared by source, target and the pre-softmax projection when the
  vocabulary is shared (``share_embeddings``, section 3.4); the target embedding always doubles
  as the output projection;
* post-LN, ``LayerNorm(x + Sublayer(x))`` (section 3.1), or pre-LN,
  ``x + Sublayer(LayerNorm(x))`` (Xiong et al. 2020), which trains without a long warm-up;
* label smoothing ε_ls = 0.1 (section 5.4).

Shape legend: B batch, S source positions, T target positions, C = d_model, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import Seq2SeqLMOutput

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_choice, check_ranges, count, probability
from seqkit.errors import UserError
from seqkit.generation import TranslatesIds
from seqkit.models.attention import ATTENTION_PATHS, KeyValue, MultiHeadAttention
from seqkit.parts.base import EncoderDecoderBuilder, same_names

LayerCache = tuple[KeyValue, KeyValue]
"""One decoder layer's cache: (self-attention keys/values so far, the memory's keys/values)."""

POSITION_ENCODINGS = ("sinusoidal", "learned")
NORM_POSITIONS = ("post", "pre")


# ----------------------------------------------------------------------------- positions


def sinusoidal_positions(num_positions: int, d_model: int) -> torch.Tensor:
    """(num_positions, d_model) table of section 3.5:

    PE(pos, 2i) = sin(pos / 10000^(2i/d_model)),   PE(pos, 2i+1) = cos(pos / 10000^(2i/d_model))

    Each pair of dimensions is a rotation at its own frequency, so PE(pos + k) is a linear
    function of PE(pos): relative offsets are easy for attention to read.
    """
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (P, 1)
    # 1 / 10000^(2i/d) computed as exp(-2i·ln(10000)/d) for accuracy.
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )  # (d/2,)
    table = torch.zeros(num_positions, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table


class PositionalEncoding(nn.Module):
    """Adds position information to scaled token embeddings, then dropout."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.learned = config.position_encoding == "learned"
        if self.learned:
            self.embedding = nn.Embedding(config.max_position_embeddings, config.d_model)
        # The sinusoidal table is fixed: neither a parameter nor a saved buffer. It is built on
        # first use on the input's device (a non-persistent buffer would be left uninitialised
        # when transformers loads a model on the meta device).
        self._table: torch.Tensor | None = None
        self.d_model = config.d_model
        self.scale = math.sqrt(config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.max_positions = config.max_position_embeddings

    def forward(self, token_embeddings: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, L, C) embeddings of positions ``offset … offset + L - 1`` → (B, L, C)."""
        L = token_embeddings.size(1)
        if offset + L > self.max_positions:
            raise ValueError(
                f"sequence of {offset + L} tokens is longer than max_position_embeddings "
                f"({self.max_positions})"
            )
        if self.learned:
            positions = self.embedding.weight[offset : offset + L]  # (L, C)
        else:
            table = self._table
            if table is None or table.device != token_embeddings.device:
                table = sinusoidal_positions(self.max_positions, self.d_model)
                self._table = table = table.to(token_embeddings.device)
            positions = table[offset : offset + L].to(token_embeddings.dtype)  # (L, C)
        # Section 3.4: embeddings are multiplied by √d_model so that the (unit-scale) positions
        # do not drown them.
        return self.dropout(token_embeddings * self.scale + positions)  # (B, L, C)


# ----------------------------------------------------------------------------- sub-layers


class FeedForward(nn.Module):
    """FFN(x) = max(0, x·W1 + b1)·W2 + b2 (section 3.3), applied to each position alike."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.linear1 = nn.Linear(config.d_model, config.d_ff)
        self.linear2 = nn.Linear(config.d_ff, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))  # (B, L, C)


class Residual(nn.Module):
    """A residual connection around a sub-layer, with its LayerNorm before or after.

    post-LN (the paper): ``LayerNorm(x + Dropout(sublayer(x)))``;
    pre-LN: ``x + Dropout(sublayer(LayerNorm(x)))``, whose residual stream is an untouched sum
    (the stack then ends with one more LayerNorm).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.pre_norm = config.norm_position == "pre"

    def forward(self, x: torch.Tensor, sublayer) -> tuple[torch.Tensor, Any]:
        """``sublayer(h)`` returns ``(output, extra)``; ``extra`` (caches, weights) is passed on."""
        if self.pre_norm:
            out, extra = sublayer(self.norm(x))
            return x + self.dropout(out), extra
        out, extra = sublayer(x)
        return self.norm(x + self.dropout(out)), extra


# ----------------------------------------------------------------------------- layers


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the feed-forward layer (section 3.1)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(
            config.d_model, config.n_head, config.attention_dropout, attention=config.attention
        )
        self.self_attn_residual = Residual(config)
        self.ffn = FeedForward(config)
        self.ffn_residual = Residual(config)

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        def attend(h):
            out = self.self_attn(h, key_padding_mask=padding_mask, need_weights=need_weights)
            return out.output, out.weights

        x, weights = self.self_attn_residual(x, attend)  # (B, S, C)
        x, _ = self.ffn_residual(x, lambda h: (self.ffn(h), None))  # (B, S, C)
        return x, weights


class DecoderLayer(nn.Module):
    """Masked self-attention over the target so far, cross-attention to the encoder's output,
    then the feed-forward layer (section 3.1)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        d, h, p = config.d_model, config.n_head, config.attention_dropout
        self.self_attn = MultiHeadAttention(d, h, p, attention=config.attention)
        self.self_attn_residual = Residual(config)
        self.cross_attn = MultiHeadAttention(d, h, p, attention=config.attention, cross=True)
        self.cross_attn_residual = Residual(config)
        self.ffn = FeedForward(config)
        self.ffn_residual = Residual(config)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None,
        target_mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
        need_cross_weights: bool | None = None,
    ) -> tuple[torch.Tensor, LayerCache | None, tuple[torch.Tensor | None, torch.Tensor | None]]:
        """Returns the output (B, T, C), the updated cache, and (self, cross) attention weights
        (``need_cross_weights`` defaults to ``need_weights``)."""
        if need_cross_weights is None:
            need_cross_weights = need_weights
        self_past, cross_past = cache if cache is not None else (None, None)

        def self_attend(h):
            out = self.self_attn(
                h,
                key_padding_mask=target_mask,
                causal=True,
                past_key_value=self_past,
                use_cache=use_cache,
                need_weights=need_weights,
            )
            return out.output, (out.key_value, out.weights)

        def cross_attend(h):
            out = self.cross_attn(
                h,
                memory,
                key_padding_mask=memory_mask,
                past_key_value=cross_past,
                use_cache=use_cache,
                need_weights=need_cross_weights,
            )
            return out.output, (out.key_value, out.weights)

        x, (self_kv, self_weights) = self.self_attn_residual(x, self_attend)  # (B, T, C)
        x, (cross_kv, cross_weights) = self.cross_attn_residual(x, cross_attend)  # (B, T, C)
        x, _ = self.ffn_residual(x, lambda h: (self.ffn(h), None))  # (B, T, C)
        return x, ((self_kv, cross_kv) if use_cache else None), (self_weights, cross_weights)


# ----------------------------------------------------------------------------- configuration


class TransformerConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`TransformerForSeq2Seq`; defaults are the paper's base model
    (section 6.1) except the vocabularies."""

    model_type = "seqkit-transformer"
    attribute_map = {  # noqa: RUF012 - a class-level constant, as in every transformers config
        "hidden_size": "d_model",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "num_encoder_layers",
        # The names seqkit's translation helpers read for the longest source sentence and the
        # vocabularies (the recurrent encoder–decoder's config fields).
        "max_source_length": "max_position_embeddings",
        "source_vocab_size": "src_vocab_size",
        "target_vocab_size": "tgt_vocab_size",
    }

    src_vocab_size: int = 8000
    """Source tokens (rows of the source embedding)."""
    tgt_vocab_size: int = 8000
    """Target tokens (rows of the target embedding, columns of the logits)."""
    share_embeddings: bool = False
    """One embedding for source and target (requires one shared vocabulary)."""
    d_model: int = 512
    """Width of every layer's input and output."""
    n_head: int = 8
    """Attention heads; each gets d_model // n_head dimensions."""
    num_encoder_layers: int = 6
    """Encoder layers."""
    num_decoder_layers: int = 6
    """Decoder layers."""
    d_ff: int = 2048
    """Hidden width of the position-wise feed-forward layer."""
    dropout: float | int = 0.1
    """Dropout on embeddings+positions, sub-layer outputs and inside the feed-forward layer."""
    attention_dropout: float | int = 0.0
    """Dropout on the attention probabilities."""
    max_position_embeddings: int = 256
    """Longest source or target sequence."""
    position_encoding: str = "sinusoidal"
    """sinusoidal (the paper) or learned."""
    norm_position: str = "post"
    """post (the paper: LayerNorm after each residual sum) or pre (before each sub-layer)."""
    layer_norm_eps: float = 1e-5
    """Added to the variance in every LayerNorm."""
    label_smoothing: float = 0.1
    """ε_ls of the training loss (section 5.4); 0 for plain cross-entropy."""
    attention: str = "sdpa"
    """sdpa (fused kernel) or explicit (the formula written out; same numbers)."""
    pad_token_id: int | None = 0
    """Padding id of both vocabularies."""
    bos_token_id: int | None = 1
    """Target start token (the decoder's first input)."""
    eos_token_id: int | None = 2
    """Target end token."""
    decoder_start_token_id: int | None = None
    """What the decoder reads first; None means bos_token_id."""
    is_encoder_decoder: bool = True
    """Tells transformers' helpers this is an encoder–decoder."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.d_model % self.n_head:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})"
            )
        if self.d_model % 2:
            raise ValueError(f"d_model must be even for sinusoidal positions, got {self.d_model}")
        for name, value, valid in (
            ("position_encoding", self.position_encoding, POSITION_ENCODINGS),
            ("norm_position", self.norm_position, NORM_POSITIONS),
            ("attention", self.attention, ATTENTION_PATHS),
        ):
            if value not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {value!r}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                f"share_embeddings needs one vocabulary, got {self.src_vocab_size} source and "
                f"{self.tgt_vocab_size} target tokens"
            )
        super().__post_init__(**kwargs)


# ----------------------------------------------------------------------------- the model


class TransformerForSeq2Seq(PreTrainedModel, TranslatesIds):
    """Encoder–decoder Transformer with the target embedding as output projection.

    ``forward`` follows the ``transformers`` seq2seq convention: ``input_ids`` and
    ``attention_mask`` (B, S) for the source, ``labels`` (B, T) for the target (-100 ignored),
    and ``decoder_input_ids`` defaulting to the labels shifted right behind the start token.
    For decoding one token at a time, :meth:`encode`, :meth:`initial_cache` and :meth:`decode`
    expose the two halves.
    """

    config_class = TransformerConfig
    base_model_prefix = "transformer"
    main_input_name = "input_ids"
    _no_split_modules = ["EncoderLayer", "DecoderLayer"]  # noqa: RUF012

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.src_embed = nn.Embedding(config.src_vocab_size, config.d_model)
        # With a shared vocabulary the source embedding serves the target too.
        self.tgt_embed = (
            None if config.share_embeddings else nn.Embedding(config.tgt_vocab_size, config.d_model)
        )
        self.src_positions = PositionalEncoding(config)
        self.tgt_positions = PositionalEncoding(config)
        self.encoder_layers = nn.ModuleList(
            EncoderLayer(config) for _ in range(config.num_encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(config) for _ in range(config.num_decoder_layers)
        )
        pre = config.norm_position == "pre"
        # Pre-LN leaves the residual stream unnormalised; one final LayerNorm per stack fixes it.
        self.encoder_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if pre else None
        self.decoder_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if pre else None
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Xavier-uniform matrices (as the reference implementation), zero biases, N(0, C^-½)
        embeddings so that embedding·√C has unit scale, unit LayerNorms."""
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.d_model**-0.5)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    @property
    def target_embedding(self) -> nn.Embedding:
        return self.src_embed if self.tgt_embed is None else self.tgt_embed

    def get_input_embeddings(self) -> nn.Embedding:
        return self.src_embed

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.src_embed = value

    # ------------------------------------------------------------------ the two halves

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        """Source ids (B, S) → memory (B, S, C) and each layer's self-attention weights."""
        x = self.src_positions(self.src_embed(input_ids))  # (B, S, C)
        weights = []
        for layer in self.encoder_layers:
            x, w = layer(x, attention_mask, need_weights)
            weights.append(w)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, weights

    def initial_cache(self, memory: torch.Tensor) -> tuple[LayerCache, ...]:
        """A decoder cache before the first target token: empty self-attention keys/values and
        the memory's keys/values projected once per layer. Every tensor has the batch on
        dimension 0, so beam search can reorder it row by row."""
        B = memory.size(0)
        cache = []
        for layer in self.decoder_layers:
            attn = layer.cross_attn
            empty = memory.new_zeros(B, attn.n_head, 0, attn.head_size)  # (B, nh, 0, hs)
            memory_kv = (
                attn._split_heads(attn.key(memory)),  # (B, nh, S, hs)
                attn._split_heads(attn.value(memory)),  # (B, nh, S, hs)
            )
            cache.append(((empty, empty), memory_kv))
        return tuple(cache)

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        memory: torch.Tensor | None,
        memory_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        past_key_values: tuple[LayerCache, ...] | None = None,
        use_cache: bool = False,
        need_weights: bool = False,
        need_last_cross_weights: bool = False,
    ) -> tuple[torch.Tensor, tuple[LayerCache, ...] | None, list, list]:
        """Target ids (B, T) → logits (B, T, V), the cache, and per-layer self and cross
        attention weights (``need_weights``; ``need_last_cross_weights`` asks only for the
        last layer's cross-attention, what an alignment plot shows). With ``past_key_values``
        the ids are the *new* tokens only and ``memory`` may be None (its keys/values are in
        the cache)."""
        offset = past_key_values[0][0][0].size(2) if past_key_values is not None else 0
        x = self.tgt_positions(self.target_embedding(decoder_input_ids), offset)  # (B, T, C)
        presents, self_weights, cross_weights = [], [], []
        last = len(self.decoder_layers) - 1
        for i, layer in enumerate(self.decoder_layers):
            x, present, (w_self, w_cross) = layer(
                x,
                memory,
                memory_mask,
                decoder_attention_mask,
                past_key_values[i] if past_key_values is not None else None,
                use_cache,
                need_weights,
                need_cross_weights=need_weights or (need_last_cross_weights and i == last),
            )
            presents.append(present)
            self_weights.append(w_self)
            cross_weights.append(w_cross)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        logits = x @ self.target_embedding.weight.T  # (B, T, C) @ (C, V) -> (B, T, V)
        return logits, (tuple(presents) if use_cache else None), self_weights, cross_weights

    @staticmethod
    def reorder_cache(cache: tuple[LayerCache, ...], rows: torch.Tensor) -> tuple:
        """The cache of the hypotheses ``rows`` (beam search keeps the best continuations)."""
        return tuple(
            tuple((k.index_select(0, rows), v.index_select(0, rows)) for k, v in layer)
            for layer in cache
        )

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs from targets: the start token, then the targets without their last
        (teacher forcing); -100 becomes padding."""
        start = self.config.decoder_start_token_id
        if start is None:
            start = self.config.bos_token_id
        shifted = labels.new_full(labels.shape, self.config.pad_token_id or 0)
        shifted[:, 0].fill_(start)  # a fill kernel: assigning the number copies it from the host
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == -100, self.config.pad_token_id or 0)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs: Any,
    ) -> Seq2SeqLMOutput:
        """Teacher-forced logits (B, T, V) for every target position, and the label-smoothed
        loss when ``labels`` are given."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids or labels")
            # No target padding mask is needed: padding sits only at the end, and the causal
            # mask already keeps every real position from seeing it.
            decoder_input_ids = self.shift_right(labels)
        memory, encoder_weights = self.encode(input_ids, attention_mask, output_attentions)
        logits, _, self_weights, cross_weights = self.decode(
            decoder_input_ids,
            memory,
            attention_mask,
            decoder_attention_mask,
            need_weights=output_attentions,
        )
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                labels.reshape(-1),
                ignore_index=-100,
                label_smoothing=self.config.label_smoothing if self.training else 0.0,
            )
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            encoder_last_hidden_state=memory,
            encoder_attentions=tuple(encoder_weights) if output_attentions else None,
            decoder_attentions=tuple(self_weights) if output_attentions else None,
            cross_attentions=tuple(cross_weights) if output_attentions else None,
        )

    # ------------------------------------------------------------------ decoding

    def step_fn(self):
        """A ``step_fn(tokens, state)`` for :func:`seqkit.generation.beam_search`. The state is
        ``(decoder cache, memory mask)``, every tensor with the hypotheses on dimension 0; the
        step returns log-probabilities (N, V), the new state, and the last layer's
        cross-attention averaged over heads (N, S), for alignment plots (one query per step,
        so computing it on the explicit path costs little)."""

        def step(tokens: torch.Tensor, state):
            cache, mask = state
            logits, cache, _, cross = self.decode(
                tokens[:, None],
                None,
                mask,
                None,
                cache,
                use_cache=True,
                need_last_cross_weights=True,
            )
            log_probs = logits[:, -1].float().log_softmax(dim=-1)  # (N, V)
            attention = cross[-1][:, :, -1, :].mean(dim=1)  # (N, nh, 1, S) -> (N, S)
            return log_probs, (cache, mask), attention

        return step

    def search_setup(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """What :meth:`translate_ids` searches with: :meth:`step_fn` from the encoded sources
        (an empty decoder cache and the source mask), starting at ``decoder_start_token_id``
        (or BOS), for at most 2·S + 10 tokens within the position table."""
        memory, _ = self.encode(input_ids, attention_mask)
        state = (self.initial_cache(memory), attention_mask)
        start = self.config.decoder_start_token_id
        if start is None:
            start = self.config.bos_token_id
        limit = min(self.config.max_position_embeddings, 2 * input_ids.size(1) + 10)
        return self.step_fn(), state, start, limit


# ----------------------------------------------------------------------------- builder


@dataclass
class TransformerBuilder(EncoderDecoderBuilder):
    """The ``model`` section of a recipe that trains an encoder–decoder Transformer
    (``model.architecture: transformer``; defaults: a small model for CPU)."""

    d_model: int = 256
    """Width of every layer."""
    n_head: int = 8
    """Attention heads; must divide d_model."""
    num_encoder_layers: int = 3
    """Encoder layers."""
    num_decoder_layers: int = 3
    """Decoder layers."""
    d_ff: int = 512
    """Feed-forward hidden width."""
    dropout: float = 0.1
    """Dropout on embeddings and sub-layer outputs."""
    attention_dropout: float = 0.0
    """Dropout on attention probabilities."""
    position_encoding: str = "sinusoidal"
    """sinusoidal (the paper) or learned."""
    norm_position: str = "post"
    """post (the paper) or pre (LayerNorm before each sub-layer; easier to train deep)."""
    share_embeddings: bool = False
    """One joint vocabulary (the data module builds it) and one source/target/output embedding."""
    label_smoothing: float = 0.1
    """ε_ls of the training loss."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the formula written out)."""

    heads: ClassVar[dict[str, type]] = {"seq2seq": TransformerForSeq2Seq}
    shape_fields: ClassVar[dict[str, str]] = same_names(
        "d_model",
        "n_head",
        "num_encoder_layers",
        "num_decoder_layers",
        "d_ff",
        "share_embeddings",
        "position_encoding",
        "norm_position",
    )
    tags: ClassVar[tuple[str, ...]] = ("transformer", "encoder-decoder")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, valid in (
            ("position_encoding", self.position_encoding, POSITION_ENCODINGS),
            ("norm_position", self.norm_position, NORM_POSITIONS),
            ("attention", self.attention, ATTENTION_PATHS),
        ):
            check_choice(f"model.{name}", value, valid)
        check_ranges(
            "model",
            self,
            {
                "d_model": count(2, MAX_WIDTH),
                "n_head": count(1, MAX_DEPTH),
                "num_encoder_layers": count(1, MAX_DEPTH),
                "num_decoder_layers": count(1, MAX_DEPTH),
                "d_ff": count(1, MAX_WIDTH),
                "dropout": probability(),
                "attention_dropout": probability(),
                "label_smoothing": probability(),
            },
        )
        if self.d_model % 2:  # sinusoidal encodings pair a sine with a cosine
            raise UserError(f"model.d_model must be even, got {self.d_model}")
        if self.d_model % self.n_head:
            raise UserError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})"
            )

    def config(self, task: str, facts: dict[str, Any]) -> TransformerConfig:
        source, target = facts["source_vocab_size"], facts["target_vocab_size"]
        if self.share_embeddings and source != target:
            raise UserError(
                f"model.share_embeddings needs one joint vocabulary, but the tokenizer has "
                f"{source} source and {target} target tokens"
            )
        return TransformerConfig(
            src_vocab_size=source,
            tgt_vocab_size=target,
            share_embeddings=self.share_embeddings,
            d_model=self.d_model,
            n_head=self.n_head,
            num_encoder_layers=self.num_encoder_layers,
            num_decoder_layers=self.num_decoder_layers,
            d_ff=self.d_ff,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            # Room for the longest source, and for the longest target the decoder may generate.
            max_position_embeddings=max(
                facts["max_source_length"], facts["max_target_length"], self.max_length + 1
            ),
            position_encoding=self.position_encoding,
            norm_position=self.norm_position,
            label_smoothing=self.label_smoothing,
            attention=self.attention,
            **self.special_token_ids(facts),
        )

    def runtime_settings(self) -> dict[str, Any]:
        return {"attention": self.attention}
