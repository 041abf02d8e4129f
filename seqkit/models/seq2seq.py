"""Recurrent encoder–decoder (seq2seq) translation models, with and without attention.

Three chapters of the same story, selected by ``config.attention``:

* ``none`` — Cho et al. 2014, "Learning Phrase Representations using RNN Encoder–Decoder for
  Statistical Machine Translation": the encoder squeezes the whole source into one vector ``c``;
  the decoder sees ``c`` at every step (as input and beside its output) and nothing else of the
  source. Long sentences suffer, which is what attention fixes.
* ``bahdanau`` — Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to
  Align and Translate": before emitting token t the decoder scores every encoder state ``h_j``
  against its *previous* state, ``e_tj = vᵀ tanh(W s_{t-1} + U h_j)`` (additive attention), and
  reads the weighted average ``c_t`` as an extra input.
* ``luong-dot`` / ``luong-general`` — Luong, Pham & Manning 2015, "Effective Approaches to
  Attention-based Neural Machine Translation": the decoder first steps, then scores the encoder
  states against its *new* state, ``s_tᵀ h_j`` (dot) or ``s_tᵀ W h_j`` (general), and predicts from
  the attentional state ``h̃_t = tanh(W_c [c_t; s_t])``. (Luong's "input feeding" of ``h̃_{t-1}``
  is left out: without it the decoder GRU runs over the whole target in one fused call during
  teacher-forced training, which is what makes these variants fast on a CPU.)

The encoder is a bidirectional GRU (``torch.nn.GRU``, the fused kernel; each direction has
``hidden_size / 2`` units so the concatenated states ``h_j`` have ``hidden_size`` dimensions and
the dot score needs no projection). Its last forward and backward states, through a tanh layer,
start the decoder, as in Bahdanau et al.

Training uses teacher forcing (Williams & Zipser 1989): the decoder reads the reference's
previous token. ``teacher_forcing_ratio < 1`` feeds, at each step and with probability
``1 - ratio``, the model's own previous prediction instead (close to scheduled sampling, Bengio
et al. 2015), so that training looks more like decoding; it forces the step-by-step path.

Decoding goes through :func:`seqkit.generation.greedy_search` / ``beam_search`` by way of
:meth:`Seq2SeqModel.decode_step`, which also returns the attention weights for plots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from seqkit.checks import (
    MAX_DEPTH,
    MAX_WIDTH,
    check_choice,
    check_ranges,
    count,
    probability,
)
from seqkit.errors import UserError
from seqkit.generation import TranslatesIds
from seqkit.parts.base import EncoderDecoderBuilder, same_names

ATTENTION_KINDS = ("none", "bahdanau", "luong-dot", "luong-general")


class Seq2SeqConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`Seq2SeqModel` (transformers 5 configs are dataclasses:
    each field is a keyword argument)."""

    model_type = "seqkit-seq2seq"

    source_vocab_size: int = 100
    """Rows of the source embedding."""
    target_vocab_size: int = 100
    """Rows of the target embedding and columns of the logits."""
    embedding_dim: int = 256
    """Width of the source and target token embeddings."""
    hidden_size: int = 512
    """Decoder GRU width, and width of the encoder states (two directions of hidden_size / 2)."""
    num_layers: int = 1
    """Stacked GRU layers in the encoder and in the decoder."""
    dropout: float | int = 0.3
    """Dropout on embeddings, between GRU layers and before the output projection."""
    attention: str = "bahdanau"
    """none, bahdanau (additive), luong-dot or luong-general."""
    attention_dim: int | None = None
    """Width of Bahdanau's scoring layer; None means hidden_size."""
    teacher_forcing_ratio: float | int = 1.0
    """Probability of feeding the reference's previous token while training (1 = always)."""
    max_length: int = 64
    """Default most tokens generated per sentence."""
    max_source_length: int = 64
    """Longest source the model was trained on; translate truncates longer input (and says so)."""
    init_range: float | int = 0.08
    """Parameters start uniform in ±init_range (Sutskever et al. 2014)."""
    pad_token_id: int | None = 0
    """Padding id in both vocabularies."""
    bos_token_id: int | None = 2
    """Start of the target sentence (fed to the decoder first)."""
    eos_token_id: int | None = 3
    """End of the target sentence."""
    decoder_start_token_id: int | None = 2
    """Same as bos; the name transformers' generation helpers look for."""
    is_encoder_decoder: bool = True
    """Tells transformers' tooling this is an encoder–decoder."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(
                f"attention must be one of {', '.join(ATTENTION_KINDS)}, got {self.attention!r}"
            )
        if self.hidden_size % 2:
            raise ValueError(
                f"hidden_size must be even (two encoder directions), got {self.hidden_size}"
            )
        if not 0 <= self.teacher_forcing_ratio <= 1:
            raise ValueError(
                f"teacher_forcing_ratio must be in [0, 1], got {self.teacher_forcing_ratio}"
            )
        super().__post_init__(**kwargs)


@dataclass
class Seq2SeqOutput(ModelOutput):
    """``loss`` (mean cross-entropy over non-ignored labels), ``logits`` (B, T, V) and the cross
    ``attentions`` (B, T, S) of every target position (None for attention ``none``)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


# ----------------------------------------------------------------------------- encoder


class Encoder(nn.Module):
    """Embedding → bidirectional GRU over the padded source (packed, so padding is never read)."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(
            config.source_vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
        )
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(
            config.embedding_dim,
            config.hidden_size // 2,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        # Bahdanau et al.: the decoder starts from tanh(W_s [→h_S; ←h_1]), one per layer.
        self.bridge = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the encoder states (B, S, H) and the decoder's initial state (L, B, H)."""
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()  # pack_padded wants CPU lengths
        embedded = self.dropout(self.embedding(input_ids))  # (B, S, E)
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, lengths, batch_first=True, enforce_sorted=False
        )
        packed_states, final = self.rnn(packed)  # final: (L * 2, B, H / 2)
        states, _ = nn.utils.rnn.pad_packed_sequence(
            packed_states, batch_first=True, total_length=input_ids.size(1)
        )  # (B, S, H): forward and backward halves concatenated
        layers, batch = final.size(0) // 2, final.size(1)
        final = final.view(layers, 2, batch, -1)  # (L, 2, B, H / 2)
        both_directions = torch.cat([final[:, 0], final[:, 1]], dim=-1)  # (L, B, H)
        return states, torch.tanh(self.bridge(both_directions))


# ----------------------------------------------------------------------------- attention


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the last dimension, with padded source positions (mask 0) given weight 0."""
    return scores.masked_fill(~mask.bool(), float("-inf")).softmax(dim=-1)


class AdditiveAttention(nn.Module):
    """Bahdanau's score ``vᵀ tanh(W q + U h_j)``; ``U h_j`` is computed once per sentence."""

    def __init__(self, hidden_size: int, attention_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(hidden_size, attention_dim, bias=False)  # W
        self.key_proj = nn.Linear(hidden_size, attention_dim)  # U
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def precompute(self, states: torch.Tensor) -> torch.Tensor:
        return self.key_proj(states)  # (B, S, A)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, H) → context (B, T, H) and weights (B, T, S)."""
        # (B, T, 1, A) + (B, 1, S, A) → (B, T, S, A) → (B, T, S)
        energy = torch.tanh(self.query_proj(query)[:, :, None] + keys[:, None])
        weights = masked_softmax(self.v(energy).squeeze(-1), mask[:, None])  # (B, T, S)
        return weights @ states, weights  # (B, T, H)


class MultiplicativeAttention(nn.Module):
    """Luong's ``dot`` score ``qᵀ h_j`` or ``general`` score ``qᵀ W h_j`` (W applied to the keys
    once per sentence)."""

    def __init__(self, hidden_size: int, general: bool) -> None:
        super().__init__()
        self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False) if general else None

    def precompute(self, states: torch.Tensor) -> torch.Tensor:
        return states if self.key_proj is None else self.key_proj(states)  # (B, S, H)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = query @ keys.transpose(1, 2)  # (B, T, H) @ (B, H, S) → (B, T, S)
        weights = masked_softmax(scores, mask[:, None])
        return weights @ states, weights  # (B, T, H)


# ----------------------------------------------------------------------------- decoder


class Decoder(nn.Module):
    """Target embedding → GRU → output projection, wired for one of the four attention kinds.

    ``forward`` works on T steps at once; it is called with T = 1 while decoding. Where the GRU's
    input does not depend on its own previous output (none, luong-*), the T steps go through the
    fused GRU in one call; Bahdanau's input contains ``c_t``, which needs ``s_{t-1}``, so it loops.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.kind = config.attention
        H, E = config.hidden_size, config.embedding_dim
        self.embedding = nn.Embedding(config.target_vocab_size, E, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        # none and bahdanau read a source summary (c or c_t) beside each embedded token.
        rnn_input = E + H if self.kind in ("none", "bahdanau") else E
        self.rnn = nn.GRU(
            rnn_input,
            H,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        if self.kind == "bahdanau":
            self.attention = AdditiveAttention(H, config.attention_dim or H)
        elif self.kind.startswith("luong"):
            self.attention = MultiplicativeAttention(H, general=self.kind == "luong-general")
            self.combine = nn.Linear(2 * H, H, bias=False)  # W_c [c_t; s_t]
        else:
            self.attention = None
        # Cho et al. and Bahdanau et al. predict from [s_t; c_t; y_{t-1}]; Luong from h̃_t.
        out_input = H if self.kind.startswith("luong") else 2 * H + E
        self.output = nn.Linear(out_input, config.target_vocab_size)

    def precompute(self, states: torch.Tensor) -> torch.Tensor:
        """What the attention derives from the encoder states once per sentence (its keys)."""
        return states if self.attention is None else self.attention.precompute(states)

    def forward(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        states: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        source_summary: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """tokens (B, T), hidden (L, B, H) → logits (B, T, V), hidden (L, B, H), attention
        weights (B, T, S) or None."""
        embedded = self.dropout(self.embedding(tokens))  # (B, T, E)
        T = tokens.size(1)
        if self.kind == "none":
            context = source_summary[:, None].expand(-1, T, -1)  # (B, T, H): the same c
            outputs, hidden = self.rnn(torch.cat([embedded, context], dim=-1), hidden)
            features = torch.cat([outputs, context, embedded], dim=-1)  # (B, T, 2H + E)
            return self.output(self.dropout(features)), hidden, None
        if self.kind == "bahdanau":
            outputs, contexts, weights = [], [], []
            for t in range(T):
                # Score the source against s_{t-1}: the top layer's state before this step.
                context, weight = self.attention(hidden[-1][:, None], keys, states, mask)
                step_in = torch.cat([embedded[:, t : t + 1], context], dim=-1)  # (B, 1, E + H)
                output, hidden = self.rnn(step_in, hidden)  # (B, 1, H)
                outputs.append(output)
                contexts.append(context)
                weights.append(weight)
            outputs, contexts = torch.cat(outputs, dim=1), torch.cat(contexts, dim=1)
            features = torch.cat([outputs, contexts, embedded], dim=-1)  # (B, T, 2H + E)
            return self.output(self.dropout(features)), hidden, torch.cat(weights, dim=1)
        # Luong: step first, then attend with the new states s_t (all T at once).
        outputs, hidden = self.rnn(embedded, hidden)  # (B, T, H)
        context, weights = self.attention(outputs, keys, states, mask)  # (B, T, H), (B, T, S)
        attentional = torch.tanh(self.combine(torch.cat([context, outputs], dim=-1)))  # h̃_t
        return self.output(self.dropout(attentional)), hidden, weights


# ----------------------------------------------------------------------------- the model


class Seq2SeqModel(PreTrainedModel, TranslatesIds):
    """Encoder–decoder translator; ``forward`` returns the loss when ``labels`` are given.

    Batch convention (seqkit.data.seq2seq's collator): ``input_ids`` (B, S) source ids and their
    ``attention_mask``; ``decoder_input_ids`` (B, T) = bos + target; ``labels`` (B, T) = target +
    eos, -100 where padded. ``labels[:, t]`` is what should follow ``decoder_input_ids[:, t]``.
    """

    config_class = Seq2SeqConfig
    base_model_prefix = "seq2seq"
    main_input_name = "input_ids"

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Every parameter uniform in ±init_range, as Sutskever et al. (2014) trained theirs."""
        for parameter in module.parameters(recurse=False):
            init.uniform_(parameter, -self.config.init_range, self.config.init_range)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> dict:
        """Run the encoder once; returns the decoder's starting state, batch on dimension 0."""
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        states, hidden = self.encoder(input_ids, attention_mask)
        return {
            "hidden": hidden.transpose(0, 1).contiguous(),  # (B, L, H): batch first for beams
            "states": states,  # (B, S, H)
            "keys": self.decoder.precompute(states),  # (B, S, A)
            "mask": attention_mask,  # (B, S)
            "summary": hidden[-1],  # (B, H): Cho et al.'s fixed context c
        }

    def _decode(self, tokens: torch.Tensor, state: dict):
        hidden = state["hidden"].transpose(0, 1).contiguous()  # (L, B, H) for nn.GRU
        logits, hidden, weights = self.decoder(
            tokens, hidden, state["states"], state["keys"], state["mask"], state["summary"]
        )
        return logits, {**state, "hidden": hidden.transpose(0, 1)}, weights

    def decode_step(self, tokens: torch.Tensor, state: dict):
        """One decoding step in :func:`seqkit.generation.beam_search`'s interface:
        tokens (N,) → log-probs (N, V), new state, attention (N, S) or None."""
        logits, state, weights = self._decode(tokens[:, None], state)
        attention = None if weights is None else weights[:, 0]
        return logits[:, 0].log_softmax(dim=-1), state, attention

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> Seq2SeqOutput:
        if decoder_input_ids is None:
            raise ValueError("Seq2SeqModel.forward needs decoder_input_ids (bos + target)")
        state = self.encode(input_ids, attention_mask)
        ratio = self.config.teacher_forcing_ratio
        if not self.training or ratio >= 1:
            logits, _, weights = self._decode(decoder_input_ids, state)  # (B, T, V)
        else:
            logits, weights = self._decode_with_own_predictions(decoder_input_ids, state, ratio)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100
            )
        return Seq2SeqOutput(loss=loss, logits=logits, attentions=weights)

    def _decode_with_own_predictions(self, decoder_input_ids, state, ratio):
        """Step by step; after the first step each input is the reference token with probability
        ``ratio``, else the model's own argmax from the step before (no gradient through it)."""
        logits, weights = [], []
        token = decoder_input_ids[:, :1]  # bos
        for t in range(decoder_input_ids.size(1)):
            if t > 0:
                use_reference = torch.rand(token.size(0), 1, device=token.device) < ratio
                predicted = logits[-1].argmax(dim=-1).detach()  # (B, 1)
                token = torch.where(use_reference, decoder_input_ids[:, t : t + 1], predicted)
            step_logits, state, step_weights = self._decode(token, state)
            logits.append(step_logits)
            weights.append(step_weights)
        attentions = None if weights[0] is None else torch.cat(weights, dim=1)
        return torch.cat(logits, dim=1), attentions

    def search_setup(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        """What :meth:`translate_ids` searches with: :meth:`decode_step` from the encoded
        sources, starting at BOS, for at most the config's ``max_length`` tokens."""
        state = self.encode(input_ids, attention_mask)
        return self.decode_step, state, self.config.bos_token_id, self.config.max_length


# ----------------------------------------------------------------------------- builder


@dataclass
class RNNSeq2SeqBuilder(EncoderDecoderBuilder):
    """The ``model`` section of a recipe that trains a recurrent encoder–decoder
    (``model.architecture: rnn-seq2seq``; the old ``task: seq2seq``)."""

    attention: str = "bahdanau"
    """none (Cho et al. 2014), bahdanau (additive), luong-dot or luong-general."""
    embedding_dim: int = 256
    """Width of the word embeddings."""
    hidden_size: int = 512
    """Decoder GRU width; the bidirectional encoder has hidden_size / 2 per direction."""
    num_layers: int = 1
    """GRU layers in the encoder and in the decoder."""
    dropout: float = 0.3
    """Dropout on embeddings, between layers and before the output layer."""
    teacher_forcing_ratio: float = 1.0
    """Probability of feeding the reference token while training (below 1 is slower)."""

    heads: ClassVar[dict[str, type]] = {"seq2seq": Seq2SeqModel}
    shape_fields: ClassVar[dict[str, str]] = same_names(
        "attention", "embedding_dim", "hidden_size", "num_layers"
    )
    tags: ClassVar[tuple[str, ...]] = ("seq2seq", "gru")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("model.attention", self.attention, ATTENTION_KINDS)
        check_ranges(
            "model",
            self,
            {
                "embedding_dim": count(1, MAX_WIDTH),
                "hidden_size": count(2, MAX_WIDTH),
                "num_layers": count(1, MAX_DEPTH),
                "dropout": probability(),
                "teacher_forcing_ratio": probability(high_open=False),
            },
        )
        if self.hidden_size % 2:  # the bidirectional encoder gives each direction half
            raise UserError(f"model.hidden_size must be even, got {self.hidden_size}")

    def config(self, task: str, facts: dict[str, Any]) -> Seq2SeqConfig:
        return Seq2SeqConfig(
            source_vocab_size=facts["source_vocab_size"],
            target_vocab_size=facts["target_vocab_size"],
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            attention=self.attention,
            teacher_forcing_ratio=self.teacher_forcing_ratio,
            max_length=self.max_length,
            max_source_length=facts["max_source_length"],
            **self.special_token_ids(facts),
        )

    def window(self, config: Any) -> tuple[int, int | None]:
        """The longest source; a recurrent model takes any length."""
        return config.max_source_length, None

    def card_tags(self) -> list[str]:
        return [*self.tags, f"attention-{self.attention}"]
