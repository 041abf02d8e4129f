"""The ``regression`` task: one number per row, trained on its standardised value.

Errors are reported in the target's own units (bikes per hour): mean absolute error and root
mean squared error, during training on the validation days; ``seqkit evaluate`` scores the test
days and adds the training and validation errors and the test errors of two baselines that need
no learning (:func:`seqkit.tabular.data.baselines`), so a number can be read against them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from seqkit.trainer.tasks import Models, SupervisedTask, only_model


def errors(predictions: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(MAE, RMSE)`` of ``predictions`` against ``truth``."""
    error = predictions - truth
    return float(np.abs(error).mean()), float(np.sqrt((error**2).mean()))


class RegressionTask(SupervisedTask):
    """Mean squared error on standardised targets; evaluation also in the target's own units."""

    default_data = "bike-sharing"
    pipeline_tag = "tabular-regression"
    auto_class = "AutoModel"

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

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """MAE and RMSE on the training and validation days, and the test errors of the
        baselines, when ``eval_data`` is the test part of a whole split."""
        from seqkit.tabular.data import baselines

        splits = getattr(eval_data, "splits", None)
        if splits is None:
            return {}
        model = self.model
        device = next(model.parameters()).device
        truth = splits.columns[splits.features.target]
        scores: dict[str, float] = {}
        for part, dataset in (("train", splits.train), ("val", splits.val)):
            if len(dataset):
                predictions = model.predict(dataset.features.to(device)).cpu().numpy()
                mae, rmse = errors(predictions, truth[splits.parts[part]])
                scores[f"{part}_mae"], scores[f"{part}_rmse"] = mae, rmse
        for name, predictions in baselines(splits, "test").items():
            mae, rmse = errors(predictions, truth[splits.parts["test"]])
            scores[f"baseline_{name}_test_mae"], scores[f"baseline_{name}_test_rmse"] = mae, rmse
        return scores

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> RegressionTask:
        return cls(model)
