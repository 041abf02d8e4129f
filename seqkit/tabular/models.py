"""A multilayer perceptron that regresses one number from a row of features.

The textbook's first network (a fully connected layer, a non-linearity, a linear output, mean
squared error) with as many hidden layers as ``hidden_sizes`` lists. The target is standardised
for training; the config keeps its mean and standard deviation, so :meth:`predict` answers in
the data's own units (bikes per hour).

Shape legend: B batch, F features, H hidden width.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_choice, check_range, probability
from seqkit.parts.base import ModelBuilder, same_names

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class TabularRegressorConfig(PretrainedConfig):
    """Hyper-parameters of a :class:`TabularRegressor` and the scaling of its target."""

    model_type = "seqkit-tabular-mlp"

    num_features: int = 56
    """Input width F (one-hot calendar fields, flags and standardised measurements)."""
    hidden_sizes: list[int] | None = None
    """Width of each hidden layer (default [128, 64])."""
    activation: str = "relu"
    """Hidden non-linearity: relu, sigmoid (the textbook's) or tanh."""
    dropout: float = 0.0
    """Dropout after each hidden layer."""
    feature_names: list[str] | None = None
    """Name of each input column, in order."""
    target_name: str = "cnt"
    """What the model predicts."""
    target_mean: float = 0.0
    """Mean of the training targets (predictions are un-standardised with it)."""
    target_std: float = 1.0
    """Standard deviation of the training targets."""


@dataclass
class RegressionOutput(ModelOutput):
    """``predictions`` (B, 1) standardised; ``loss`` the mean squared error when labels given."""

    loss: torch.Tensor | None = None
    predictions: torch.Tensor | None = None


class TabularRegressor(PreTrainedModel):
    """(Linear → activation → dropout) × len(hidden_sizes) → Linear to one output."""

    config_class = TabularRegressorConfig
    base_model_prefix = "regressor"
    main_input_name = "features"

    def __init__(self, config: TabularRegressorConfig) -> None:
        super().__init__(config)
        if config.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {config.activation!r}"
            )
        sizes = [config.num_features, *(config.hidden_sizes or [128, 64])]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(sizes):
            layers += [
                nn.Linear(width_in, width_out),
                ACTIVATIONS[config.activation](),
                nn.Dropout(config.dropout),
            ]
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(sizes[-1], 1)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor | None = None, **kwargs
    ) -> RegressionOutput:
        """Standardised predictions (B, 1) for features (B, F); MSE against ``labels`` (B, 1)."""
        if features.dim() != 2 or features.shape[1] != self.config.num_features:
            raise ValueError(
                f"expected features shaped (B, {self.config.num_features}), "
                f"got {tuple(features.shape)}"
            )
        predictions = self.output(self.hidden(features))  # (B, 1)
        loss = F.mse_loss(predictions, labels) if labels is not None else None
        return RegressionOutput(loss=loss, predictions=predictions)

    @torch.inference_mode()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predictions in the target's own units (B,)."""
        self.eval()
        standardised = self(features).predictions[:, 0]
        return standardised * self.config.target_std + self.config.target_mean


@dataclass
class TabularMLPBuilder(ModelBuilder):
    """``tabular-mlp``: the recipe's ``model`` section of a :class:`TabularRegressor`; its input
    width and the target's scaling come from the data (the fitted table features)."""

    hidden_sizes: list[int] | None = None
    """Width of each hidden layer (default [128, 64])."""
    activation: str = "relu"
    """relu, sigmoid (the textbook's) or tanh."""
    dropout: float = 0.0
    """Dropout after each hidden layer."""

    heads: ClassVar[dict[str, type]] = {"regression": TabularRegressor}
    shape_fields: ClassVar[dict[str, str]] = same_names("hidden_sizes", "activation")
    tags: ClassVar[tuple[str, ...]] = ("tabular", "mlp")

    def __post_init__(self) -> None:
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_range("model.dropout", self.dropout, **probability())
        widths = self.hidden_sizes or []
        check_range("model.hidden_sizes (its length)", len(widths), 0, MAX_DEPTH)
        for i, width in enumerate(widths):
            check_range(f"model.hidden_sizes[{i}]", width, 1, MAX_WIDTH, integer=True)

    def config(self, task: str, facts: dict[str, Any]) -> TabularRegressorConfig:
        return TabularRegressorConfig(
            num_features=len(facts["feature_names"]),
            hidden_sizes=self.hidden_sizes or [128, 64],
            activation=self.activation,
            dropout=self.dropout,
            feature_names=facts["feature_names"],
            target_name=facts["target_name"],
            target_mean=facts["target_mean"],
            target_std=facts["target_std"],
        )

    def window(self, config: Any) -> tuple[int, int | None]:
        """A row is one whole example: no window of tokens."""
        return 0, None
