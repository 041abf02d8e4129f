"""GPT as a ``transformers`` model: its config, the model that trains and loads through the
Auto classes, its recipe section, and conversion to and from GPT-2.

The network itself — attention, feed-forward, blocks, and the computation from tokens to hidden
states — is :mod:`seqkit.models.gpt_network`, in plain PyTorch; this file adds what makes it a
Hub model. :class:`GPTConfig` and :class:`GPTLMHeadModel` mirror ``transformers``' GPT-2 names
(``n_embd``, ``transformer.h.0.attn.c_attn.weight`` …), so converting to and from
``transformers.GPT2LMHeadModel`` is a renaming plus a transpose: GPT-2 stores its projections as
``Conv1D`` with weights shaped ``[in, out]`` while ``nn.Linear`` stores ``[out, in]`` (see
:func:`gpt2_state_dict_to_seqkit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import GPT2Config, PretrainedConfig
from transformers import initialization as init

from seqkit.models.attention import ATTENTION_PATHS
from seqkit.models.causal_lm import DecoderOnlyBuilder, KeyValueCausalLM
from seqkit.models.gpt_network import (
    ACTIVATIONS,
    MLP,
    TANH_GELU_NAMES,
    CausalSelfAttention,
    GPTNetwork,
    StandaloneGPT,
)
from seqkit.models.initialization import normal_init

# ----------------------------------------------------------------------------- configuration


class GPTConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`GPTLMHeadModel`; the names and defaults are GPT-2's.

    transformers 5 configs are dataclasses: each field below is a keyword argument of the
    constructor. The special token ids are fields here, as in every transformers 5 model config
    (the base class no longer declares them); any other ``PretrainedConfig`` keyword argument is
    forwarded to, and handled by, the base class.
    """

    model_type = StandaloneGPT.model_type
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


class GPTLMHeadModel(GPTNetwork, KeyValueCausalLM):
    """GPT-2: embeddings, ``n_layer`` blocks, a final LayerNorm and a tied output projection.

    ``forward``, its ``labels`` convention (next-token targets already aligned with the inputs,
    nanoGPT's ``targets``; ``transformers.GPT2LMHeadModel`` shifts them itself) and its cache
    are :class:`~seqkit.models.causal_lm.KeyValueCausalLM`'s; its layers and the computation of
    the hidden states (:meth:`~seqkit.models.gpt_network.GPTNetwork.decode`) are the network's.
    """

    config_class = GPTConfig
    base_model_prefix = "transformer"
    _no_split_modules = ["Block"]  # noqa: RUF012 - transformers reads these as class attributes
    # transformers 5 declares tied parameters as {target: source}; save_pretrained then stores one
    # tensor for the pair and from_pretrained re-ties them, with no "missing key" warning.
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}  # noqa: RUF012

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.build_network(config)
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
