"""The ``bike-sharing-mlp`` family: hourly bike demand from weather and calendar fields.

Recipe → ``data.path`` (the UCI hour.csv) → one-hot and standardised features, split by day
(train | validation days | test days) → :class:`~seqkit.tabular.models.TabularRegressor` trained
by the Trainer on the standardised target → a Hub folder. Evaluation reports errors in bikes
per hour (MAE and RMSE), during training on the validation days and with ``seqkit evaluate`` on
the test days, next to two baselines that need no learning.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from seqkit.checks import MAX_DEPTH, MAX_WIDTH, check_choice, check_range, probability
from seqkit.errors import UserError
from seqkit.export.model_card import write_model_card
from seqkit.parts.base import Job
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.tabular.data import TableSplits, TabularDataSection, load_splits
from seqkit.tabular.models import ACTIVATIONS, TabularRegressor, TabularRegressorConfig
from seqkit.trainer import SupervisedTask
from seqkit.trainer.tasks import Models, only_model

MODEL_TYPES = (TabularRegressorConfig.model_type,)
DataSection = TabularDataSection


@dataclass
class ModelSection:
    """The ``model`` section of a ``bike-sharing-mlp`` recipe."""

    hidden_sizes: list[int] | None = None
    """Width of each hidden layer (default [128, 64])."""
    activation: str = "relu"
    """relu, sigmoid (the textbook's) or tanh."""
    dropout: float = 0.0
    """Dropout after each hidden layer."""

    def __post_init__(self) -> None:
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_range("model.dropout", self.dropout, **probability())
        widths = self.hidden_sizes or []
        check_range("model.hidden_sizes (its length)", len(widths), 0, MAX_DEPTH)
        for i, width in enumerate(widths):
            check_range(f"model.hidden_sizes[{i}]", width, 1, MAX_WIDTH, integer=True)


class RegressionTask(SupervisedTask):
    """Mean squared error on standardised targets; evaluation also in the target's own units."""

    def evaluation_step(self, models: Models, batch: dict[str, torch.Tensor]) -> dict:
        model = only_model(models)
        output = model(**batch)
        std = model.config.target_std
        error = (output.predictions - batch["labels"]) * std  # bikes per hour
        count = batch["labels"].shape[0]
        return {
            "loss": (output.loss * count, count),
            "mae": (error.abs().sum(), count),
            "mse": (error.pow(2).sum(), count),
        }

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        if "mse" in metrics:
            metrics["rmse"] = math.sqrt(metrics.pop("mse"))
        return metrics


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Read and split the table, build the regressor, and wrap both for the Trainer."""
    splits = load_splits(recipe.data)
    torch.manual_seed(recipe.trainer.seed)
    model = TabularRegressor(
        TabularRegressorConfig(
            num_features=len(splits.feature_names),
            hidden_sizes=section.hidden_sizes,
            activation=section.activation,
            dropout=section.dropout,
            feature_names=splits.feature_names,
            target_name=recipe.data.target,
            target_mean=splits.target_mean,
            target_std=splits.target_std,
        )
    )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        write_model_card(
            folder,
            title=f"seqkit bike-sharing MLP ({recipe.source.stem if recipe.source else 'recipe'})",
            family="bike-sharing-mlp",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["tabular", "regression"],
            pipeline_tag="tabular-regression",
            how_to_load=HOW_TO_LOAD,
        )

    return Job(
        task=RegressionTask(model),
        train_data=splits.train,
        eval_data=splits.val if len(splits.val) else None,
        save_final=save_final,
        summary={
            "rows (train/val/test)": f"{len(splits.train)}/{len(splits.val)}/{len(splits.test)}",
            "features": len(splits.feature_names),
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from transformers import AutoModel

model = AutoModel.from_pretrained("PATH")
bikes_per_hour = model.predict(features)  # features: (B, F) in the order of config.feature_names
# or, from the command line: seqkit evaluate RUN_DIR
"""


def load_pretrained(folder: Path) -> tuple[TabularRegressor, None]:
    """``(model, None)``: a regressor has no tokenizer."""
    from seqkit.folders import load_weights

    return load_weights(TabularRegressor, folder), None


def generate_command(folder: Path, args) -> int:
    raise UserError(f"{folder} holds a regressor, which generates nothing; try seqkit evaluate")


def _errors(predictions: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    error = predictions - truth
    return float(np.abs(error).mean()), float(np.sqrt((error**2).mean()))


def baselines(splits: TableSplits, target: str, part: str) -> dict[str, np.ndarray]:
    """Predictions that need no learning, for rows of ``part``: the training mean, and the
    training mean of the same hour on the same kind of day (working day or not)."""
    columns, train, rows = splits.columns, splits.parts["train"], splits.parts[part]
    y = columns[target]
    hour_day = columns["hr"].astype(int) * 2 + columns["workingday"].astype(int)
    table = {key: y[train][hour_day[train] == key].mean() for key in np.unique(hour_day[train])}
    overall = y[train].mean()
    return {
        "train_mean": np.full(len(rows), overall),
        "hour_workingday_mean": np.array([table.get(k, overall) for k in hour_day[rows]]),
    }


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """MAE and RMSE (bikes per hour) on the training, validation and test days, and the test
    errors of the two baselines of :func:`baselines`."""
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    splits = load_splits(recipe.data)
    model, _ = load_pretrained(folder)
    if model.config.num_features != len(splits.feature_names):
        raise UserError(
            f"{folder} expects {model.config.num_features} features; the data gives "
            f"{len(splits.feature_names)}"
        )
    target = recipe.data.target
    truth = splits.columns[target]
    metrics: dict[str, float] = {}
    for part, dataset in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        if not len(dataset):
            continue
        predictions = model.predict(dataset.features).numpy()
        mae, rmse = _errors(predictions, truth[splits.parts[part]])
        metrics[f"{part}_mae"], metrics[f"{part}_rmse"] = mae, rmse
    for name, predictions in baselines(splits, target, "test").items():
        mae, rmse = _errors(predictions, truth[splits.parts["test"]])
        metrics[f"baseline_{name}_test_mae"], metrics[f"baseline_{name}_test_rmse"] = mae, rmse
    return metrics
