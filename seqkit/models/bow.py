"""Bag-of-words classifiers: logistic regression and a one-hidden-layer MLP over sparse features.

The oldest strong baseline of text classification (Joachims, 1998, "Text categorization with
support vector machines"; Wang & Manning, 2012, "Baselines and Bigrams"): represent a document by
the counts or TF-IDF weights of its words and n-grams (:mod:`seqkit.data.bow`), then

    logistic regression:  logits = W x + b                       (W: classes × features)
    MLP:                  logits = W₂ ReLU(W₁ x + b₁) + b₂       (one hidden layer)

trained with cross-entropy. ``x`` is sparse — a document touches a few dozen of tens of
thousands of features — so the first layer is never a dense matrix product: ``W₁ x`` is the sum
of the columns of ``W₁`` at the document's feature ids, each scaled by its value. That is exactly
``nn.EmbeddingBag(mode="sum")`` with per-sample weights, which is what the model uses.

Batches carry each document as ``feature_ids`` (B, L) and ``feature_values`` (B, L), padded with
id 0 and value 0.0 (a zero value adds nothing), plus ``labels`` (B,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from seqkit.checks import MAX_WIDTH, check_choice, check_ranges, count, probability
from seqkit.errors import UserError
from seqkit.parts.base import ModelBuilder, same_names

CLASSIFIERS = ("logistic", "mlp")


class BagOfWordsConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`BagOfWordsForSequenceClassification`.

    The number of classes and their names are the base class's ``num_labels`` / ``id2label``.
    """

    model_type = "seqkit-bow"

    num_features: int = 1000
    """Columns of the bag-of-words matrix (the vectorizer's vocabulary size)."""
    classifier: str = "logistic"
    """``logistic`` (one linear layer) or ``mlp`` (one hidden ReLU layer of ``hidden_size``)."""
    hidden_size: int = 64
    """Width of the MLP's hidden layer (unused by logistic regression)."""
    dropout: float | int = 0.0
    """Dropout on the MLP's hidden layer."""
    initializer_range: float = 0.02
    """Standard deviation of the normal initialisation of the weights."""

    def __post_init__(self, **kwargs: Any) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {self.classifier!r}")
        if self.num_features < 1 or self.hidden_size < 1:
            raise ValueError("num_features and hidden_size must be at least 1")
        super().__post_init__(**kwargs)


class BagOfWordsForSequenceClassification(PreTrainedModel):
    """Logistic regression or a one-hidden-layer MLP over a sparse bag-of-words vector."""

    config_class = BagOfWordsConfig
    base_model_prefix = "bow"
    main_input_name = "feature_ids"

    def __init__(self, config: BagOfWordsConfig) -> None:
        super().__init__(config)
        first_width = config.num_labels if config.classifier == "logistic" else config.hidden_size
        # The first (sparse) layer: W x = Σ_i value_i · W[:, id_i], one row of the bag per id.
        self.features = nn.EmbeddingBag(config.num_features, first_width, mode="sum")
        self.bias = nn.Parameter(torch.zeros(first_width))
        if config.classifier == "mlp":
            self.dropout = nn.Dropout(config.dropout)
            self.head = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """N(0, initializer_range) weights and zero biases."""
        if isinstance(module, (nn.Linear, nn.EmbeddingBag)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def forward(
        self,
        feature_ids: torch.Tensor,
        feature_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """``feature_ids``/``feature_values`` (B, L), padded with 0 / 0.0; ``labels`` (B,)."""
        values = feature_values.to(self.features.weight.dtype)
        hidden = self.features(feature_ids, per_sample_weights=values) + self.bias  # (B, width)
        if self.config.classifier == "mlp":
            hidden = self.head(self.dropout(F.relu(hidden)))  # (B, num_labels)
        logits = hidden
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


@dataclass
class BagOfWordsBuilder(ModelBuilder):
    """The ``model`` section of a recipe that trains a bag-of-words classifier
    (``model.architecture: bow``; its features come from ``data.module: bag-of-words``)."""

    classifier: str = "logistic"
    """logistic (one linear layer over the features) or mlp (one hidden ReLU layer)."""
    hidden_size: int = 64
    """Width of the MLP's hidden layer."""
    dropout: float = 0.0
    """Dropout on the MLP's hidden layer."""

    heads: ClassVar[dict[str, type]] = {"classification": BagOfWordsForSequenceClassification}
    shape_fields: ClassVar[dict[str, str]] = same_names("classifier", "hidden_size")
    tags: ClassVar[tuple[str, ...]] = ("bag-of-words",)
    data_module: ClassVar[str | None] = "bag-of-words"
    special_tokens: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        check_choice("model.classifier", self.classifier, CLASSIFIERS)
        check_ranges("model", self, {"hidden_size": count(1, MAX_WIDTH), "dropout": probability()})

    def config(self, task: str, facts: dict[str, Any]) -> BagOfWordsConfig:
        if "num_features" not in facts:
            raise UserError(
                "model.architecture bow reads bag-of-words features; set data.module: bag-of-words"
            )
        names = facts["id2label"]
        return BagOfWordsConfig(
            num_features=facts["num_features"],
            classifier=self.classifier,
            hidden_size=self.hidden_size,
            dropout=self.dropout,
            id2label=dict(names),
            label2id={name: i for i, name in names.items()},
        )

    def window(self, config: Any) -> tuple[int, int | None]:
        return 0, None  # a document is a bag: no token window

    def card_tags(self) -> list[str]:
        return [*self.tags, self.classifier]
