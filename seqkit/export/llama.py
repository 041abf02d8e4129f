"""Decoder ↔ ``transformers.LlamaForCausalLM``: export to, and import from, the stock Llama class.

seqkit's :class:`~seqkit.models.decoder.DecoderForCausalLM` is the Llama architecture (Touvron
et al. 2023) written from the papers: RMSNorm, rotary positions in Llama's half-rotation layout,
grouped-query attention and SwiGLU, with Llama's parameter names except inside the attention
layer that seqkit shares between its Transformers. The conversion is therefore a renaming and
nothing else (no transpose, no permutation), written down once in :data:`LAYER_NAMES` and
:data:`MODEL_NAMES`, plus a field-by-field mapping of the two configs. The tests hold the
logits of the two classes equal within 1e-4 and their greedy generations equal, both ways.

``LlamaConfig`` can describe networks the seqkit decoder does not compute — scaled rotary
positions (``rope_parameters`` other than the default, e.g. Llama 3.1's ``llama3`` scaling),
biases in the attention or MLP projections, another activation, a head size that is not
``hidden_size // num_attention_heads``. Such a model is refused with one line on import rather
than loaded into a model that would compute something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from seqkit.errors import UserError
from seqkit.export.formats import (
    WrittenModel,
    refuse_unsupported_options,
    write_native_causal_lm,
    write_stock_causal_lm,
)
from seqkit.export.source import ExportSource
from seqkit.models.decoder import DecoderConfig, DecoderForCausalLM

SEQKIT_MODEL_TYPES = (DecoderConfig.model_type,)
STOCK_MODEL_TYPES = ("llama",)

# ----------------------------------------------------------------------------- weight names

LAYER_NAMES: dict[str, str] = {
    # seqkit name under "model.layers.{i}." -> Llama's name under the same prefix
    "input_layernorm.weight": "input_layernorm.weight",
    "self_attn.query.weight": "self_attn.q_proj.weight",
    "self_attn.key.weight": "self_attn.k_proj.weight",
    "self_attn.value.weight": "self_attn.v_proj.weight",
    "self_attn.out.weight": "self_attn.o_proj.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "mlp.gate_proj.weight": "mlp.gate_proj.weight",
    "mlp.up_proj.weight": "mlp.up_proj.weight",
    "mlp.down_proj.weight": "mlp.down_proj.weight",
}
"""Every parameter of one block. The four attention projections are the only renames: seqkit's
shared :class:`~seqkit.models.attention.MultiHeadAttention` names them as BERT's checkpoint
does. Shapes are equal on both sides (``nn.Linear`` [out, in] everywhere)."""

MODEL_NAMES: dict[str, str] = {
    "model.embed_tokens.weight": "model.embed_tokens.weight",
    "model.norm.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
"""The parameters outside the blocks. Neither side saves its rotary tables (seqkit's
``cos_cached``/``sin_cached``, Llama's ``inv_freq``): both are rebuilt from the config."""

_LAYER_PREFIX = "model.layers."


def _rename(name: str, table: dict[str, str], model_table: dict[str, str]) -> str:
    if name in model_table:
        return model_table[name]
    if name.startswith(_LAYER_PREFIX):
        index, _, rest = name[len(_LAYER_PREFIX) :].partition(".")
        if index.isdigit() and rest in table:
            return f"{_LAYER_PREFIX}{index}.{table[rest]}"
    raise UserError(
        f"parameter {name!r} has no counterpart in the other model "
        "(a bias, or a part seqkit's decoder does not have); it cannot be converted"
    )


def seqkit_state_dict_to_llama(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`DecoderForCausalLM` state dict renamed for ``transformers.LlamaForCausalLM``."""
    return {_rename(name, LAYER_NAMES, MODEL_NAMES): t for name, t in state_dict.items()}


def llama_state_dict_to_seqkit(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``LlamaForCausalLM`` state dict renamed for :class:`DecoderForCausalLM` (the inverse of
    :func:`seqkit_state_dict_to_llama`). A missing ``lm_head.weight`` (a tied checkpoint may
    omit it) is taken from the token embedding."""
    layer_names = {llama: ours for ours, llama in LAYER_NAMES.items()}
    model_names = {llama: ours for ours, llama in MODEL_NAMES.items()}
    converted = {_rename(name, layer_names, model_names): t for name, t in state_dict.items()}
    if "lm_head.weight" not in converted and "model.embed_tokens.weight" in converted:
        converted["lm_head.weight"] = converted["model.embed_tokens.weight"]
    return converted


# ----------------------------------------------------------------------------- configs

# seqkit field -> LlamaConfig field, for the fields that only change name.
_CONFIG_NAMES = {
    "vocab_size": "vocab_size",
    "n_positions": "max_position_embeddings",
    "n_embd": "hidden_size",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "n_kv_head": "num_key_value_heads",
    "intermediate_size": "intermediate_size",
    "rms_norm_eps": "rms_norm_eps",
    "dropout": "attention_dropout",
    "initializer_range": "initializer_range",
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id",
    "tie_word_embeddings": "tie_word_embeddings",
}

# Llama options, the only value seqkit's decoder implements, and what the option does.
_FIXED_LLAMA_OPTIONS = {
    "hidden_act": ("silu", "the SwiGLU gate's activation"),
    "attention_bias": (False, "biases in the attention projections"),
    "mlp_bias": (False, "biases in the MLP projections"),
}


def check_llama_config(config: LlamaConfig) -> None:
    """Refuse, in one line, a Llama configuration seqkit's decoder cannot reproduce exactly."""
    refuse_unsupported_options(config, "Llama", "seqkit's decoder", _FIXED_LLAMA_OPTIONS)
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope_type = rope.pop("rope_type", "default")
    rope.pop("rope_theta", None)
    if rope_type != "default" or rope:
        raise UserError(
            f"this Llama model scales its rotary positions (rope_parameters: rope_type="
            f"{rope_type!r}, {rope or 'no other keys'}); seqkit's decoder implements only the "
            "default rotary embedding, so it cannot be imported"
        )
    head_dim = getattr(config, "head_dim", None)
    natural = config.hidden_size // config.num_attention_heads
    if head_dim is not None and head_dim != natural:
        raise UserError(
            f"this Llama model sets head_dim={head_dim}, not hidden_size // "
            f"num_attention_heads ({natural}); seqkit's decoder cannot import it"
        )
    eos = config.eos_token_id
    if isinstance(eos, (list, tuple)) and len(eos) > 1:
        raise UserError(
            f"this Llama model has several end-of-sequence tokens (eos_token_id={list(eos)}); "
            "seqkit's decoder stops on one, so it cannot be imported"
        )


def decoder_config_from_llama(config: LlamaConfig, **overrides: Any) -> DecoderConfig:
    """The :class:`DecoderConfig` of a ``LlamaConfig`` (checked first; ``overrides`` win)."""
    check_llama_config(config)
    values = {ours: getattr(config, theirs) for ours, theirs in _CONFIG_NAMES.items()}
    if isinstance(values["eos_token_id"], (list, tuple)):
        values["eos_token_id"] = values["eos_token_id"][0] if values["eos_token_id"] else None
    values["rope_theta"] = (config.rope_parameters or {}).get("rope_theta", 10000.0)
    return DecoderConfig(**{**values, **overrides})


def llama_config_from_decoder(config: DecoderConfig, **overrides: Any) -> LlamaConfig:
    """The ``LlamaConfig`` describing the same network as a :class:`DecoderConfig`. Every field
    of the decoder has a Llama counterpart except ``attention`` (how seqkit computes it) and
    ``intermediate_multiple`` (how the default width was chosen), which change nothing."""
    values = {theirs: getattr(config, ours) for ours, theirs in _CONFIG_NAMES.items()}
    values["rope_parameters"] = {"rope_type": "default", "rope_theta": float(config.rope_theta)}
    values["hidden_act"] = "silu"
    values["head_dim"] = config.head_size
    return LlamaConfig(**{**values, **overrides})


# ----------------------------------------------------------------------------- conversion


def to_llama(model: DecoderForCausalLM) -> LlamaForCausalLM:
    """The stock ``LlamaForCausalLM`` computing the same function as ``model``."""
    stock = LlamaForCausalLM(llama_config_from_decoder(model.config))
    stock.load_state_dict(seqkit_state_dict_to_llama(model.state_dict()), strict=True)
    return stock.eval()


def from_llama(stock: LlamaForCausalLM | str | Path) -> DecoderForCausalLM:
    """seqkit's :class:`DecoderForCausalLM` computing the same function as ``stock``: a
    ``LlamaForCausalLM``, or a folder holding one (its config is checked before any weight is
    read)."""
    if isinstance(stock, (str, Path)):
        folder = stock
        check_llama_config(LlamaConfig.from_pretrained(folder))
        try:
            stock = LlamaForCausalLM.from_pretrained(folder, use_safetensors=True)
        except (OSError, ValueError, RuntimeError) as error:
            detail = " ".join(str(error).split())
            raise UserError(f"{folder} does not load as LlamaForCausalLM: {detail}") from None
    model = DecoderForCausalLM(decoder_config_from_llama(stock.config))
    model.load_state_dict(llama_state_dict_to_seqkit(stock.state_dict()), strict=True)
    return model.eval()


def load_stock_llama(folder: Path) -> tuple[DecoderForCausalLM, Any]:
    """``(model, tokenizer)`` in seqkit's classes from a stock Llama folder (``model.init_from``,
    ``seqkit generate``, ``seqkit evaluate``); the tokenizer is the folder's own."""
    from seqkit.data import load_tokenizer
    from seqkit.folders import check_model_folder, check_vocabulary

    model = from_llama(check_model_folder(Path(folder)))
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model, tokenizer


# ----------------------------------------------------------------------------- export writers
#
# The two writers of a stock converter (see seqkit.export.registry.STOCK_CONVERTERS), in the
# shape of seqkit.export.gpt's.


def _load_any(folder: Path, model_type: str) -> DecoderForCausalLM:
    """A seqkit decoder from a folder of either kind (seqkit-decoder or stock llama)."""
    if model_type in STOCK_MODEL_TYPES:
        return from_llama(folder)
    return DecoderForCausalLM.from_pretrained(folder, use_safetensors=True).eval()


def to_transformers(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` as a stock ``LlamaForCausalLM`` folder with its tokenizer."""
    stock = to_llama(_load_any(source.folder, source.model_type))
    context = stock.config.max_position_embeddings
    return write_stock_causal_lm(
        source, folder, stock, context=context, tags=["llama", "text-generation"]
    )


def to_native(source: ExportSource, folder: Path) -> WrittenModel:
    """Write ``source`` (a stock Llama folder, or a seqkit one) in seqkit's own classes."""
    model = _load_any(source.folder, source.model_type)
    return write_native_causal_lm(source, folder, model, tags=["llama", "text-generation"])
