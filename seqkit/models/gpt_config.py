"""What a GPT is made of before it has weights: its config, and the recipe section that builds
it.

:class:`GPTConfig` is the ``config.json`` of a GPT folder; its names and defaults are GPT-2's, so
converting to and from ``transformers.GPT2Config`` is a copy of fields. :class:`GPTBuilder` is the
``model`` section of a GPT recipe. Neither imports ``transformers``' ``PreTrainedModel``: a run
trains the network in plain PyTorch (:class:`seqkit.models.gpt_network.StandaloneGPT`) and only
loading a folder through the Auto classes needs :class:`seqkit.models.gpt.GPTLMHeadModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from transformers import PretrainedConfig

from seqkit.models.attention import ATTENTION_PATHS
from seqkit.models.causal_lm import DecoderOnlyBuilder
from seqkit.models.gpt_network import ACTIVATIONS, TANH_GELU_NAMES, StandaloneGPT

if TYPE_CHECKING:
    # Imported where used: transformers' GPT-2 package imports its Auto classes, which import
    # every registered seqkit model (and so PreTrainedModel).
    from transformers import GPT2Config

# ----------------------------------------------------------------------------- configuration


class GPTConfig(PretrainedConfig):
    """Hyper-parameters of a GPT (:mod:`seqkit.models.gpt_network`); the names and defaults are
    GPT-2's.

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
    scale_residual_init: bool = False
    """Draw each block's two residual projections from N(0, initializer_range/√(2·n_layer)),
    as GPT-2 and nanoGPT do, instead of N(0, initializer_range). Off by default: every GPT
    result in the README was trained without it, and at the ``gpt/shakespeare-char`` size it
    measured worse (validation loss, median of seeds 1337, 1, 2, 3, 4: 1.894 with it, 1.876
    without)."""

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
        from transformers import GPT2Config

        values = {name: getattr(self, name) for name in self._GPT2_FIELDS}
        return GPT2Config(**{**values, **overrides})


# ----------------------------------------------------------------------------- recipe builder


@dataclass
class GPTBuilder(DecoderOnlyBuilder):
    """The ``model`` section of a recipe that trains a GPT (``model.architecture: gpt``): the
    decoder-only sizes, learned positions up to ``block_size``, and one ``dropout`` on
    embeddings, attention probabilities and residual branches."""

    scale_residual_init: bool = False
    """GPT-2's smaller initial residual projections (see ``GPTConfig.scale_residual_init``)."""

    # Named, not imported: a run that trains from scratch never needs the transformers class.
    heads: ClassVar[dict[str, type | str]] = {
        "causal-lm": f"seqkit.models.gpt:{StandaloneGPT.hub_class}"
    }
    tags: ClassVar[tuple[str, ...]] = ("gpt",)
    stock: ClassVar[dict[str, str]] = {"gpt2": "seqkit.export.gpt:load_stock_gpt2"}

    def config_class(self, task: str) -> type:
        return GPTConfig

    def new_model(self, task: str, config: GPTConfig) -> Any:
        """The plain-PyTorch network (:class:`StandaloneGPT`), freshly initialised: a GPT run
        trains and saves it without importing ``transformers``' ``PreTrainedModel`` (about 3 s
        of start-up and 120 MB of memory). LoRA adapters are injected by peft into the
        ``transformers`` class, as into every other architecture's."""
        if self.lora is not None:
            return super().new_model(task, config)
        return StandaloneGPT.fresh(config)

    def config(self, task: str, facts: dict[str, Any]) -> GPTConfig:
        return GPTConfig(
            **self.common_config(facts),
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            scale_residual_init=self.scale_residual_init,
        )
