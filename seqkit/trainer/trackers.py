"""Experiment trackers (TensorBoard, wandb, MLflow, ...) through accelerate, named and described.

accelerate starts every tracker with ``init_trackers(project_name, config, init_kwargs)``
(``accelerate.Accelerator.init_trackers``): one project name for all of them, the run's
hyperparameters, and per-tracker keyword arguments. seqkit fills them in the way accelerate and
transformers users expect:

- the project is the experiment (``trainer.project``), and the run is named after its folder
  (``runs/shakespeare-char`` is the run ``shakespeare-char``), passed to each tracker under the
  keyword that tracker names runs by;
- the hyperparameters are the resolved config, flattened to ``section.key`` names with values
  every tracker can store (bool, int, float, str);
- TensorBoard writes into the run folder's ``tensorboard/`` (not ``<project>/``), so the run
  folder keeps one layout whatever the project is called and ``tensorboard --logdir runs``
  shows one entry per run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.tracking import TensorBoardTracker

from seqkit.trainer.config import TrainerConfig

TENSORBOARD_DIR = "tensorboard"
"""The run folder's sub-folder that holds the TensorBoard event files."""

RUN_NAME_KEYWORD = {
    "wandb": "name",  # wandb.init(project=..., name=...)
    "trackio": "name",  # trackio.init(project=..., name=...)
    "swanlab": "experiment_name",  # swanlab.init(project=..., experiment_name=...)
    "mlflow": "run_name",  # accelerate's MLflowTracker(experiment_name, ..., run_name=...)
    "clearml": "task_name",  # clearml.Task.init(project_name=..., task_name=...)
}
"""How each tracker takes the run's name. comet_ml, dvclive and aim have no such keyword in
their accelerate start-up (aim names its run after the project), so they are left as they are."""

Scalar = bool | int | float | str


def tracker_list(report_to: list[str], run_dir: Path) -> list[Any]:
    """``log_with`` for the Accelerator: the names in ``report_to``, with TensorBoard given as a
    tracker writing to ``run_dir/tensorboard`` (by name, accelerate would write to
    ``run_dir/<project>``)."""
    return [
        TensorBoardTracker(TENSORBOARD_DIR, run_dir) if name == "tensorboard" else name
        for name in report_to
    ]


def tracker_init_kwargs(report_to: list[str], run_name: str, run_dir: Path) -> dict[str, dict]:
    """``init_kwargs`` for ``init_trackers``: the run name for each tracker in ``report_to``,
    and wandb's and dvclive's local files kept in the run folder (not the working directory)."""
    kwargs: dict[str, dict] = {
        name: {RUN_NAME_KEYWORD[name]: run_name} for name in report_to if name in RUN_NAME_KEYWORD
    }
    if "wandb" in kwargs:
        kwargs["wandb"]["dir"] = str(run_dir)
    if "dvclive" in report_to:
        kwargs["dvclive"] = {"dir": str(run_dir / "dvclive")}
    return kwargs


def flatten_hyperparameters(values: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """``{"trainer": {"lr": 0.1}}`` -> ``{"trainer.lr": 0.1}``, each value one a tracker stores.

    TensorBoard's hparams take only bool, int, float and str (and drop None); wandb and MLflow
    take more but show nested lists poorly. So None becomes ``"null"`` (as a recipe writes it),
    a non-finite float its name, and lists and paths their text.
    """
    flat: dict[str, Scalar] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_hyperparameters(value, f"{name}."))
        elif value is None:
            flat[name] = "null"
        elif isinstance(value, float) and not math.isfinite(value):
            flat[name] = str(value)  # nan, inf: TensorBoard's hparams plugin rejects them
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = str(value)
    return flat


def start_trackers(
    accelerator: Accelerator,
    config: TrainerConfig,
    run_dir: Path,
    hyperparameters: Mapping[str, Any] | None = None,
) -> None:
    """Start the trackers of ``config.report_to`` for the run in ``run_dir``.

    ``hyperparameters`` (nested, e.g. the whole recipe) are what the run records; without them,
    the trainer config under ``trainer.``. Either way ``trainer.mixed_precision`` is the
    precision the run actually uses (the recipe may leave it to accelerate), and ``run.name``
    and ``run.project`` say where to find the run.
    """
    run_name = Path(run_dir).resolve().name
    values = dict(hyperparameters) if hyperparameters is not None else {"trainer": asdict(config)}
    flat = flatten_hyperparameters(values)
    if "trainer.mixed_precision" in flat:
        flat["trainer.mixed_precision"] = accelerator.mixed_precision
    flat["run.name"] = run_name
    flat["run.project"] = config.project
    accelerator.init_trackers(
        config.project,
        config=flat,
        init_kwargs=tracker_init_kwargs(config.report_to, run_name, Path(run_dir)),
    )
