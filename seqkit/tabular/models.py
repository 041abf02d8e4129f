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

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

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
