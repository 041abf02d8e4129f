"""BERT: a bidirectional Transformer encoder pretrained by masked language modelling.

Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding". The input is the sum of three embeddings — token, learned position, and segment
(sentence A or B) — normalised by a LayerNorm; a stack of post-LN Transformer encoder layers
(Vaswani et al. 2017) reads it with full (unmasked, bidirectional) self-attention. Two heads:

* the masked-LM head (section 3.1, task #1): a dense layer, GELU and LayerNorm, then a
  projection onto the vocabulary that reuses the token embedding matrix (tied), plus a bias;
* the sequence-classification head (section 4.1): the *pooler* (dense + tanh on the first
  position, the [CLS] token), dropout and a linear classifier.

Next-sentence prediction (task #2) is left out, as RoBERTa (Liu et al. 2019) showed it does not
help; segment embeddings stay, so sentence-pair tasks work.

Attention is :class:`seqkit.models.attention.MultiHeadAttention`, shared with the Transformer.

Parameter names follow ``transformers``' BERT so that conversion is a renaming of a few suffixes
(:data:`TRANSFORMERS_RENAMES`, :func:`to_transformers_state_dict`)::

    seqkit                                       transformers BertForMaskedLM / …Classification
    bert.embeddings.*                            bert.embeddings.* (same)
    bert.encoder.layer.N.attention.query|key|value   bert.encoder.layer.N.attention.self.query|…
    bert.encoder.layer.N.attention.out           bert.encoder.layer.N.attention.output.dense
    bert.encoder.layer.N.attention_norm          bert.encoder.layer.N.attention.output.LayerNorm
    bert.encoder.layer.N.intermediate            bert.encoder.layer.N.intermediate.dense
    bert.encoder.layer.N.output                  bert.encoder.layer.N.output.dense
    bert.encoder.layer.N.output_norm             bert.encoder.layer.N.output.LayerNorm
    bert.pooler.dense                            bert.pooler.dense (same)
    cls.predictions.transform.*, .bias           cls.predictions.transform.*, .bias (same);
                                                 cls.predictions.decoder.weight = word embeddings,
                                                 cls.predictions.decoder.bias = .bias
    classifier                                   classifier (same)

Shape legend: B batch, T positions, C = hidden_size, V = vocab_size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
)

from seqkit.checks import (
    MAX_DEPTH,
    MAX_POSITIONS,
    MAX_WIDTH,
    check_choice,
    check_ranges,
    count,
    probability,
)
from seqkit.data.special_tokens import DEFAULT_SPECIAL_TOKENS
from seqkit.errors import UserError
from seqkit.models.attention import ATTENTION_PATHS, MultiHeadAttention
from seqkit.models.initialization import normal_init
from seqkit.parts.base import ModelBuilder

# ----------------------------------------------------------------------------- configuration


class BertConfig(PretrainedConfig):
    """Hyper-parameters of seqkit's BERT; names and defaults are BERT-base's (and those of
    ``transformers.BertConfig``, so the export copies them field by field)."""

    model_type = "seqkit-bert"

    vocab_size: int = 30522
    """Tokens: rows of the token embedding, columns of the MLM logits."""
    hidden_size: int = 768
    """Width C of the embeddings and of every layer."""
    num_hidden_layers: int = 12
    """Encoder layers."""
    num_attention_heads: int = 12
    """Heads per layer; each gets hidden_size // num_attention_heads dimensions."""
    intermediate_size: int = 3072
    """Hidden width of the feed-forward layer."""
    hidden_act: str = "gelu"
    """Feed-forward non-linearity: gelu (exact, erf-based, as BERT) or relu."""
    hidden_dropout_prob: float | int = 0.1
    """Dropout on embeddings and sub-layer outputs."""
    attention_probs_dropout_prob: float | int = 0.1
    """Dropout on the attention probabilities."""
    max_position_embeddings: int = 512
    """Longest input (learned position embeddings)."""
    type_vocab_size: int = 2
    """Segments (sentence A, sentence B)."""
    initializer_range: float = 0.02
    """Standard deviation of the N(0, σ) initialisation."""
    layer_norm_eps: float = 1e-12
    """Added to the variance in every LayerNorm (BERT's value)."""
    classifier_dropout: float | None = None
    """Dropout before the classifier; None means hidden_dropout_prob."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the formula written out; same numbers)."""
    pad_token_id: int | None = 0
    """Padding id."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {tuple(ACTIVATIONS)}")
        super().__post_init__(**kwargs)


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


# ----------------------------------------------------------------------------- layers


class BertEmbeddings(nn.Module):
    """token + position + segment embeddings, LayerNorm, dropout (section 3, figure 2)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        length = input_ids.size(1)
        max_positions = self.position_embeddings.num_embeddings
        if length > max_positions:
            raise ValueError(
                f"input of {length} tokens is longer than max_position_embeddings ({max_positions})"
            )
        x = self.word_embeddings(input_ids)  # (B, T, C)
        x = x + self.position_embeddings.weight[:length]  # (T, C) broadcasts over the batch
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # every token in segment A
        else:
            x = x + self.token_type_embeddings(token_type_ids)  # (B, T, C)
        return self.dropout(self.LayerNorm(x))


class BertLayer(nn.Module):
    """One post-LN encoder layer: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.attention = MultiHeadAttention(
            C,
            config.num_attention_heads,
            config.attention_probs_dropout_prob,
            attention=config.attention,
        )
        self.attention_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(C, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]
        self.output = nn.Linear(config.intermediate_size, C)
        self.output_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended = self.attention(x, key_padding_mask=padding_mask, need_weights=need_weights)
        x = self.attention_norm(x + self.dropout(attended.output))  # (B, T, C)
        h = self.output(self.act(self.intermediate(x)))  # (B, T, C) via (B, T, intermediate)
        x = self.output_norm(x + self.dropout(h))  # (B, T, C)
        return x, attended.weights


# ----------------------------------------------------------------------------- models


class BertPreTrainedModel(PreTrainedModel):
    """Shared initialisation and config class of the BERT models."""

    config_class = BertConfig
    base_model_prefix = "bert"
    main_input_name = "input_ids"
    # transformers' get/set_input_embeddings find ``embeddings.word_embeddings`` by this name
    # (in a head, through the ``bert`` base model): no accessor needs writing out.
    _input_embed_layer = "word_embeddings"
    _no_split_modules = ["BertLayer"]  # noqa: RUF012

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) matrices and embeddings, zero biases, unit norms."""
        normal_init(module, self.config.initializer_range)
        if isinstance(module, BertMLMHead):
            init.zeros_(module.bias)


class BertModel(BertPreTrainedModel):
    """Embeddings, the encoder stack, and (optionally) the pooler."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = nn.ModuleDict(
            {"layer": nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))}
        )
        # The pooler summarises the sequence as tanh(W·h_[CLS] + b) for classification heads.
        self.pooler = (
            nn.ModuleDict({"dense": nn.Linear(config.hidden_size, config.hidden_size)})
            if add_pooling_layer
            else None
        )
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling:
        """Contextual vectors (B, T, C) of every position, and the pooled [CLS] vector (B, C)."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        # No check for an all-ones mask here (reading the mask would make the host wait for the
        # device at every forward): seqkit's collators leave the mask out when no row is padded
        # (seqkit.data.padding.padding_mask), so the kernel runs without one.
        weights = []
        for layer in self.encoder["layer"]:
            x, w = layer(x, attention_mask, output_attentions)
            weights.append(w)
        pooled = None
        if self.pooler is not None:
            pooled = torch.tanh(self.pooler["dense"](x[:, 0]))  # (B, C): the first ([CLS]) token
        return BaseModelOutputWithPooling(
            last_hidden_state=x,
            pooler_output=pooled,
            attentions=tuple(weights) if output_attentions else None,
        )


class BertMLMHead(nn.Module):
    """transform (dense, activation, LayerNorm), then logits = h·Eᵀ + b with E the token
    embedding: tied, so the head adds only C² + 3C + V parameters."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        C = config.hidden_size
        self.transform = nn.ModuleDict(
            {
                "dense": nn.Linear(C, C),
                "LayerNorm": nn.LayerNorm(C, eps=config.layer_norm_eps),
            }
        )
        self.act = ACTIVATIONS[config.hidden_act]
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.transform["LayerNorm"](self.act(self.transform["dense"](hidden)))  # (…, C)
        return F.linear(h, embedding, self.bias)  # (…, V)


class BertWithHead(BertPreTrainedModel):
    """BERT's encoder under a task head. The encoder runs the same way for every head; a head
    class builds ``self.bert`` and its own layers, and says what it computes from the
    encoder's output (:meth:`head`)."""

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        masked_positions: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput | SequenceClassifierOutput:
        """The head's logits for a batch (B, T) of ids, and its loss when ``labels`` are given;
        ``attention_mask`` (B, T) is 1 on real tokens, ``token_type_ids`` the segments;
        ``masked_positions`` (masked LM only) limits the logits to those positions."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions)
        return self.head(out, labels, masked_positions)

    def head(
        self,
        encoded: BaseModelOutputWithPooling,
        labels: torch.Tensor | None,
        masked_positions: torch.Tensor | None,
    ) -> Any:
        raise NotImplementedError


class BertForMaskedLM(BertWithHead):
    """BERT with the masked-LM head; ``labels`` (B, T) hold the original token at masked
    positions and -100 elsewhere (see :mod:`seqkit.data.masking`)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = nn.ModuleDict({"predictions": BertMLMHead(config)})
        self.post_init()

    def head(
        self,
        encoded: BaseModelOutputWithPooling,
        labels: torch.Tensor | None,
        masked_positions: torch.Tensor | None,
    ) -> MaskedLMOutput:
        """Logits (B, T, V) at every position, and the mean cross-entropy over masked ones.

        With ``masked_positions`` (N,), flat indices into the B × T positions (the masked-LM
        collators send them), the head runs on those positions only and the logits are (N, V),
        row i for position ``masked_positions[i]``: the loss and its gradients are the same,
        but the projection onto the vocabulary — V·C multiply-adds a position, more than the
        whole encoder at BERT's sizes — is computed for ~15 % of the positions, not all."""
        embedding = self.bert.embeddings.word_embeddings.weight  # (V, C)
        hidden = encoded.last_hidden_state  # (B, T, C)
        if masked_positions is not None:
            hidden = hidden.reshape(-1, hidden.size(-1)).index_select(0, masked_positions)
            if labels is not None:
                labels = labels.reshape(-1).index_select(0, masked_positions)  # (N,)
        logits = self.cls["predictions"](hidden, embedding)  # (B, T, V), or (N, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.view(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100
            )
        return MaskedLMOutput(loss=loss, logits=logits, attentions=encoded.attentions)


class BertForSequenceClassification(BertWithHead):
    """BERT, the pooled [CLS] vector, dropout and a linear classifier over ``num_labels``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def head(
        self,
        encoded: BaseModelOutputWithPooling,
        labels: torch.Tensor | None,
        masked_positions: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        """Class logits (B, num_labels), and the cross-entropy when ``labels`` (B,) are given."""
        logits = self.classifier(self.dropout(encoded.pooler_output))  # (B, num_labels)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, attentions=encoded.attentions)


# ----------------------------------------------------------------------------- conversion

TRANSFORMERS_RENAMES = (
    (".attention.query.", ".attention.self.query."),
    (".attention.key.", ".attention.self.key."),
    (".attention.value.", ".attention.self.value."),
    (".attention.out.", ".attention.output.dense."),
    (".attention_norm.", ".attention.output.LayerNorm."),
    (".intermediate.", ".intermediate.dense."),
    (".output.", ".output.dense."),
    (".output_norm.", ".output.LayerNorm."),
)
"""(seqkit, transformers) name pieces of the encoder layers; every other name is the same."""


def to_transformers_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A seqkit BERT state dict renamed for ``transformers.BertForMaskedLM`` or
    ``BertForSequenceClassification``; the MLM decoder (tied) is spelled out."""
    converted = {}
    for name, tensor in state_dict.items():
        for ours, theirs in TRANSFORMERS_RENAMES:
            if ours in name:
                name = name.replace(ours, theirs)
                break
        converted[name] = tensor
    if "cls.predictions.bias" in converted:
        converted["cls.predictions.decoder.weight"] = converted[
            "bert.embeddings.word_embeddings.weight"
        ]
        converted["cls.predictions.decoder.bias"] = converted["cls.predictions.bias"]
    return converted


# ----------------------------------------------------------------------------- recipe builder

SIZE_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)
"""The sizes a recipe may leave to its ``init_from`` folder."""
DEFAULT_SIZES = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
"""A new BERT's sizes when neither the recipe nor an ``init_from`` folder gives them."""
DEFAULT_MAX_POSITIONS = 128
"""A new BERT's longest input when neither data.max_length nor the recipe gives it."""


@dataclass
class BertBuilder(ModelBuilder):
    """The ``model`` section of a recipe that trains BERT (``model.architecture: bert``):
    masked-LM pretraining (``task: masked-lm``) or sequence classification (``task:
    classification``), usually fine-tuned from a pretrained folder (``init_from``). Sizes left
    unset come from ``init_from`` when it is given, and otherwise from the defaults noted."""

    hidden_size: int | None = None
    """Width of embeddings and layers (default 128)."""
    num_hidden_layers: int | None = None
    """Encoder layers (default 2)."""
    num_attention_heads: int | None = None
    """Heads per layer (default 4); must divide hidden_size."""
    intermediate_size: int | None = None
    """Feed-forward width (default 4 × hidden_size)."""
    max_position_embeddings: int | None = None
    """Longest input in tokens (default: data.max_length, else 128)."""
    dropout: float = 0.1
    """Dropout on embeddings, sub-layer outputs, attention probabilities and the classifier."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the formula written out; same numbers)."""

    heads: ClassVar[dict[str, type]] = {
        "masked-lm": BertForMaskedLM,
        "classification": BertForSequenceClassification,
    }
    extra_auto_classes: ClassVar[dict[str, type]] = {"AutoModel": BertModel}
    stock: ClassVar[dict[str, str]] = {"bert": "seqkit.export.bert:load_stock_bert"}
    shape_fields: ClassVar[dict[str, str]] = {name: name for name in SIZE_FIELDS}
    tags: ClassVar[tuple[str, ...]] = ("bert",)
    special_tokens: ClassVar[dict[str, str]] = dict(DEFAULT_SPECIAL_TOKENS)
    frames_text: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("model.attention", self.attention, ATTENTION_PATHS)
        check_ranges(
            "model",
            self,
            {
                "hidden_size": count(1, MAX_WIDTH),
                "num_hidden_layers": count(1, MAX_DEPTH),
                "num_attention_heads": count(1, MAX_DEPTH),
                "intermediate_size": count(1, MAX_WIDTH),
                "max_position_embeddings": count(1, MAX_POSITIONS),
                "dropout": probability(),
            },
        )

    def _pretrained(self) -> dict[str, Any] | None:
        """The config of ``init_from`` (None without one); the sizes a recipe copies from it
        must be positive integers (a tampered config would otherwise build a model that fails
        deep in PyTorch)."""
        from seqkit.folders import read_config

        if not self.init_from:
            return None
        folder = Path(self.init_from)
        config = read_config(folder)
        for name in SIZE_FIELDS:
            value = config.get(name)
            if name in config and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise UserError(
                    f"{folder / 'config.json'}: {name} must be a positive integer, got {value!r}"
                )
        return config

    def config(self, task: str, facts: dict[str, Any]) -> BertConfig:
        """The pretrained folder's sizes (if any), then the recipe's explicit ones."""
        if "vocab_size" not in facts:
            raise UserError(
                "model.architecture bert reads token ids; set data.module: labelled-text "
                "(classification) or masked-text (masked-lm)"
            )
        values: dict[str, Any] = {
            **DEFAULT_SIZES,
            "max_position_embeddings": facts.get("max_length") or DEFAULT_MAX_POSITIONS,
        }
        pretrained = self._pretrained()
        if pretrained is not None:
            values.update({name: pretrained[name] for name in SIZE_FIELDS if name in pretrained})
        values.update(
            {name: getattr(self, name) for name in SIZE_FIELDS if getattr(self, name) is not None}
        )
        values.setdefault("intermediate_size", 4 * values["hidden_size"])
        if values["hidden_size"] % values["num_attention_heads"]:
            raise UserError(
                f"model.hidden_size ({values['hidden_size']}) must be divisible by "
                f"model.num_attention_heads ({values['num_attention_heads']})"
            )
        extra = {}
        if task == "classification":
            names = facts["id2label"]
            extra = {"id2label": dict(names), "label2id": {n: i for i, n in names.items()}}
        return BertConfig(
            vocab_size=facts["vocab_size"],
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.dropout,
            attention=self.attention,
            **values,
            **extra,
        )

    def from_init(self, task: str, folder: Path, facts: dict[str, Any]) -> PreTrainedModel:
        """A new model of the folder's sizes holding its encoder weights: a classifier on a
        masked-LM folder gets a fresh pooler and classifier (continued pretraining and a
        classifier folder keep every weight they share)."""
        from seqkit.folders import check_model_folder

        check_model_folder(folder)
        pretrained = self._pretrained() or {}
        if task == "classification":
            is_classifier = "BertForSequenceClassification" in (
                pretrained.get("architectures") or []
            )
            have = len(pretrained.get("id2label") or {})
            if is_classifier and have != facts["num_labels"]:
                names = ", ".join(map(str, facts["id2label"].values()))
                raise UserError(
                    f"model.init_from: {folder} classifies into {have} labels, the data has "
                    f"{facts['num_labels']} ({names})"
                )
        if pretrained.get("model_type") in self.stock:
            return self._from_stock(task, folder, facts)
        model = self.model_class(task)(self.config(task, facts))
        new_heads = ("bert.pooler.", "classifier.") if task == "classification" else ()
        load_encoder_weights(model, folder, new_heads=new_heads)
        return model

    def _from_stock(self, task: str, folder: Path, facts: dict[str, Any]) -> PreTrainedModel:
        """A model for ``task`` of a stock ``transformers`` BERT folder's config (the recipe's
        sizes give way: :mod:`seqkit.parts.pretrained`), holding every weight of the folder it
        has a place for: a ``BertModel`` or ``BertForMaskedLM`` folder gives a classifier a new
        pooler (if it has none) and head, a ``BertModel`` one a masked LM a new MLM head."""
        import copy

        from seqkit.parts.pretrained import load_stock

        converted = load_stock(self, folder)
        state = converted.state_dict()
        if isinstance(converted, BertModel):  # the bare encoder: its names lack the prefix
            state = {f"bert.{name}": tensor for name, tensor in state.items()}
        config = copy.deepcopy(converted.config)
        config.attention = self.attention
        config.architectures = None
        if task == "classification":
            names = facts["id2label"]
            config.id2label = dict(names)
            config.label2id = {name: i for i, name in names.items()}
        model = self.model_class(task)(config)
        new_heads = ("bert.pooler.", "classifier.") if task == "classification" else ("cls.",)
        load_encoder_state(model, state, folder, new_heads=new_heads)
        return model

    def runtime_settings(self) -> dict[str, Any]:
        return {"attention": self.attention}


def load_encoder_weights(model: nn.Module, folder: Path, new_heads: tuple[str, ...]) -> None:
    """Copy every weight of ``folder`` that ``model`` has, checking names and shapes.

    Parameters of ``model`` whose names start with one of ``new_heads`` may be missing from
    the folder (a classifier head on a pretrained encoder) and keep their fresh initialisation;
    any other missing name, or any shape that differs, is a UserError naming them. Weights of
    the folder that ``model`` has no place for (the MLM head) are left out on purpose.
    """
    from safetensors.torch import load_file

    from seqkit.folders import loading

    path = folder / "model.safetensors"
    if not path.is_file():
        raise UserError(f"model.init_from: {folder} has no model.safetensors")
    with loading(f"model.init_from: {path}"):
        saved = load_file(str(path))
    load_encoder_state(model, saved, folder, new_heads)


def load_encoder_state(
    model: nn.Module, saved: dict[str, torch.Tensor], folder: Path, new_heads: tuple[str, ...]
) -> None:
    """Copy every weight of ``saved`` (the state dict read from ``folder``) that ``model`` has,
    checked as :func:`load_encoder_weights` says."""
    own = model.state_dict()
    wrong = [
        f"{name} {tuple(saved[name].shape)} vs {tuple(t.shape)}"
        for name, t in own.items()
        if name in saved and saved[name].shape != t.shape
    ]
    missing = [name for name in own if name not in saved and not name.startswith(new_heads)]
    if wrong or missing:
        problems = (
            [f"{len(wrong)} of different shape (pretrained vs here): " + ", ".join(wrong[:3])]
            if wrong
            else []
        )
        if missing:
            problems.append(f"{len(missing)} missing: " + ", ".join(missing[:3]))
        raise UserError(
            f"model.init_from: the weights in {folder} do not fit this model ("
            + "; ".join(problems)
            + ("; ..." if len(wrong) > 3 or len(missing) > 3 else "")
            + ")"
        )
    model.load_state_dict({name: saved[name] for name in own if name in saved}, strict=False)


# ----------------------------------------------------------------------------- registration
