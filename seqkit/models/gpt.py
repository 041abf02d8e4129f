"""GPT as a ``transformers`` model: the class that loads through the Auto classes and runs
``generate()`` and pipelines, and conversion to and from GPT-2.

The network itself — attention, feed-forward, blocks, and the computation from tokens to hidden
states — is :mod:`seqkit.models.gpt_network`, in plain PyTorch; its config and recipe section are
:mod:`seqkit.models.gpt_config`. This file adds what makes the network a Hub model.
:class:`GPTLMHeadModel` mirrors ``transformers``' GPT-2 names (``n_embd``,
``transformer.h.0.attn.c_attn.weight`` …), so converting to and from
``transformers.GPT2LMHeadModel`` is a renaming plus a transpose: GPT-2 stores its projections as
``Conv1D`` with weights shaped ``[in, out]`` while ``nn.Linear`` stores ``[out, in]`` (see
:func:`gpt2_state_dict_to_seqkit`). A recipe trains the same network without this class
(:class:`~seqkit.models.gpt_network.StandaloneGPT`) and writes the folder this class loads.
"""

from __future__ import annotations

import torch
from torch import nn

from seqkit.models.gpt_config import GPTConfig
from seqkit.models.gpt_network import GPTNetwork
from seqkit.models.hub_generation import KeyValueCausalLM

# ----------------------------------------------------------------------------- the model


class GPTLMHeadModel(GPTNetwork, KeyValueCausalLM):
    """GPT-2: embeddings, ``n_layer`` blocks, a final LayerNorm and a tied output projection.

    ``forward``, its ``labels`` convention (next-token targets already aligned with the inputs,
    nanoGPT's ``targets``; ``transformers.GPT2LMHeadModel`` shifts them itself) and its cache
    are :class:`~seqkit.models.hub_generation.KeyValueCausalLM`'s; its layers and the computation of
    the hidden states (:meth:`~seqkit.models.gpt_network.GPTNetwork.decode`) are the network's.
    """

    config_class = GPTConfig
    base_model_prefix = "transformer"
    # _no_split_modules and _tied_weights_keys, which transformers reads, are the network's.

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.build_network(config)
        self.post_init()  # initialise weights (``_init_weights``) and tie lm_head to wte

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2's initialisation (:meth:`~seqkit.models.gpt_network.GPTNetwork.init_gpt2_weights`),
        which ``post_init`` and ``from_pretrained`` apply to every module not loaded."""
        self.init_gpt2_weights(module)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.transformer.wte = value


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
