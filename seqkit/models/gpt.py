"""GPT: a decoder-only Transformer language model, written layer by layer.

The architecture is GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners"): token and learned position embeddings, a stack of pre-LayerNorm Transformer blocks
(Vaswani et al. 2017, "Attention Is All You Need") whose self-attention is masked so that each
position sees only the past, a final LayerNorm, and an output projection that shares its weights
with the token embedding.

The file reads top to bottom: the attention layer, the feed-forward layer, the block that joins
them, the configuration, and finally the whole model. Parameter names mirror the GPT-2 checkpoint
(``transformer.h.0.attn.c_attn.weight`` …) so that converting to and from
``transformers.GPT2LMHeadModel`` is a renaming plus a transpose: GPT-2 stores its projections as
``Conv1D`` with weights shaped ``[in, out]`` while ``nn.Linear`` stores ``[out, in]``
(see :func:`gpt2_state_dict_to_seqkit`).

Shape legend used in the comments: B batch, T new positions, S positions attended to (past + new),
C = n_embd, nh = n_head, hs = C // nh (head size), V = vocab_size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, PretrainedConfig
from transformers import initialization as init

from seqkit.models.attention import ATTENTION_PATHS, scaled_dot_product_attention
from seqkit.models.causal_lm import DecoderOnlyBuilder, KeyValueCausalLM
from seqkit.models.initialization import normal_init

# One layer's cache: keys and values of every position seen so far, each (B, nh, S, hs). The
# cache is a plain tuple of these, one per layer, extended by concatenation. A preallocated
# buffer written in place measured no faster at these sizes (the concatenation is a few µs next
# to the matmuls), and an immutable cache can be shared by several continuations (beam search)
# without one overwriting another.
LayerKV = tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------- activation

# gelu_new(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))          (GPT-2's tanh approximation)
#             = x·σ(z),  z = x·(a + b·x²),  a = 2√(2/π),  b = 0.044715·a
# because 0.5·(1 + tanh(u)) = σ(2u). The two forms are the same function; the second is the
# fast one on CPU, where ATen's vectorised tanh runs about 3× slower than its sigmoid (AVX2,
# 768×512: tanh 0.90 ms, sigmoid 0.28 ms). Inside the GPT benchmark's training step (12×64×512
# activations, medians) F.gelu(approximate="tanh") takes 0.88 ms forward and 1.39 ms backward,
# the function below 0.72 ms and 0.82 ms. A test checks both forms against each other, values
# and gradients.
_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_B = 0.044715 * _GELU_A
# addcmul(a, x, x, value=b) computes a + b·x² in one pass; its ``a`` must be a tensor.
_GELU_A_TENSOR = torch.tensor(_GELU_A)


class _SigmoidFormGELU(torch.autograd.Function):
    """gelu_new as x·σ(x·(a + b·x²)), with a hand-written backward: fewer passes over memory
    than autograd's chain of elementwise ops, and as few fresh tensors as possible.

    Fresh tensors matter as much as passes here: each activation-sized buffer is memory the
    allocator must find and the cache must load. The forward makes the two it must keep (σ(z)
    and the output); the backward makes one, the gradient it returns, and computes everything
    else in place there. The output is saved too, which costs no memory (the next layer, c_proj,
    keeps it for its own backward anyway) and replaces a multiplication by x·σ(z) in the
    backward.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        s = torch.addcmul(_GELU_A_TENSOR, x, x, value=_GELU_B).mul_(x).sigmoid_()  # σ(z)
        y = x * s
        ctx.save_for_backward(x, s, y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        x, s, y = ctx.saved_tensors
        # d/dx [x·σ(z)] = σ(z) + x·σ(z)·(1 − σ(z))·dz/dx,   dz/dx = a + 3b·x²,   y = x·σ(z)
        out = torch.addcmul(_GELU_A_TENSOR, x, x, value=3.0 * _GELU_B).mul_(y)  # y·dz/dx
        out.addcmul_(out, s, value=-1.0)  # · (1 − σ(z)), without a buffer for 1 − σ(z)
        return out.add_(s).mul_(grad)


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    if x.requires_grad and x.device.type == "cpu":
        return _SigmoidFormGELU.apply(x)
    # Without a backward to save (inference, e.g. one token at a time while generating) and
    # off the CPU, the single fused call has the least overhead.
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {"gelu_new": gelu_new, "gelu": F.gelu, "relu": F.relu}
TANH_GELU_NAMES = ("gelu_pytorch_tanh",)
"""Names ``transformers`` gives the tanh approximation of GELU besides ``gelu_new``: read as
``gelu_new`` (:meth:`GPTConfig.from_gpt2_config`)."""


# ----------------------------------------------------------------------------- attention


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t attends only to positions ≤ t.

    The projections are GPT-2's (one fused ``c_attn`` for queries, keys and values, so the
    weights convert to ``transformers``' GPT-2 by name); the attention itself is
    :func:`seqkit.models.attention.scaled_dot_product_attention`, shared with BERT, the
    Transformer and the open-model decoder, with its two interchangeable paths (a test proves
    them equal): ``"sdpa"`` (default), a fused kernel that never materialises the T×T attention
    matrix, and ``"explicit"``, the formula softmax(QKᵀ/√hs + causal mask)·V spelled out.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head
        # Read at every call, so that switching ``model.config.attention`` takes effect at once.
        self.config = config
        self.attn_pdrop = config.attn_pdrop
        # One matmul projects the input to queries, keys and values at once (fused qkv).
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        # Mixes the heads back into the residual stream.
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self, x: torch.Tensor, past_key_value: LayerKV | None = None
    ) -> tuple[torch.Tensor, LayerKV]:
        """Attend over ``past_key_value`` (earlier positions, may be None) and ``x`` itself.

        Returns the output (B, T, C) and this layer's updated cache ``(k, v)``, each (B, nh, S, hs).
        """
        B, T, C = x.shape
        # (B, T, 3C) viewed as (B, T, 3, nh, hs); unbinding the "3" axis gives q, k and v as
        # strided views, so no copy is made before the kernel reads them.
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, self.head_size)
        q, k, v = qkv.unbind(dim=2)  # each (B, T, nh, hs)
        q = q.transpose(1, 2)  # (B, nh, T, hs)
        k = k.transpose(1, 2)  # (B, nh, T, hs)
        v = v.transpose(1, 2)  # (B, nh, T, hs)
        if past_key_value is not None:
            past_k, past_v = past_key_value
            k = torch.cat((past_k, k), dim=2)  # (B, nh, S, hs), S = past + T
            v = torch.cat((past_v, v), dim=2)  # (B, nh, S, hs)
        # The attention itself is the one every seqkit Transformer shares (fused or explicit).
        y, _ = scaled_dot_product_attention(
            q,
            k,
            v,
            causal=True,
            dropout_p=self.attn_pdrop if self.training else 0.0,
            path=self.config.attention,
        )  # (B, nh, T, hs)

        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, nh, hs) -> (B, T, C): heads side by side
        y = self.c_proj(y)  # (B, T, C)
        if self.training and self.resid_dropout.p > 0:
            y = self.resid_dropout(y)
        return y, (k, v)


# ----------------------------------------------------------------------------- feed-forward


class MLP(nn.Module):
    """The position-wise feed-forward layer: expand to ``n_inner``, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, inner)
        self.act = ACTIVATIONS[config.activation_function]
        self.c_proj = nn.Linear(inner, config.n_embd)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.c_fc(x))  # (B, T, n_inner)
        x = self.c_proj(x)  # (B, T, C)
        if self.training and self.dropout.p > 0:
            x = self.dropout(x)
        return x


# ----------------------------------------------------------------------------- block


class Block(nn.Module):
    """One Transformer block, pre-LayerNorm as in GPT-2: x + attn(ln(x)), then x + mlp(ln(x)).

    Normalising *before* each sub-layer keeps the residual stream an untouched sum of updates,
    which is what lets deep stacks train without warm-up tricks.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, past_key_value: LayerKV | None = None
    ) -> tuple[torch.Tensor, LayerKV]:
        attn_out, present = self.attn(self.ln_1(x), past_key_value)
        x = x + attn_out  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))  # (B, T, C)
        return x, present


# ----------------------------------------------------------------------------- configuration


class GPTConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`GPTLMHeadModel`; the names and defaults are GPT-2's.

    transformers 5 configs are dataclasses: each field below is a keyword argument of the
    constructor. The special token ids are fields here, as in every transformers 5 model config
    (the base class no longer declares them); any other ``PretrainedConfig`` keyword argument is
    forwarded to, and handled by, the base class.
    """

    model_type = "seqkit-gpt"
    # Generic names that other libraries (and transformers' own helpers) look for.
    attribute_map = {  # noqa: RUF012 - a class-level constant, as in every transformers config
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 50257
    """Number of distinct tokens: rows of the token embedding, columns of the logits."""
    n_positions: int = 1024
    """Context length (block size): the model has learned position embeddings up to here only."""
    n_embd: int = 768
    """Width of the residual stream (embedding dimension); must be divisible by ``n_head``."""
    n_layer: int = 12
    """Number of Transformer blocks."""
    n_head: int = 12
    """Attention heads per block; each head has ``n_embd // n_head`` dimensions."""
    n_inner: int | None = None
    """Hidden width of the feed-forward layer; None means ``4 * n_embd``."""
    activation_function: str = "gelu_new"
    """Feed-forward non-linearity: ``gelu_new`` (GPT-2's tanh approximation), ``gelu`` or
    ``relu``."""
    resid_pdrop: float | int = 0.1
    """Dropout on the output of each attention and feed-forward layer."""
    embd_pdrop: float | int = 0.1
    """Dropout on the sum of token and position embeddings."""
    attn_pdrop: float | int = 0.1
    """Dropout on the attention probabilities."""
    layer_norm_epsilon: float = 1e-5
    """Added to the variance in every LayerNorm."""
    initializer_range: float = 0.02
    """Standard deviation of the normal initialisation of weights (GPT-2: 0.02)."""
    attention: str = "sdpa"
    """``sdpa`` (fused ``F.scaled_dot_product_attention``, the fast default) or ``explicit``
    (softmax(QKᵀ/√d + mask)V written out; same numbers, slower, for reading)."""
    use_cache: bool = True
    """Whether generation helpers should keep a key/value cache by default."""
    bos_token_id: int | None = None
    """Beginning-of-sequence token id, if the tokenizer has one."""
    eos_token_id: int | None = None
    """End-of-sequence token id: generation stops once every row has produced it."""
    pad_token_id: int | None = None
    """Padding token id, if the tokenizer has one."""
    tie_word_embeddings: bool = True
    """Share one matrix between the token embedding and the output projection (as GPT-2)."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "every head gets n_embd // n_head dimensions"
            )
        if self.attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}")
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(
                f"activation_function must be one of {tuple(ACTIVATIONS)}, "
                f"got {self.activation_function!r}"
            )
        super().__post_init__(**kwargs)

    # The two architectures share every hyper-parameter except ``attention`` (ours only).
    _GPT2_FIELDS = (
        "vocab_size",
        "n_positions",
        "n_embd",
        "n_layer",
        "n_head",
        "n_inner",
        "activation_function",
        "resid_pdrop",
        "embd_pdrop",
        "attn_pdrop",
        "layer_norm_epsilon",
        "initializer_range",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "tie_word_embeddings",
    )

    @classmethod
    def from_gpt2_config(cls, config: GPT2Config, **overrides: Any) -> GPTConfig:
        """The seqkit config of a ``transformers.GPT2Config`` (``overrides`` win).

        ``gelu_pytorch_tanh`` (PyTorch's fused ``F.gelu(approximate="tanh")``, which newer
        GPT-2 configs name) is the same function as ``gelu_new``, and becomes it."""
        values = {name: getattr(config, name, None) for name in cls._GPT2_FIELDS}
        if values["activation_function"] in TANH_GELU_NAMES:
            values["activation_function"] = "gelu_new"
        if values["tie_word_embeddings"] is None:
            values["tie_word_embeddings"] = True
        return cls(**{**values, **overrides})

    def to_gpt2_config(self, **overrides: Any) -> GPT2Config:
        """The ``transformers.GPT2Config`` describing the same network (``overrides`` win)."""
        values = {name: getattr(self, name) for name in self._GPT2_FIELDS}
        return GPT2Config(**{**values, **overrides})


# ----------------------------------------------------------------------------- the model


class GPTLMHeadModel(KeyValueCausalLM):
    """GPT-2: embeddings, ``n_layer`` blocks, a final LayerNorm and a tied output projection.

    ``forward``, its ``labels`` convention (next-token targets already aligned with the inputs,
    nanoGPT's ``targets``; ``transformers.GPT2LMHeadModel`` shifts them itself) and its cache
    are :class:`~seqkit.models.causal_lm.KeyValueCausalLM`'s; this class computes the hidden
    states (:meth:`decode`).
    """

    config_class = GPTConfig
    base_model_prefix = "transformer"
    _no_split_modules = ["Block"]  # noqa: RUF012 - transformers reads these as class attributes
    # transformers 5 declares tied parameters as {target: source}; save_pretrained then stores one
    # tensor for the pair and from_pretrained re-ties them, with no "missing key" warning.
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}  # noqa: RUF012

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),  # token embedding
                "wpe": nn.Embedding(config.n_positions, config.n_embd),  # position embedding
                "drop": nn.Dropout(config.embd_pdrop),
                "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                "ln_f": nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()  # initialise weights (``_init_weights``) and tie lm_head to wte

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms, and the
        residual projections scaled by 1/√(2·n_layer) so the residual stream's variance does not
        grow with depth (two residual branches per block)."""
        std = self.config.initializer_range
        normal_init(module, std)
        # Parents are visited after their children, so this overrides the plain init above.
        if isinstance(module, (CausalSelfAttention, MLP)):
            init.normal_(
                module.c_proj.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer)
            )

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.transformer.wte = value

    def decode(
        self,
        input_ids: torch.LongTensor,
        past_key_values: tuple[LayerKV, ...] | None,
        past_length: int,
        position_ids: torch.LongTensor | None,
        use_cache: bool,
    ) -> tuple[torch.Tensor, list[LayerKV] | None]:
        """The final hidden states (B, T, C) of the new tokens, and every layer's keys and
        values so far when ``use_cache`` (the rest of ``forward`` is
        :class:`~seqkit.models.causal_lm.KeyValueCausalLM`'s)."""
        T = input_ids.size(1)
        tok_emb = self.transformer.wte(input_ids)  # (B, T, C)
        if position_ids is None:
            # Positions continue after the cache: past, past + 1, …, past + T - 1. Their
            # embeddings are consecutive rows of wpe, so a slice (a view, whose backward is a
            # plain copy) replaces building the indices and gathering rows.
            if past_length + T > self.config.n_positions:
                raise ValueError(
                    f"sequence of {past_length + T} tokens is longer than the context "
                    f"({self.config.n_positions} positions)"
                )
            pos_emb = self.transformer.wpe.weight[past_length : past_length + T]  # (T, C)
        else:
            if int(position_ids.max()) >= self.config.n_positions:
                raise ValueError(
                    f"position {int(position_ids.max())} is outside the context "
                    f"({self.config.n_positions} positions): the sequence is longer than it"
                )
            pos_emb = self.transformer.wpe(position_ids)  # (T, C) or (B, T, C)
        x = tok_emb + pos_emb  # (B, T, C): (T, C) broadcasts over the batch
        if self.training and self.transformer.drop.p > 0:
            x = self.transformer.drop(x)

        presents: list[LayerKV] | None = [] if use_cache else None
        for i, block in enumerate(self.transformer.h):
            x, present = block(x, past_key_values[i] if past_key_values is not None else None)
            if presents is not None:
                presents.append(present)
        return self.transformer.ln_f(x), presents  # (B, T, C)


# ----------------------------------------------------------------------------- recipe builder


@dataclass
class GPTBuilder(DecoderOnlyBuilder):
    """The ``model`` section of a recipe that trains a GPT (``model.architecture: gpt``): the
    decoder-only sizes, learned positions up to ``block_size``, and one ``dropout`` on
    embeddings, attention probabilities and residual branches."""

    heads: ClassVar[dict[str, type]] = {"causal-lm": GPTLMHeadModel}
    tags: ClassVar[tuple[str, ...]] = ("gpt",)
    stock: ClassVar[dict[str, str]] = {"gpt2": "seqkit.export.gpt:load_stock_gpt2"}

    def config(self, task: str, facts: dict[str, Any]) -> GPTConfig:
        return GPTConfig(
            **self.common_config(facts),
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
        )


# Projections that GPT-2 stores as Conv1D ([in, out]) and we store as nn.Linear ([out, in]).
_CONV1D_SUFFIXES = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)


def gpt2_state_dict_to_seqkit(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a ``transformers.GPT2LMHeadModel`` state dict into a :class:`GPTLMHeadModel` one.

    The names are already equal; the Conv1D weights are transposed, and GPT-2's non-parameter
    buffers (old checkpoints' ``attn.bias``/``attn.masked_bias`` causal masks) are dropped.
    A missing ``lm_head.weight`` (tied checkpoints may omit it) is taken from ``wte``.
    """
    converted = {}
    for name, tensor in state_dict.items():
        # The leading dot matters: "attn.c_attn.bias" is a real parameter.
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        if name.endswith(_CONV1D_SUFFIXES):
            tensor = tensor.t().contiguous()
        converted[name] = tensor
    if "lm_head.weight" not in converted and "transformer.wte.weight" in converted:
        converted["lm_head.weight"] = converted["transformer.wte.weight"]
    return converted


def seqkit_state_dict_to_gpt2(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a :class:`GPTLMHeadModel` state dict into a ``transformers.GPT2LMHeadModel`` one
    (the inverse of :func:`gpt2_state_dict_to_seqkit`)."""
    return {
        name: tensor.t().contiguous() if name.endswith(_CONV1D_SUFFIXES) else tensor
        for name, tensor in state_dict.items()
    }
