"""GPT's network, written layer by layer in plain PyTorch.

The architecture is GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners"): token and learned position embeddings, a stack of pre-LayerNorm Transformer blocks
(Vaswani et al. 2017, "Attention Is All You Need") whose self-attention is masked so that each
position sees only the past, a final LayerNorm, and an output projection that shares its weights
with the token embedding.

The file reads top to bottom: the activation, the attention layer, the feed-forward layer, the
block that joins them, and the whole network (:class:`GPTNetwork`). Parameter names mirror the
GPT-2 checkpoint (``transformer.h.0.attn.c_attn.weight`` …) so that converting to and from
``transformers.GPT2LMHeadModel`` is a renaming plus a transpose (:mod:`seqkit.models.gpt`).

Nothing here imports ``transformers``. The network is a mixin that two classes are made of, with
the same parameter names and the same weights file: :class:`seqkit.models.gpt.GPTLMHeadModel`,
the ``transformers`` model that loads through the Auto classes and runs ``generate()`` and
pipelines; and :class:`StandaloneGPT`, the same network as a plain ``nn.Module``. A GPT recipe
trains the standalone network (:meth:`StandaloneGPT.fresh`) and writes it as the Hub folder
``GPTLMHeadModel`` would write (:meth:`StandaloneGPT.save_pretrained`); ``seqkit generate``
loads it back the same way. Neither imports ``transformers``' ``PreTrainedModel``, which takes
about 3 s and 120 MB of memory on this project's machine (torch itself: 2 s, 220 MB).

Shape legend used in the comments: B batch, T new positions, S positions attended to (past + new),
C = n_embd, nh = n_head, hs = C // nh (head size), V = vocab_size.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from seqkit.models.attention import ATTENTION_PATHS, KeyValue, scaled_dot_product_attention
from seqkit.models.causal_lm import next_token_loss
from seqkit.models.initialization import normal_, normal_init, zeros_

if TYPE_CHECKING:
    from seqkit.models.gpt_config import GPTConfig

# One layer's cache: keys and values of every position seen so far, each (B, nh, S, hs). The
# cache is a plain tuple of these, one per layer, extended by concatenation. A preallocated
# buffer written in place measured no faster at these sizes (the concatenation is a few µs next
# to the matmuls), and an immutable cache can be shared by several continuations (beam search)
# without one overwriting another.
LayerKV = KeyValue


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
        self.c_proj.residual_projection = True  # may start smaller (scale_residual_init)
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
        self.c_proj.residual_projection = True  # may start smaller (scale_residual_init)
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


# ----------------------------------------------------------------------------- the network


class GPTNetwork:
    """The whole network: embeddings, ``n_layer`` blocks, a final LayerNorm and the output
    projection (:meth:`build_network`), and how they turn tokens into hidden states
    (:meth:`decode`).

    A mixin, not a module: :class:`seqkit.models.gpt.GPTLMHeadModel` (a ``transformers``
    ``PreTrainedModel``) and :class:`StandaloneGPT` (a plain ``nn.Module``) each initialise
    their own base class and then call :meth:`build_network`, so both are this network, with
    the same parameter names, the same initial weights (:meth:`init_gpt2_weights`) and the same
    weights file.
    """

    config: Any
    transformer: nn.ModuleDict
    lm_head: nn.Linear

    # The blocks that gradient checkpointing recomputes (seqkit.trainer.recompute) and that
    # accelerate never splits across devices; transformers reads the same attribute.
    _no_split_modules = ["Block"]  # noqa: RUF012 - a class-level constant, as transformers names it
    # transformers 5 declares tied parameters as {target: source}: the output projection is the
    # token embedding. A weights file stores the pair once, under the source's name.
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}  # noqa: RUF012

    def build_network(self, config: GPTConfig) -> None:
        """Create the layers of the network ``config`` describes (the weights are initialised
        by the owner: :meth:`init_gpt2_weights` for a new network, a weights file otherwise)."""
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
        :class:`~seqkit.models.hub_generation.KeyValueCausalLM`'s)."""
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

    @torch.no_grad()
    def init_gpt2_weights(self, module: nn.Module) -> None:
        """GPT-2 initialisation of one ``module`` (applied to every module): N(0, 0.02) weights,
        zero biases and unit LayerNorms. With ``config.scale_residual_init`` the residual
        projections (each block's two ``c_proj``) are drawn from N(0, 0.02/√(2·n_layer)) instead,
        as in the GPT-2 paper, so that the residual stream's variance does not grow with depth
        (two residual branches per block add to it).

        The projections are marked (``residual_projection``) and scaled where they are drawn,
        not redrawn from their parent layer: ``transformers`` 5 never calls this for a module
        without parameters of its own (the attention and MLP layers hold theirs in children),
        so a parent-level rule would silently not apply to ``GPTLMHeadModel``."""
        std = self.config.initializer_range
        scaled = getattr(self.config, "scale_residual_init", False)
        if scaled and getattr(module, "residual_projection", False):
            normal_(module.weight, mean=0.0, std=std / math.sqrt(2 * self.config.n_layer))
            zeros_(module.bias)
        else:
            normal_init(module, std)


# ----------------------------------------------------------------------------- standalone


class NetworkOutput(NamedTuple):
    """What :class:`StandaloneGPT` returns: what the Trainer and
    :func:`seqkit.generation.generate` read."""

    logits: torch.Tensor
    """(B, T, V) next-token logits."""
    past_key_values: tuple[LayerKV, ...] | None
    """Every layer's keys and values so far, when asked for (``use_cache``)."""
    loss: torch.Tensor | None = None
    """Mean next-token cross-entropy, when ``labels`` were given."""


class StandaloneGPT(GPTNetwork, nn.Module):
    """The GPT network as a plain ``nn.Module``: the model a GPT recipe trains, and the one
    ``seqkit generate`` loads, without importing ``transformers``' ``PreTrainedModel``.

    It holds the same parameters as :class:`seqkit.models.gpt.GPTLMHeadModel`, starts from the
    same weights for the same seed (:meth:`fresh`), computes the same loss, and reads and writes
    the same ``model.safetensors`` (:meth:`save_pretrained`); tests prove each. ``config`` is a
    :class:`~seqkit.models.gpt_config.GPTConfig` when training, or any object with its fields
    when generating (the values of a model folder's ``config.json``:
    :func:`seqkit.parts.model_folder.open_standalone`).
    """

    model_type = "seqkit-gpt"
    """The ``config.json`` model type whose folders this class reads (``GPTConfig``'s)."""
    hub_class = "GPTLMHeadModel"
    """The ``transformers`` class that loads what :meth:`save_pretrained` writes (the folder's
    ``architectures``)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.build_network(config)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    @classmethod
    def fresh(cls, config: GPTConfig) -> StandaloneGPT:
        """A network of ``config`` with GPT-2's initial weights (:meth:`init_gpt2_weights`),
        drawn in ``GPTLMHeadModel``'s order: every module, the output projection included,
        draws its weights before the projection is tied to the token embedding, so one seed
        gives both classes the same numbers."""
        model = cls(config)
        if config.tie_word_embeddings:  # untie while drawing, as transformers' post_init does
            model.lm_head.weight = nn.Parameter(torch.empty_like(model.transformer.wte.weight))
        model.apply(model.init_gpt2_weights)
        if config.tie_word_embeddings:
            model.lm_head.weight = model.transformer.wte.weight
        return model

    def forward(
        self,
        input_ids: torch.LongTensor,
        labels: torch.LongTensor | None = None,
        past_key_values: tuple[LayerKV, ...] | None = None,
        use_cache: bool = False,
    ) -> NetworkOutput:
        """Next-token logits (B, T, V) for ``input_ids`` (B, T) after the cached positions, and
        the loss against ``labels`` (B, T), the next-token targets already aligned with the
        inputs (:mod:`seqkit.models.causal_lm`), when given."""
        past_length = past_key_values[0][0].size(2) if past_key_values is not None else 0
        hidden, presents = self.decode(input_ids, past_key_values, past_length, None, use_cache)
        logits = self.lm_head(hidden)  # (B, T, V)
        loss = next_token_loss(logits, labels) if labels is not None else None
        cache = tuple(presents) if presents is not None else None
        return NetworkOutput(logits, cache, loss)

    def num_parameters(self) -> int:
        """Distinct parameters (the tied embedding counted once), as ``PreTrainedModel``'s."""
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` as ``GPTLMHeadModel.save_pretrained``
        writes them: the config names :attr:`hub_class` and the weights' dtype, each tied tensor
        is stored once under its source's name, and the file's metadata says ``pt``. Only a
        model whose config is a ``GPTConfig`` (one being trained) can be saved."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.dtype = str(self.transformer.wte.weight.dtype).removeprefix("torch.")
        self.config.architectures = [self.hub_class]
        self.config.save_pretrained(folder)
        state = self.state_dict()
        for target, source in self._tied_weights_keys.items():
            if state[target].data_ptr() == state[source].data_ptr():
                del state[target]
        tensors = {name: tensor.detach().contiguous() for name, tensor in state.items()}
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    @classmethod
    def config_from(cls, values: dict[str, Any]) -> SimpleNamespace | None:
        """The settings in a ``config.json``'s ``values`` as attributes, when they describe a
        network this class can build; None otherwise (a field missing, of another type or out
        of range), for the full loader to read the folder and name what is wrong."""

        def whole(name: str) -> bool:
            value = values.get(name)
            return type(value) is int and value >= 1

        def fraction(name: str) -> bool:
            value = values.get(name)
            return type(value) in (int, float) and 0 <= value <= 1

        if not all(map(whole, ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"))):
            return None
        if not all(map(fraction, ("resid_pdrop", "embd_pdrop", "attn_pdrop"))):
            return None
        epsilon = values.get("layer_norm_epsilon")
        if (
            values["n_embd"] % values["n_head"]
            or "n_inner" not in values
            or not (values["n_inner"] is None or whole("n_inner"))
            or not isinstance(values.get("activation_function"), str)
            or values["activation_function"] not in ACTIVATIONS
            or values.get("attention") not in ATTENTION_PATHS
            or type(epsilon) not in (int, float)
            or not epsilon > 0
            or type(values.get("tie_word_embeddings")) is not bool
            or values.get("dtype", "float32") not in ("float32", None)
        ):
            return None
        return SimpleNamespace(**values)

    @classmethod
    def from_weights(
        cls, settings: SimpleNamespace, state: dict[str, torch.Tensor]
    ) -> StandaloneGPT | None:
        """The network of ``settings`` holding the tensors of ``state`` (a ``model.safetensors``
        of ``GPTLMHeadModel``); None when they do not fit it exactly (missing, extra or
        other-shaped tensors)."""
        # Built on the CPU and initialised, then overwritten: the meta device would skip that
        # work, but its device context imports torch._dynamo (half a second).
        model = cls(settings)
        tied = settings.tie_word_embeddings and "transformer.wte.weight" in state
        if tied and "lm_head.weight" not in state:  # the file holds the shared matrix once
            state = {**state, "lm_head.weight": state["transformer.wte.weight"]}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError:
            return None
        return model
