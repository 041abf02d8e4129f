"""GPT ↔ ``transformers.GPT2LMHeadModel``: export to, and import from, the stock GPT-2 class.

seqkit's :class:`~seqkit.models.gpt.GPTLMHeadModel` is GPT-2 (Radford et al. 2019) written layer
by layer with the checkpoint's parameter names, so the conversion is the one in
:mod:`seqkit.models.gpt`: the same names, with the four ``Conv1D`` projections of every block
transposed (GPT-2 stores them ``[in, out]``, ``nn.Linear`` ``[out, in]``). The configs share
every hyper-parameter (GELU variant, LayerNorm epsilon, tied embeddings), so the two classes
compute the same function; the tests hold the logits equal within 1e-4 and greedy generations
equal token for token.

The stock class has options seqkit's GPT does not implement (cross-attention, attention scaled by
layer index, unscaled attention); a GPT-2 folder that uses one is refused on import rather than
loaded into a model that would compute something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import GPT2Config, GPT2LMHeadModel

from seqkit.export.formats import (
    WrittenModel,
    refuse_unsupported_options,
    write_native_causal_lm,
    write_stock_causal_lm,
)
from seqkit.export.source import ExportSource
from seqkit.folders import check_vocabulary, load_weights
from seqkit.models.gpt import GPTLMHeadModel, gpt2_state_dict_to_seqkit, seqkit_state_dict_to_gpt2
from seqkit.models.gpt_config import GPTConfig
from seqkit.models.gpt_network import ACTIVATIONS, TANH_GELU_NAMES

SEQKIT_MODEL_TYPES = (GPTConfig.model_type,)
STOCK_MODEL_TYPES = ("gpt2",)

# GPT-2 options, their only value seqkit's GPT implements, and what the option does.
_FIXED_GPT2_OPTIONS = {
    "scale_attn_weights": (True, "attention scores divided by √head_size"),
    "scale_attn_by_inverse_layer_idx": (False, "attention scaled by 1/(layer index + 1)"),
    "add_cross_attention": (False, "cross-attention layers"),
}


# ----------------------------------------------------------------------------- conversion


def to_gpt2(model: GPTLMHeadModel) -> GPT2LMHeadModel:
    """The stock ``GPT2LMHeadModel`` computing the same function as ``model``."""
    stock = GPT2LMHeadModel(model.config.to_gpt2_config())
    stock.load_state_dict(seqkit_state_dict_to_gpt2(model.state_dict()), strict=True)
    return stock.eval()


def from_gpt2(stock: GPT2LMHeadModel) -> GPTLMHeadModel:
    """seqkit's :class:`GPTLMHeadModel` computing the same function as the stock ``stock``."""
    check_gpt2_config(stock.config)
    model = GPTLMHeadModel(GPTConfig.from_gpt2_config(stock.config))
    model.load_state_dict(gpt2_state_dict_to_seqkit(stock.state_dict()), strict=True)
    return model.eval()


def check_gpt2_config(config: GPT2Config) -> None:
    """Refuse a GPT-2 configuration that seqkit's GPT cannot reproduce exactly."""
    refuse_unsupported_options(
        config,
        "GPT-2",
        "seqkit's GPT",
        _FIXED_GPT2_OPTIONS,
        {"activation_function": (*ACTIVATIONS, *TANH_GELU_NAMES)},
    )


# ----------------------------------------------------------------------------- loading


def _load_any(folder: Path, model_type: str) -> GPTLMHeadModel:
    """A seqkit GPT from a folder of either kind (seqkit-gpt or stock gpt2)."""
    if model_type in STOCK_MODEL_TYPES:
        return from_gpt2(load_weights(GPT2LMHeadModel, folder))
    return load_weights(GPTLMHeadModel, folder).eval()


def load_stock_gpt2(folder: Path) -> tuple[GPTLMHeadModel, Any]:
    """``(model, tokenizer)`` in seqkit's classes from a stock GPT-2 folder (for ``seqkit
    generate`` and ``seqkit evaluate``); the tokenizer is whichever kind the folder holds."""
    from seqkit.data import load_tokenizer

    model = _load_any(Path(folder), "gpt2")
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model, tokenizer


# ----------------------------------------------------------------------------- export writers


def to_transformers(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` as a stock ``GPT2LMHeadModel`` folder with its tokenizer."""
    stock = to_gpt2(_load_any(source.folder, source.model_type))
    return write_stock_causal_lm(
        source, folder, stock, context=stock.config.n_positions, tags=["gpt2", "text-generation"]
    )


def to_native(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` (a stock GPT-2 folder, or a seqkit one) in seqkit's own classes."""
    model = _load_any(source.folder, source.model_type)
    return write_native_causal_lm(source, folder, model, tags=["gpt", "text-generation"])
