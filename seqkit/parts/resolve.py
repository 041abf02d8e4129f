"""From a recipe to its parts: the task, the model builder and the data module it names.

A recipe's ``task``, ``model.architecture`` and ``data.module`` are looked up in the registries
(:mod:`seqkit.parts.registry`); an old one-word task (``gpt``, ``lstm-lm``...) is first expanded
to the same three (:func:`expand_shorthand`). :func:`resolve` validates the ``model`` section into
its builder and makes the data module; :mod:`seqkit.parts.compose` builds a run from them, and
:mod:`seqkit.parts.model_folder` the parts of a saved model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqkit.checks import show
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, ModelBuilder
from seqkit.parts.registry import DATA_MODULES, MODEL_BUILDERS, SHORTHANDS, TASKS
from seqkit.recipes import DataSection, Recipe, parse_section

# ----------------------------------------------------------------------------- recipes


def expand_shorthand(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a recipe mapping) with a one-word ``task`` of earlier recipes written out as
    the task, ``model.architecture``, the model and data fields it fixes, the old task's
    defaults, and its model field names as the architecture's."""
    task = raw.get("task")
    if not isinstance(task, str) or task not in SHORTHANDS:
        return raw
    short = SHORTHANDS[task]
    model = raw.get("model") or {}
    data = raw.get("data") or {}
    if not isinstance(model, dict) or not isinstance(data, dict):
        return raw  # the recipe loader names the mistake
    if task in TASKS and "architecture" in model:
        return raw  # a task name that is also a shorthand (seq2seq), written out in full
    renamed: dict[Any, Any] = {}
    written_as: dict[Any, Any] = {}
    for key, value in model.items():
        new = short.renames.get(key, key)
        if new is None:
            continue  # accepted and ignored by the old task
        if new in renamed:
            raise UserError(
                f"task {task}: model.{written_as[new]} and model.{key} both set model.{new}; "
                "set only one of them"
            )
        renamed[new], written_as[new] = value, key
    expanded = {"model": {"architecture": short.architecture, **short.presets}}
    if short.data:
        expanded["data"] = dict(short.data)
    given = {"model": renamed, "data": data}
    for section, fixed in list(expanded.items()):
        for key, value in fixed.items():
            if key in given[section] and given[section][key] != value:
                raise UserError(
                    f"task {task} trains {section}.{key} {value}, but the recipe sets "
                    f"{section}.{key} {show(given[section][key])}; write task: {short.task} "
                    f"and choose {section}.{key} yourself"
                )
        defaults = short.defaults if section == "model" else {}
        expanded[section] = {**fixed, **defaults, **given[section]}
    return {**raw, "task": short.task, **expanded}


def registered_task(task: str) -> type:
    """The registered task ``task`` names; an unknown name lists the tasks and the one-word
    task names of earlier recipes."""
    if task not in TASKS:
        valid = ", ".join(sorted({*TASKS.names(), *SHORTHANDS}))
        raise UserError(f"unknown task {task!r}; valid tasks: {valid}")
    return TASKS.get(task)


def data_module_class(task: str, data: Any) -> type[DataModule]:
    """The data module a recipe's ``data`` mapping names, or the task's default."""
    name = data.get("module") if isinstance(data, dict) else getattr(data, "module", None)
    if name is None:
        name = registered_task(task).default_data
    return DATA_MODULES.get(name)


def data_section_for(task: str, data: Any = None) -> type[DataSection]:
    """The dataclass that validates a recipe's ``data`` section for ``task``."""
    return data_module_class(task, data).Section


def load_recipe(path: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Read, override and validate a recipe file, its shorthand task written out."""
    from seqkit import recipes

    return recipes.load_recipe(
        path, overrides, data_section_for=data_section_for, expand=expand_shorthand
    )


# ----------------------------------------------------------------------------- parts


@dataclass
class Parts:
    """A recipe's three parts, resolved and validated."""

    task_name: str
    task_class: type
    builder: ModelBuilder
    data: DataModule

    @property
    def model_class(self) -> type:
        return self.builder.model_class(self.task_name)


def resolve(recipe: Recipe) -> Parts:
    """The parts ``recipe`` names, its ``model`` section validated by the builder."""
    task_class = registered_task(recipe.task)
    fields = dict(recipe.model)
    architecture = fields.pop("architecture", None)
    if architecture is None:
        raise UserError(
            f"model.architecture is not set; task {recipe.task} trains one of: "
            + ", ".join(MODEL_BUILDERS.names())
        )
    builder_class = MODEL_BUILDERS.get(architecture)
    builder = parse_section(builder_class, fields, "model")
    builder.check_task(recipe.task)  # refuses an architecture that cannot do this task
    data_class = data_module_class(recipe.task, recipe.data)
    wanted = builder_class.data_module
    if wanted is not None and DATA_MODULES.get(wanted) is not data_class:
        raise UserError(
            f"model.architecture {architecture} reads the {wanted} data module, not "
            f"{DATA_MODULES.name_of(data_class)}; set data.module: {wanted}"
        )
    data = data_class(recipe)
    data.builder = builder
    return Parts(recipe.task, task_class, builder, data)
