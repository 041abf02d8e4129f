"""``seqkit evaluate``: a trained model scored the way training scores it.

:func:`evaluate` runs the task's evaluation step through the Trainer's evaluator (the ``eval/*``
numbers training logs) on the run's validation data or on a file the user holds, then the task's
and the data module's own scorers (BLEU, classification reports, music statistics, greedy
return).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.parts.model_folder import Loaded
from seqkit.parts.registry import TASKS
from seqkit.recipes import Recipe

# ----------------------------------------------------------------------------- evaluation


def evaluate(
    loaded: Loaded,
    data_path: str | tuple[str, ...] | None,
    batch_size: int | None,
    options: Any = None,
) -> dict[str, float]:
    """The task's evaluation of a loaded model through the Trainer's evaluator — the numbers
    training logs as ``eval/...`` — on its run's validation data, or on every example of
    ``data_path`` (a file in the recipe's format, or the files that together hold the examples:
    a translation's source and reference files); then the task's own scorers
    (:meth:`~seqkit.trainer.tasks.Task.extra_evaluation`: BLEU, greedy return...), given the
    command's ``options``."""
    from seqkit.trainer import Trainer

    recipe = loaded.recipe
    task_class = TASKS.get(loaded.task_name)
    if recipe is None and data_path is None and not task_class.evaluates_without_data:
        raise UserError(
            "the model is not inside a run directory, so its validation data is unknown; "
            "give --data FILE to score it on a file"
        )
    metrics: dict[str, Any] = {}
    eval_data = None
    facts: dict[str, Any] = {}
    data = None
    if recipe is not None or data_path is not None:
        recipe = recipe or Recipe(task=loaded.task_name, data=loaded.data_class.Section())
        data = loaded.data_class(recipe)
        data.builder, data.model_config = loaded.builder, loaded.model.config
        window = loaded.builder.window(loaded.model.config)
        if data_path is not None:
            path = tuple(map(Path, data_path)) if isinstance(data_path, tuple) else Path(data_path)
            prepared = data.scoring_data(loaded.tokenizer, *window, path)
        else:
            prepared = data.evaluation_data(loaded.tokenizer, *window)
        eval_data = prepared.eval_data
        facts = data.facts(loaded.tokenizer)
        if loaded.recipe is not None:
            facts |= loaded.builder.task_settings(loaded.recipe)
        if eval_data is None and not task_class.evaluates_without_data:
            raise UserError(
                "the run's recipe keeps no validation data (data.val_fraction is 0); "
                "give --data FILE"
            )
    task = task_class.for_model(loaded.model, facts)
    if eval_data is not None:  # a task that evaluates without data may still have some
        config = dataclasses.replace(
            recipe.trainer,
            report_to=[],
            eval_batches=None,
            eval_batch_size=batch_size or recipe.trainer.eval_batch_size,
        )
        with tempfile.TemporaryDirectory(prefix="seqkit-evaluate-") as scratch:
            trainer = Trainer(
                task,
                config,
                output_dir=scratch,
                eval_data=eval_data,
                collate_fn=prepared.collate_fn,
            )
            metrics = trainer.evaluate()
        metrics["eval/examples"] = len(eval_data)
    scores = task.extra_evaluation(loaded.tokenizer, eval_data, options)
    if data is not None:  # the data module's own scores (music statistics)
        scores |= data.extra_evaluation(loaded.model, loaded.tokenizer, eval_data, metrics, options)
    return metrics | {f"eval/{name}": value for name, value in scores.items()}
