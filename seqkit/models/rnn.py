"""Recurrent networks: RNN, LSTM and GRU cells written gate by gate, and the models built on them.

Three cells, each a function of the input at one time step and the state carried from the last:

* the Elman RNN (Elman 1990, "Finding Structure in Time"):
  ``h' = tanh(W_ih·x + b_ih + W_hh·h + b_hh)``;
* the LSTM (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", with the forget gate of
  Gers, Schmidhuber & Cummins 2000): an input gate i, a forget gate f, an output gate o and a
  candidate g decide what the cell state c keeps, adds and shows;
* the GRU (Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for
  Statistical Machine Translation"): a reset gate r and an update gate z, no separate cell state.

A *layer* runs one cell over a sequence (once per direction when bidirectional, Schuster &
Paliwal 1997) and a *stack* feeds each layer's outputs to the next, with dropout in between
(Zaremba, Sutskever & Vinyals 2014, "Recurrent Neural Network Regularization").

Two paths compute the same numbers, chosen by ``implementation``:

* ``"fused"`` (default) calls torch's fused kernels (``torch.nn.LSTM`` …, cuDNN on a GPU);
* ``"explicit"`` runs the cells below in a Python loop over time steps, for reading.

They share one set of parameters because :class:`RNN`, :class:`LSTM` and :class:`GRU` *are*
``torch.nn.RNN``/``LSTM``/``GRU`` (subclasses): torch registers the weights, under its own names
(``weight_ih_l0``, ``weight_hh_l0_reverse`` …) and with its own initialisation, and the explicit
path reads those same tensors. So a checkpoint moves between the paths, and to and from a plain
``torch.nn.LSTM``, without a single renamed key; tests prove outputs, final states and gradients
equal to torch's within 1e-5 for every option.

The end of the file builds two models on the stack: :class:`RecurrentLMForCausalLM`, a language
model whose cache for :func:`seqkit.generation.generate` is simply the recurrent state, and
:class:`RecurrentForSequenceClassification`, a text classifier.

Shape legend used in the comments: T time steps, B batch, I input features, H hidden size,
G gates (1 RNN, 4 LSTM, 3 GRU), D directions (1 or 2), L layers, E embedding size, V vocabulary,
C classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast, SequenceClassifierOutput

from seqkit import checks
from seqkit.errors import UserError
from seqkit.models.hub_generation import cache_argument, causal_lm_output
from seqkit.parts.base import ModelBuilder, same_names

IMPLEMENTATIONS = ("fused", "explicit")
CELL_TYPES = ("rnn", "lstm", "gru")
POOLINGS = ("last", "mean", "max")

# A recurrent state: h (L·D, B, H) for RNN and GRU, the pair (h, c) for the LSTM.
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------- cells
#
# Every cell receives ``x_proj = W_ih·x_t + b_ih`` already computed. The input's contribution does
# not depend on the recurrence, so one matrix multiply over all T steps (done by the layer) replaces
# T small ones; only the hidden-to-hidden product has to wait for the previous step. The gate
# order inside the stacked weights is torch's, so the weights are interchangeable:
# RNN (h), LSTM (i, f, g, o), GRU (r, z, n).


def rnn_tanh_cell(
    x_proj: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> torch.Tensor:
    """Elman RNN: ``h' = tanh(W_ih·x + b_ih + W_hh·h + b_hh)``. ``x_proj``, ``h``: (B, H)."""
    return torch.tanh(x_proj + F.linear(h, w_hh, b_hh))


def rnn_relu_cell(
    x_proj: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> torch.Tensor:
    """The same recurrence with ReLU (``nonlinearity="relu"``), as in Le et al. 2015 (IRNN)."""
    return torch.relu(x_proj + F.linear(h, w_hh, b_hh))


def lstm_cell(
    x_proj: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor],
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step. ``x_proj``: (B, 4H); ``state``: (h, c), each (B, H). Returns (h', c').

    The cell state c is a conveyor belt: the forget gate scales what it carries, the input gate
    admits a candidate, and the output gate decides how much of it the rest of the network sees.
    Because c' depends on c through a product with f rather than a squashing function, the
    gradient can flow over many steps without vanishing when f stays near 1.
    """
    h, c = state
    gates = x_proj + F.linear(h, w_hh, b_hh)  # (B, 4H): all four pre-activations at once
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(i)  # input gate: how much of the candidate to write
    f = torch.sigmoid(f)  # forget gate: how much of the old cell state to keep
    g = torch.tanh(g)  # candidate values, in (-1, 1)
    o = torch.sigmoid(o)  # output gate: how much of the cell to expose as h
    c_next = f * c + i * g  # (B, H)
    h_next = o * torch.tanh(c_next)  # (B, H)
    return h_next, c_next


def gru_cell(
    x_proj: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None
) -> torch.Tensor:
    """One GRU step. ``x_proj``: (B, 3H); ``h``: (B, H). Returns h'.

    The update gate z interpolates between keeping the old state and taking the candidate n;
    the reset gate r decides how much of the old state the candidate may look at. As in torch
    (and cuDNN), r multiplies ``W_hn·h + b_hn`` *after* the matrix product, which lets all three
    hidden-to-hidden products run as one matmul.
    """
    h_proj = F.linear(h, w_hh, b_hh)  # (B, 3H)
    x_r, x_z, x_n = x_proj.chunk(3, dim=1)  # each (B, H)
    h_r, h_z, h_n = h_proj.chunk(3, dim=1)  # each (B, H)
    r = torch.sigmoid(x_r + h_r)  # reset gate
    z = torch.sigmoid(x_z + h_z)  # update gate
    n = torch.tanh(x_n + r * h_n)  # candidate state
    return (1 - z) * n + z * h  # (B, H): z = 1 keeps the old state untouched


_CELLS: dict[str, Callable[..., Any]] = {
    "RNN_TANH": rnn_tanh_cell,
    "RNN_RELU": rnn_relu_cell,
    "LSTM": lstm_cell,
    "GRU": gru_cell,
}


# ----------------------------------------------------------------------------- one direction


def _where(mask: torch.Tensor, new: State, old: State) -> State:
    """``new`` for the rows where ``mask`` (B, 1) is True, ``old`` elsewhere (state or pair)."""
    if isinstance(new, tuple):
        return tuple(torch.where(mask, n, o) for n, o in zip(new, old, strict=True))  # type: ignore[return-value]
    return torch.where(mask, new, old)


def run_direction(
    cell: Callable[..., Any],
    x_proj: torch.Tensor,
    state: State,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor | None,
    mask: torch.Tensor | None,
    reverse: bool,
) -> tuple[torch.Tensor, State]:
    """Run ``cell`` over the sequence ``x_proj`` (T, B, G·H), forwards or backwards in time.

    ``mask`` (T, B) marks real (not padding) steps of each sequence, or is None when every
    sequence is full length. A row's state only changes on its real steps and its output is zero
    on padding, so a forward pass ends at each sequence's own last step and a backward pass
    starts there: exactly what running each sequence alone (or packing them) would give.

    Returns the outputs (T, B, H), the h of every step, and the final state.
    """
    steps = range(x_proj.size(0) - 1, -1, -1) if reverse else range(x_proj.size(0))
    outputs: list[torch.Tensor] = [x_proj.new_empty(0)] * x_proj.size(0)
    for t in steps:
        new_state = cell(x_proj[t], state, w_hh, b_hh)
        h = new_state[0] if isinstance(new_state, tuple) else new_state  # (B, H)
        if mask is None:
            state = new_state
            outputs[t] = h
        else:
            keep = mask[t].unsqueeze(1)  # (B, 1)
            state = _where(keep, new_state, state)
            outputs[t] = h * keep  # padding steps output zeros, as pad_packed_sequence gives
    return torch.stack(outputs), state  # (T, B, H)


# ----------------------------------------------------------------------------- the stack


class _TwoPaths:
    """The forward shared by :class:`RNN`, :class:`LSTM` and :class:`GRU` (a mixin placed before
    the torch class, so ``super().forward`` is torch's fused forward).

    ``forward(input, hx=None, lengths=None)`` takes what torch's takes — a (T, B, I) tensor,
    (B, T, I) with ``batch_first``, an unbatched (T, I) tensor or a ``PackedSequence`` — plus
    ``lengths`` (B,) for a right-padded batch; the outputs at padded steps are then zero and
    the final state is each sequence's state at its own last step.
    """

    # Set by the torch base class:
    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    training: bool

    def _init_path(self, implementation: str) -> None:
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        self.implementation = implementation

    def forward(
        self,
        input: torch.Tensor | PackedSequence,
        hx: State | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        return self.run(input, hx, lengths, implementation=self.implementation)

    def run(
        self,
        input: torch.Tensor | PackedSequence,
        hx: State | None = None,
        lengths: torch.Tensor | None = None,
        implementation: str | None = None,
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        """``forward`` with the path chosen per call (a model reads it from its config)."""
        implementation = implementation or self.implementation
        if lengths is not None:
            if isinstance(input, PackedSequence):
                raise ValueError("give lengths with a padded tensor, not with a PackedSequence")
            lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
            if lengths.numel() and int(lengths.min()) < 1:
                raise ValueError("every sequence needs at least one step (a length of 0 found)")
        if implementation == "explicit":
            return self._explicit_forward(input, hx, lengths)
        if implementation != "fused":
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        if lengths is None:
            return super().forward(input, hx)  # type: ignore[misc]
        # Padded batch: pack (so the kernel skips the padding), run, pad back to full length.
        total_length = input.size(1 if self.batch_first else 0)
        packed = pack_padded_sequence(
            input, lengths, batch_first=self.batch_first, enforce_sorted=False
        )
        output, state = super().forward(packed, hx)  # type: ignore[misc]
        output, _ = pad_packed_sequence(
            output, batch_first=self.batch_first, total_length=total_length
        )
        return output, state

    # ------------------------------------------------------------------ the readable path

    def _layer_weights(self, layer: int, reverse: bool) -> tuple[torch.Tensor, ...]:
        """``(w_ih, w_hh, b_ih, b_hh)`` of one layer and direction, by torch's names."""
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        w_ih = getattr(self, f"weight_ih{suffix}")  # (G·H, I) or (G·H, D·H) above layer 0
        w_hh = getattr(self, f"weight_hh{suffix}")  # (G·H, H)
        b_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None  # (G·H,)
        b_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None  # (G·H,)
        return w_ih, w_hh, b_ih, b_hh

    def _explicit_forward(
        self,
        input: torch.Tensor | PackedSequence,
        hx: State | None,
        lengths: torch.Tensor | None,
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        packed = input if isinstance(input, PackedSequence) else None
        unbatched = False
        if packed is not None:
            # Unpack to a time-major padded batch in the caller's order; repack at the end.
            x, lengths = pad_packed_sequence(packed)  # (T, B, I), (B,)
        else:
            x = input
            if x.dim() == 2:  # (T, I): a batch of one
                unbatched = True
                x = x.unsqueeze(1)
                if hx is not None:
                    hx = _map_state(hx, lambda s: s.unsqueeze(1))
            elif self.batch_first:
                x = x.transpose(0, 1)  # (B, T, I) -> (T, B, I): the loop walks the time axis
        T, B = x.size(0), x.size(1)
        D = 2 if self.bidirectional else 1
        is_lstm = self.mode == "LSTM"
        if hx is None:
            zeros = x.new_zeros(self.num_layers * D, B, self.hidden_size)  # (L·D, B, H)
            hx = (zeros, zeros) if is_lstm else zeros
        mask = None
        if lengths is not None:
            steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
            mask = steps < lengths.to(x.device).unsqueeze(0)  # (T, B): True on real steps
        cell = _CELLS[self.mode]

        final_h, final_c = [], []
        layer_input = x  # (T, B, I)
        for layer in range(self.num_layers):
            directions = []
            for direction in range(D):
                index = layer * D + direction  # torch's order in h_n: layer-major
                w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer, reverse=direction == 1)
                x_proj = F.linear(layer_input, w_ih, b_ih)  # (T, B, G·H), every step at once
                state = (hx[0][index], hx[1][index]) if is_lstm else hx[index]  # (B, H)
                out, state = run_direction(
                    cell, x_proj, state, w_hh, b_hh, mask, reverse=direction == 1
                )
                directions.append(out)  # (T, B, H)
                final_h.append(state[0] if is_lstm else state)
                if is_lstm:
                    final_c.append(state[1])
            layer_input = directions[0] if D == 1 else torch.cat(directions, dim=2)  # (T,B,D·H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                # Between layers only: the last layer's outputs leave the stack undropped.
                layer_input = F.dropout(layer_input, self.dropout, training=True)

        output = layer_input  # (T, B, D·H)
        h_n = torch.stack(final_h)  # (L·D, B, H)
        final: State = (h_n, torch.stack(final_c)) if is_lstm else h_n
        if packed is not None:
            return _repack(output, packed), final
        if unbatched:
            return output.squeeze(1), _map_state(final, lambda s: s.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D·H)
        return output, final


def _map_state(state: State, fn: Callable[[torch.Tensor], torch.Tensor]) -> State:
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)  # type: ignore[return-value]


def _repack(output: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """``output`` (T, B, ·), padded and in the caller's order, packed exactly as ``like``."""
    lengths = _lengths_of(like)  # (B,) in the caller's order
    order = like.sorted_indices
    if order is not None:
        output, lengths = output.index_select(1, order), lengths[order.cpu()]
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _lengths_of(packed: PackedSequence) -> torch.Tensor:
    """Lengths (B,) of a packed batch, in the caller's (unsorted) order."""
    batch_sizes = packed.batch_sizes  # (T,): how many sequences are still running at step t
    B = int(batch_sizes[0])
    sorted_lengths = (torch.arange(B).unsqueeze(1) < batch_sizes.unsqueeze(0)).sum(1)  # (B,)
    if packed.unsorted_indices is None:
        return sorted_lengths
    return sorted_lengths[packed.unsorted_indices.cpu()]


class RNN(_TwoPaths, nn.RNN):
    """``torch.nn.RNN`` (tanh or ReLU) with a readable path; same arguments plus
    ``implementation``."""

    def __init__(self, *args: Any, implementation: str = "fused", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_path(implementation)


class LSTM(_TwoPaths, nn.LSTM):
    """``torch.nn.LSTM`` with a readable path; same arguments plus ``implementation``
    (``proj_size`` is not supported)."""

    def __init__(self, *args: Any, implementation: str = "fused", **kwargs: Any) -> None:
        if kwargs.get("proj_size", 0):
            raise ValueError("seqkit's LSTM does not support proj_size")
        super().__init__(*args, **kwargs)
        self._init_path(implementation)


class GRU(_TwoPaths, nn.GRU):
    """``torch.nn.GRU`` with a readable path; same arguments plus ``implementation``."""

    def __init__(self, *args: Any, implementation: str = "fused", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_path(implementation)


RECURRENT_LAYERS: dict[str, type[nn.Module]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def recurrent_stack(cell: str, input_size: int, hidden_size: int, **kwargs: Any) -> nn.Module:
    """An :class:`RNN`, :class:`LSTM` or :class:`GRU` by name (``cell`` in rnn, lstm, gru)."""
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"cell must be one of {CELL_TYPES}, got {cell!r}")
    return RECURRENT_LAYERS[cell](input_size, hidden_size, **kwargs)


# ----------------------------------------------------------------------------- configuration


def _check_common(config: PretrainedConfig) -> None:
    if config.cell not in CELL_TYPES:
        raise ValueError(f"cell must be one of {CELL_TYPES}, got {config.cell!r}")
    if config.implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be one of {IMPLEMENTATIONS}, got {config.implementation!r}"
        )
    if config.nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be tanh or relu, got {config.nonlinearity!r}")
    for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")
    if not 0 <= config.dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")


class RecurrentLMConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`RecurrentLMForCausalLM`.

    transformers 5 configs are dataclasses: each field below is a keyword argument.
    """

    model_type = "seqkit-rnn-lm"
    attribute_map: ClassVar[dict[str, str]] = {"num_hidden_layers": "num_layers"}

    vocab_size: int = 65
    """Number of distinct tokens: rows of the embedding, columns of the logits."""
    cell: str = "lstm"
    """``rnn`` (Elman), ``lstm`` or ``gru``."""
    embedding_size: int = 128
    """Width of the token embedding fed to the first layer."""
    hidden_size: int = 256
    """Width of each layer's hidden state."""
    num_layers: int = 2
    """Stacked recurrent layers."""
    dropout: float | int = 0.0
    """Dropout on the embeddings, between layers and on the last layer's outputs."""
    nonlinearity: str = "tanh"
    """The plain RNN's non-linearity, ``tanh`` or ``relu`` (ignored by LSTM and GRU)."""
    implementation: str = "fused"
    """``fused`` (torch's kernels, the fast default) or ``explicit`` (the cells written out;
    same numbers, slower, for reading). Read at every call, so it can be switched any time."""
    initializer_range: float = 0.1
    """Embedding weights start uniform in ±initializer_range (Zaremba et al. 2014)."""
    use_cache: bool = True
    """Whether generation keeps the recurrent state between steps (it always should)."""
    bos_token_id: int | None = None
    """Beginning-of-sequence token id, if the tokenizer has one."""
    eos_token_id: int | None = None
    """End-of-sequence token id: generation stops once every row has produced it."""
    pad_token_id: int | None = None
    """Padding token id, if the tokenizer has one."""
    tie_word_embeddings: bool = False
    """Share one matrix between the embedding and the output layer (Press & Wolf 2017);
    needs ``embedding_size == hidden_size``."""

    def __post_init__(self, **kwargs: Any) -> None:
        _check_common(self)
        if self.tie_word_embeddings and self.embedding_size != self.hidden_size:
            raise ValueError(
                f"tie_word_embeddings needs embedding_size ({self.embedding_size}) equal to "
                f"hidden_size ({self.hidden_size})"
            )
        super().__post_init__(**kwargs)


class RecurrentClassifierConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`RecurrentForSequenceClassification`.

    The number of classes is the base class's ``num_labels`` (or the length of ``id2label``).
    """

    model_type = "seqkit-rnn-classifier"
    attribute_map: ClassVar[dict[str, str]] = {"num_hidden_layers": "num_layers"}

    vocab_size: int = 65
    """Number of distinct tokens."""
    cell: str = "lstm"
    """``rnn``, ``lstm`` or ``gru``."""
    embedding_size: int = 64
    """Width of the token embedding."""
    hidden_size: int = 128
    """Width of each layer's hidden state (per direction)."""
    num_layers: int = 1
    """Stacked recurrent layers."""
    bidirectional: bool = True
    """Read the text both ways; the summary joins both directions."""
    pooling: str = "last"
    """How the sequence becomes one vector: ``last`` (final states of both directions),
    ``mean`` or ``max`` (over the real, unpadded steps of the last layer's outputs)."""
    dropout: float | int = 0.0
    """Dropout on the embeddings, between layers and on the pooled summary."""
    nonlinearity: str = "tanh"
    """The plain RNN's non-linearity, ``tanh`` or ``relu``."""
    implementation: str = "fused"
    """``fused`` or ``explicit``; see :class:`RecurrentLMConfig`."""
    initializer_range: float = 0.1
    """Embedding weights start uniform in ±initializer_range."""
    pad_token_id: int | None = 0
    """Id used to pad short texts; ``attention_mask`` (or this id) marks the real tokens."""

    def __post_init__(self, **kwargs: Any) -> None:
        _check_common(self)
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        super().__post_init__(**kwargs)


# ----------------------------------------------------------------------------- shared pieces


class _RecurrentPreTrainedModel(PreTrainedModel):
    """Initialisation shared by both models."""

    main_input_name = "input_ids"
    # transformers' get/set_input_embeddings (resizing, tying with ``lm_head``) find the token
    # embedding by this name.
    _input_embed_layer = "embedding"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """torch's own schemes, through transformers' init functions (which skip weights that
        were loaded from a checkpoint): recurrent weights and biases U(±1/√H), linear layers
        U(±1/√fan_in) with zero bias, embeddings U(±initializer_range)."""
        if isinstance(module, nn.RNNBase):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for weight in module.parameters(recurse=False):
                init.uniform_(weight, -bound, bound)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.in_features)
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            r = self.config.initializer_range
            init.uniform_(module.weight, -r, r)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout, skipped outright when it would do nothing (no extra pass over memory)."""
        if self.training and self.dropout.p > 0:
            return self.dropout(x)
        return x

    def _stack(self, config: PretrainedConfig, bidirectional: bool) -> nn.Module:
        extra = {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        return recurrent_stack(
            config.cell,
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            implementation=config.implementation,
            **extra,
        )


def _lengths_from_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Lengths (B,) of a right-padded batch from its (B, T) mask; None when nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    lengths = attention_mask.long().sum(dim=1)  # (B,)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    if not torch.equal(attention_mask.bool(), positions.unsqueeze(0) < lengths.unsqueeze(1)):
        raise ValueError("recurrent models need right padding: attention_mask rows like 1 1 1 0 0")
    return lengths


# ----------------------------------------------------------------------------- language model


class RecurrentLMForCausalLM(_RecurrentPreTrainedModel, GenerationMixin):
    """A recurrent language model: embedding → RNN/LSTM/GRU stack → linear layer over the
    vocabulary (Mikolov et al. 2010; Karpathy's char-rnn; Zaremba et al. 2014).

    ``labels`` follow seqkit's GPT convention: next-token targets already aligned with the
    inputs (``labels[:, t]`` follows ``input_ids[:, t]``), -100 ignored.

    The cache that :func:`seqkit.generation.generate` hands back is the recurrent state itself:
    everything the model remembers of the past is in h (and c), so continuing a text costs one
    step per new token, and there is no context limit (the config has no ``n_positions``).
    ``transformers``' ``generate()`` and ``pipeline("text-generation")`` hand the same state
    back (passed as ``cache=``); strategies that reorder a ``Cache`` (beam search) are not
    supported, as the state is not one.
    """

    config_class = RecurrentLMConfig
    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "embedding.weight"}

    def __init__(self, config: RecurrentLMConfig) -> None:
        super().__init__(config)
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = self._stack(config, bidirectional=False)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not create a DynamicCache: the state is not per-layer keys/values.
        return False

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: torch.LongTensor | None = None,
        past_key_values: State | None = None,
        use_cache: bool = False,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Next-token logits for every position, and the loss when ``labels`` are given.

        Args:
            input_ids: (B, T) token ids.
            labels: (B, T) next-token targets aligned with the inputs; -100 does not count.
            past_key_values: the recurrent state returned by an earlier call with
                ``use_cache=True`` (h, or (h, c) for the LSTM, each (L, B, H)); the new tokens
                continue from it. The name is the one generic generation code passes;
                transformers' ``generate()`` passes it as ``cache=``.
            use_cache: return the final state as the output's cache.
            attention_mask: (B, T), 1 on real tokens; right padding only. Padded rows end
                their state at their own last token.
            **kwargs: ignored (accepted from generic callers).
        """
        past_key_values = cache_argument(past_key_values, kwargs)
        if past_key_values is not None and attention_mask is not None:
            # generate() extends the mask over the whole text while feeding one new token.
            attention_mask = attention_mask[:, -input_ids.size(1) :]
        lengths = _lengths_from_mask(attention_mask)
        x = self._drop(self.embedding(input_ids))  # (B, T, E)
        output, state = self.rnn.run(
            x, past_key_values, lengths, implementation=self.config.implementation
        )  # (B, T, H), state (L, B, H) or a pair
        logits = self.lm_head(self._drop(output))  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100
            )
        return causal_lm_output(logits, loss, state if use_cache else None)


# ----------------------------------------------------------------------------- classifier


class RecurrentForSequenceClassification(_RecurrentPreTrainedModel):
    """A recurrent text classifier: embedding → (bidirectional) stack → pooled summary →
    linear layer over the classes. The loss is cross-entropy against ``labels`` (B,)."""

    config_class = RecurrentClassifierConfig

    def __init__(self, config: RecurrentClassifierConfig) -> None:
        super().__init__(config)
        self.embedding = nn.Embedding(
            config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id
        )
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = self._stack(config, bidirectional=config.bidirectional)
        directions = 2 if config.bidirectional else 1
        self.classifier = nn.Linear(directions * config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Class logits (B, C) for a right-padded batch ``input_ids`` (B, T); the loss when
        ``labels`` (B,) are given. Without ``attention_mask`` every token is real."""
        lengths = _lengths_from_mask(attention_mask)
        x = self._drop(self.embedding(input_ids))  # (B, T, E)
        output, state = self.rnn.run(x, None, lengths, implementation=self.config.implementation)
        summary = self._pool(output, state, attention_mask if lengths is not None else None)
        logits = self.classifier(self._drop(summary))  # (B, C)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def _pool(
        self, output: torch.Tensor, state: State, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """One vector (B, D·H) per text from the outputs (B, T, D·H) or the final state."""
        pooling = self.config.pooling
        if pooling == "last":
            h = state[0] if isinstance(state, tuple) else state  # (L·D, B, H)
            directions = 2 if self.config.bidirectional else 1
            # The top layer's final states: forwards after the last token, backwards after
            # the first; side by side.
            return torch.cat(list(h[-directions:]), dim=1)  # (B, D·H)
        if attention_mask is None:
            return output.mean(dim=1) if pooling == "mean" else output.amax(dim=1)
        real = attention_mask.bool().unsqueeze(2)  # (B, T, 1)
        if pooling == "mean":
            return (output * real).sum(dim=1) / real.sum(dim=1)  # (B, D·H)
        return output.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, D·H)


# ----------------------------------------------------------------------------- recipe builder


@dataclass
class RecurrentBuilder(ModelBuilder):
    """The ``model`` section of a recipe that trains a recurrent network
    (``model.architecture: recurrent``): a language model (``task: causal-lm``) or a text
    classifier (``task: classification``). A field that applies to one task only says so, and
    setting it for the other task is refused."""

    cell: str = "lstm"
    """rnn, lstm or gru."""
    embedding_size: int = 128
    """Width of the token embedding."""
    hidden_size: int = 256
    """Width of each layer's hidden state (per direction)."""
    num_layers: int = 2
    """Stacked recurrent layers."""
    dropout: float = 0.0
    """Dropout on embeddings, between layers and on the top layer's outputs."""
    nonlinearity: str = "tanh"
    """The plain RNN's non-linearity: tanh or relu."""
    implementation: str = "fused"
    """fused (torch's kernels, default) or explicit (the cells written out, proven equal)."""
    tie_weights: bool = False
    """causal-lm only: share the embedding with the output layer (needs embedding_size ==
    hidden_size)."""
    block_size: int | None = None
    """causal-lm only: tokens per training window (the truncated back-propagation length;
    default 128), unless data.block_size is set: every window starts from a zero state."""
    bidirectional: bool | None = None
    """classification only: read each text both ways (default true)."""
    pooling: str | None = None
    """classification only: last (final states, default), mean or max over the outputs."""
    max_length: int | None = None
    """classification only: tokens read per text (default 256; longer texts are truncated, and
    the run says so), unless data.max_length is set."""

    heads: ClassVar[dict[str, type]] = {
        "causal-lm": RecurrentLMForCausalLM,
        "classification": RecurrentForSequenceClassification,
    }
    shape_fields: ClassVar[dict[str, str]] = same_names(
        "cell", "embedding_size", "hidden_size", "num_layers"
    )

    ONLY_FOR: ClassVar[dict[str, str]] = {
        "tie_weights": "causal-lm",
        "block_size": "causal-lm",
        "bidirectional": "classification",
        "pooling": "classification",
        "max_length": "classification",
    }
    """Fields that apply to one task only."""
    DEFAULT_BLOCK_SIZE: ClassVar[int] = 128
    DEFAULT_MAX_LENGTH: ClassVar[int] = 256

    def __post_init__(self) -> None:
        checks.check_choice("model.cell", self.cell, CELL_TYPES)
        checks.check_choice("model.nonlinearity", self.nonlinearity, ("tanh", "relu"))
        checks.check_choice("model.implementation", self.implementation, IMPLEMENTATIONS)
        if self.pooling is not None:
            checks.check_choice("model.pooling", self.pooling, POOLINGS)
        checks.check_ranges(
            "model",
            self,
            {
                "embedding_size": checks.count(1, checks.MAX_WIDTH),
                "hidden_size": checks.count(1, checks.MAX_WIDTH),
                "num_layers": checks.count(1, checks.MAX_DEPTH),
                "dropout": checks.probability(),
                "block_size": checks.count(1, checks.MAX_POSITIONS),
                "max_length": checks.count(1, checks.MAX_POSITIONS),
            },
        )
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise UserError(
                f"model.tie_weights needs model.embedding_size ({self.embedding_size}) equal "
                f"to model.hidden_size ({self.hidden_size})"
            )

    def check_task(self, task: str) -> None:
        """Also refuses a field of the other task that the recipe sets (it would otherwise be
        ignored without a word)."""
        super().check_task(task)
        for name, only in self.ONLY_FOR.items():
            if only != task and getattr(self, name) not in (None, False):
                raise UserError(f"model.{name} applies to task {only} only, not {task}")

    @property
    def _bidirectional(self) -> bool:
        return True if self.bidirectional is None else self.bidirectional

    @property
    def _pooling(self) -> str:
        return self.pooling or "last"

    def config(self, task: str, facts: dict[str, Any]) -> PretrainedConfig:
        self.check_task(task)
        if "vocab_size" not in facts:
            raise UserError(
                "model.architecture recurrent reads token ids; use data.module labelled-text "
                "(classification) or text (causal-lm)"
            )
        common = {
            "vocab_size": facts["vocab_size"],
            "cell": self.cell,
            "embedding_size": self.embedding_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "nonlinearity": self.nonlinearity,
            "implementation": self.implementation,
        }
        if task == "classification":
            return RecurrentClassifierConfig(
                **common,
                bidirectional=self._bidirectional,
                pooling=self._pooling,
                pad_token_id=facts["pad_token_id"],
                id2label=dict(facts["id2label"]),
            )
        return RecurrentLMConfig(**common, tie_word_embeddings=self.tie_weights)

    def from_init(self, task: str, folder: Any, facts: dict[str, Any]) -> PreTrainedModel | None:
        """A classifier folder must match the recipe's shape, direction and pooling too (the
        language model's sizes are checked by the generic path)."""
        if task != "classification":
            return None
        from seqkit.parts.compose import load_init_from

        expected: dict[str, Any] = {
            "cell": self.cell,
            "embedding_size": self.embedding_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self._bidirectional,
            "pooling": self._pooling,
        }
        if self.cell == "rnn":
            expected["nonlinearity"] = self.nonlinearity
        model = load_init_from(
            folder, RecurrentForSequenceClassification, "seqkit recurrent classifier", expected
        )
        model.config.implementation = self.implementation
        return model

    def runtime_settings(self) -> dict[str, Any]:
        return {"implementation": self.implementation}

    def window(self, config: Any) -> tuple[int, int | None]:
        # A recurrent network reads any length: the window is what the recipe asks for.
        if isinstance(config, RecurrentClassifierConfig):
            return self.max_length or self.DEFAULT_MAX_LENGTH, None
        return self.block_size or self.DEFAULT_BLOCK_SIZE, None

    def card_tags(self) -> list[str]:
        return [self.cell, "rnn"]
