"""Compose a recipe's parts into a run, and read a run's model back without its data.

:func:`build_job` is the one place where a task, a model builder and a data module meet:

    data module → tokenizer → facts (vocabulary size...) → builder → config → model
                → data sets of the model's window → task

At step 0 a run writes :data:`RUN_MODEL` (``RUN/model/``): the model's resolved ``config.json``
and its tokenizer — a Hub folder without weights. With it a run stands alone: ``--resume``
reloads the tokenizer instead of training it again, and a checkpoint becomes a Hub folder
(:func:`load_checkpoint`) without reading the corpus, so export, evaluation and generation of a
checkpoint work after the data is gone.
"""

from __future__ import annotations

import dataclasses
import importlib
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqkit.checks import show
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Job, ModelBuilder
from seqkit.parts.registry import DATA_MODULES, MODEL_BUILDERS, SHORTHANDS, TASKS
from seqkit.recipes import DataSection, Recipe, parse_section, recipe_to_dict
from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS

RUN_MODEL = "model"
"""The folder of a run that holds its model config and tokenizer from step 0."""


# ----------------------------------------------------------------------------- recipes


def expand_shorthand(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a recipe mapping) with a one-word ``task`` of earlier recipes written out as
    the task, ``model.architecture`` and the model fields it fixes."""
    task = raw.get("task")
    if not isinstance(task, str) or task not in SHORTHANDS:
        return raw
    short = SHORTHANDS[task]
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        return raw  # the recipe loader names the mistake
    fixed = {"architecture": short.architecture, **short.presets}
    for key, value in fixed.items():
        if key in model and model[key] != value:
            raise UserError(
                f"task {task} trains model.{key} {value}, but the recipe sets "
                f"model.{key} {show(model[key])}; write task: {short.task} and choose "
                f"model.{key} yourself"
            )
    return {**raw, "task": short.task, "model": {**fixed, **model}}


def is_composed(task: str) -> bool:
    """Whether recipes of ``task`` are built from registered parts."""
    return task in TASKS


def data_module_class(task: str, data: Any) -> type[DataModule]:
    """The data module a recipe's ``data`` mapping names, or the task's default."""
    name = data.get("module") if isinstance(data, dict) else getattr(data, "module", None)
    if name is None:
        name = TASKS.get(task).default_data
    return DATA_MODULES.get(name)


def data_section_for(task: str, data: Any = None) -> type[DataSection]:
    """The dataclass that validates a recipe's ``data`` section for ``task``."""
    if is_composed(task):
        return data_module_class(task, data).Section
    from seqkit.families import get_family  # a family not yet composed from parts

    return getattr(get_family(task), "DataSection", DataSection)


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
    task_class = TASKS.get(recipe.task)
    fields = dict(recipe.model)
    architecture = fields.pop("architecture", None)
    if architecture is None:
        raise UserError(
            f"model.architecture is not set; task {recipe.task} trains one of: "
            + ", ".join(MODEL_BUILDERS.names())
        )
    builder_class = MODEL_BUILDERS.get(architecture)
    builder = parse_section(builder_class, fields, "model")
    builder.model_class(recipe.task)  # refuses an architecture that cannot do this task
    data = data_module_class(recipe.task, recipe.data)(recipe)
    return Parts(recipe.task, task_class, builder, data)


# ----------------------------------------------------------------------------- training


def build_job(recipe: Recipe, run_dir: Path, resume: bool = False) -> Job:
    """Everything the Trainer needs for ``recipe``, checked before anything touches disk.

    Resuming a run that wrote :data:`RUN_MODEL` rebuilds the model from its saved config and
    reads its saved tokenizer: the tokenizer is never trained twice, and ``init_from`` is not
    read again (the checkpoint holds the weights).
    """
    parts = resolve(recipe)
    saved = run_dir / RUN_MODEL
    if resume and (saved / "config.json").is_file():
        tokenizer = parts.data.load_tokenizer(saved)
        model = _from_saved_config(parts.model_class, parts.builder, saved)
    else:
        init_from = Path(parts.builder.init_from) if parts.builder.init_from else None
        tokenizer = parts.data.tokenizer(init_from)
        facts = parts.data.facts(tokenizer)
        torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
        if init_from is not None:
            model = parts.builder.fit_to_data(_load_init_from(parts, init_from), facts)
        else:
            model = parts.model_class(parts.builder.config(parts.task_name, facts))
    parts.builder.set_trainable(model)
    _check_vocabulary(model, tokenizer)
    if parts.task_class.generates_text:
        parts.data.check_sample(tokenizer)
    prepared = parts.data.prepare(tokenizer, *parts.builder.window(model.config))
    task = parts.task_class.for_model(model, parts.data.facts(tokenizer))

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        write_model_folder(folder, model, tokenizer, recipe, parts, metrics, run_dir)

    def save_run_files(run_dir: Path) -> None:
        folder = run_dir / RUN_MODEL
        folder.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)

    sample = None
    if parts.task_class.generates_text:

        def sample() -> str:
            from seqkit.generation import sample_text

            return sample_text(model, tokenizer, recipe.sample, seed=recipe.trainer.seed)

    return Job(
        task=task,
        train_data=prepared.train_data,
        eval_data=prepared.eval_data,
        collate_fn=prepared.collate_fn,
        train_lengths=prepared.train_lengths,
        save_final=save_final,
        save_run_files=save_run_files,
        sample=sample,
        callbacks=[*prepared.callbacks, *task.callbacks()],
        summary={
            **prepared.summary,
            "vocabulary": parts.data.vocabulary(tokenizer),
            "parameters": model.num_parameters(),
            "model": {"architecture": MODEL_BUILDERS.name_of(type(parts.builder))}
            | parts.builder.describe(),
        },
    )


def job_for(recipe: Recipe, run_dir: Path, resume: bool = False) -> Job:
    """The job of any recipe: composed from parts, or built by a family not yet converted."""
    if is_composed(recipe.task):
        return build_job(recipe, run_dir, resume=resume)
    from seqkit.families import get_family

    family = get_family(recipe.task)
    return family.build(recipe, parse_section(family.ModelSection, recipe.model, "model"))


def _check_vocabulary(model: Any, tokenizer: Any) -> None:
    if tokenizer is None or not hasattr(model.config, "vocab_size"):
        return  # data without a vocabulary (images, graphs, environments)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise UserError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{model.config.vocab_size}"
        )


def _from_saved_config(model_class: type, builder: ModelBuilder, folder: Path) -> Any:
    """A freshly initialised model of the config saved in ``folder`` (weights come later)."""
    from seqkit.folders import loading

    with loading(f"the run's model config {folder / 'config.json'}"):
        config = model_class.config_class.from_pretrained(folder)
    for key, value in builder.runtime_settings().items():
        setattr(config, key, value)
    return model_class(config)


def _load_init_from(parts: Parts, folder: Path) -> Any:
    """The model in ``folder`` for fine-tuning, of exactly the recipe's sizes, running the
    recipe's kernel paths."""
    builder = parts.builder
    model = load_init_from(
        folder,
        parts.model_class,
        f"seqkit {MODEL_BUILDERS.name_of(type(builder))}",
        {
            config_field: getattr(builder, recipe_field)
            for config_field, recipe_field in builder.shape_fields.items()
            if getattr(builder, recipe_field) is not None
        },
        recipe_names=builder.shape_fields,
    )
    for key, value in builder.runtime_settings().items():
        setattr(model.config, key, value)
    return model


def load_init_from(
    folder: Path,
    model_class: type,
    what: str,
    expected: dict[str, Any],
    recipe_names: dict[str, str] | None = None,
) -> Any:
    """The model in ``folder`` (a recipe's ``model.init_from``), for fine-tuning.

    A folder of another model type, one whose architecture differs from the recipe's
    (``expected``: the recipe's value by config field; ``recipe_names`` maps a config field to
    the recipe field that sets it, for the message), or weights that do not all fit are a
    UserError naming what does not fit: ``from_pretrained`` alone would take the folder's sizes
    without a word and initialise missing weights at random.
    """
    from seqkit.folders import check_model_folder, load_weights, loading, read_config

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"model.init_from: {folder} is not a model folder (no config.json)")
    model_type = read_config(folder)["model_type"]
    if model_type != model_class.config_class.model_type:
        raise UserError(f"model.init_from: {folder} holds a {model_type!r} model, not a {what} one")
    check_model_folder(folder)
    # The config class fills in what config.json leaves out (saved as a diff to defaults).
    with loading(f"model.init_from: {folder / 'config.json'}"):
        config = model_class.config_class.from_pretrained(folder)
    names = recipe_names or {}
    differ = [
        f"model.{names.get(field, field)} {value!r} vs {getattr(config, field, None)!r}"
        for field, value in expected.items()
        if getattr(config, field, None) != value
    ]
    if differ:
        raise UserError(
            f"model.init_from: {folder} is another model than the recipe's ("
            + "; ".join(differ)
            + " in the folder); set these to the folder's values"
        )
    return load_weights(model_class, folder, what="model.init_from")


# ----------------------------------------------------------------------------- model folders


HOW_TO_LOAD = """\
import {module}  # registers the {model_type} model type with the Auto classes
from transformers import {auto_class}

model = {auto_class}.from_pretrained("PATH")
"""


def save_pretrained(model: Any, tokenizer: Any, folder: Path, task: str = "causal-lm") -> None:
    """Write weights, config, tokenizer and the task's generation defaults as a Hub folder
    (without a model card: :func:`write_model_folder` adds one)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    defaults = TASKS.get(task).generation_defaults
    if defaults:
        from transformers import GenerationConfig

        GenerationConfig(**defaults).save_pretrained(folder)


def write_model_folder(
    folder: Path,
    model: Any,
    tokenizer: Any,
    recipe: Recipe,
    parts: Parts,
    metrics: dict[str, Any],
    run_dir: Path | None,
) -> None:
    """Write ``model`` as a Hub folder: weights, config, tokenizer, generation defaults and a
    model card with the recipe, the metrics and the loss plot."""
    from seqkit.export.model_card import write_model_card

    save_pretrained(model, tokenizer, folder, parts.task_name)
    task_class = parts.task_class
    architecture = MODEL_BUILDERS.name_of(type(parts.builder))
    loss_plot = run_dir / "loss.png" if run_dir is not None else None
    write_model_card(
        folder,
        title=f"seqkit {architecture} {parts.task_name} model "
        f"({recipe.source.stem if recipe.source else 'recipe'})",
        family=parts.task_name,
        num_parameters=model.num_parameters(),
        recipe=recipe_to_dict(recipe),
        metrics=metrics,
        datasets=parts.data.datasets_for_card(),
        loss_plot=loss_plot if loss_plot is not None and loss_plot.is_file() else None,
        tags=[*parts.builder.card_tags(), parts.task_name, *parts.data.card_tags(tokenizer)],
        pipeline_tag=task_class.pipeline_tag,
        how_to_load=HOW_TO_LOAD.format(
            module=type(model).__module__,
            model_type=model.config.model_type,
            auto_class=task_class.auto_class,
        )
        + parts.data.how_to_load,
    )


def builder_for_model_type(model_type: str) -> tuple[type[ModelBuilder], str] | None:
    """``(builder class, task)`` of the registered architecture whose model for that task has
    ``model_type``, or None."""
    for name in MODEL_BUILDERS.names():
        builder_class = MODEL_BUILDERS.get(name)
        for task, head in builder_class.heads.items():
            if head.config_class.model_type == model_type or model_type in builder_class.stock:
                return builder_class, task
    return None


@dataclass
class Loaded:
    """A model read back from a folder or a checkpoint, with what it was trained as."""

    model: Any
    tokenizer: Any
    task_name: str
    builder: ModelBuilder
    data_class: type[DataModule]
    recipe: Recipe | None


def _run_recipe(run_dir: Path | None) -> Recipe | None:
    if run_dir is None or not (run_dir / "recipe.yaml").is_file():
        return None
    return load_recipe(run_dir / "recipe.yaml")


def _parts_of(model_type: str, recipe: Recipe | None) -> tuple[ModelBuilder, str, type]:
    """The builder (with the run's settings, else the defaults), task and data module class."""
    found = builder_for_model_type(model_type)
    if found is None:
        raise UserError(f"seqkit cannot load a model of type {model_type!r}")
    builder_class, task = found
    if recipe is not None and is_composed(recipe.task):
        parts = resolve(recipe)
        return parts.builder, parts.task_name, type(parts.data)
    return builder_class(), task, data_module_class(task, None)


def load_folder(folder: Path, run_dir: Path | None = None) -> Loaded:
    """The model and tokenizer of a Hub folder written by a composed run (checked first)."""
    from seqkit.folders import check_model_folder, check_vocabulary, load_weights, read_config

    check_model_folder(folder)
    recipe = _run_recipe(run_dir)
    model_type = read_config(folder)["model_type"]
    builder, task, data_class = _parts_of(model_type, recipe)
    if model_type in builder.stock:  # a stock transformers folder, converted on load
        module_name, function = builder.stock[model_type].split(":")
        model, tokenizer = getattr(importlib.import_module(module_name), function)(folder)
        return Loaded(model.eval(), tokenizer, task, builder, data_class, recipe)
    model = load_weights(builder.model_class(task), folder)
    tokenizer = data_class.load_tokenizer(folder)
    if tokenizer is not None and hasattr(model.config, "vocab_size"):
        check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return Loaded(model.eval(), tokenizer, task, builder, data_class, recipe)


def load_checkpoint(checkpoint: Path) -> Loaded:
    """The model of ``RUN/checkpoints/step-N``: the run's saved config and tokenizer
    (:data:`RUN_MODEL`) with the checkpoint's weights. The corpus is not read."""
    from seqkit.folders import read_config
    from seqkit.trainer.checkpoint import load_module_weights

    run_dir = checkpoint.parent.parent
    saved = run_dir / RUN_MODEL
    if not (saved / "config.json").is_file():
        raise UserError(
            f"{run_dir} has no {RUN_MODEL}/config.json (a run from before seqkit wrote it)"
        )
    recipe = _run_recipe(run_dir)
    builder, task, data_class = _parts_of(read_config(saved)["model_type"], recipe)
    model = _from_saved_config(builder.model_class(task), builder, saved)
    # The task names the modules the Trainer saved (a GAN's generator and discriminator).
    for name, module in TASKS.get(task).for_model(model, {}).models.items():
        load_module_weights(module, checkpoint / CHECKPOINT_WEIGHTS.format(name=name))
    tokenizer = data_class.load_tokenizer(saved)
    _check_vocabulary(model, tokenizer)
    return Loaded(model.eval(), tokenizer, task, builder, data_class, recipe)


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint folder the Trainer wrote (``RUN/checkpoints/step-N``)."""
    return path.name.startswith("step-") and any(path.glob(CHECKPOINT_WEIGHTS.format(name="*")))


def open_trained(path: str | Path) -> Loaded | None:
    """The model behind a run directory, a model folder or a checkpoint, when a composed run
    trained it; None for a model of a family not yet composed from parts."""
    from seqkit.folders import read_config, resolve_model_dir, run_dir_of

    path = Path(path)
    if is_checkpoint(path) and saved_run_model(path.parent.parent):
        if not (path / "COMPLETE").exists():
            raise UserError(f"checkpoint {path} is incomplete (its writing was cut off)")
        return load_checkpoint(path)
    folder = resolve_model_dir(path)
    if builder_for_model_type(read_config(folder)["model_type"]) is None:
        return None
    return load_folder(folder, run_dir_of(folder))


def saved_run_model(run_dir: Path) -> bool:
    """Whether ``run_dir`` wrote its model config and tokenizer (:data:`RUN_MODEL`)."""
    return (run_dir / RUN_MODEL / "config.json").is_file()


def write_checkpoint_folder(checkpoint: Path, folder: Path, metrics: dict[str, Any]) -> None:
    """Write checkpoint ``RUN/checkpoints/step-N`` as the Hub folder training would have
    written at that step."""
    loaded = load_checkpoint(checkpoint)
    run_dir = checkpoint.parent.parent
    if loaded.recipe is None:
        raise UserError(f"{checkpoint} is not inside a run directory (no recipe.yaml)")
    parts = resolve(loaded.recipe)
    write_model_folder(
        folder, loaded.model, loaded.tokenizer, loaded.recipe, parts, metrics, run_dir
    )


# ----------------------------------------------------------------------------- evaluation


def evaluate(
    loaded: Loaded, data_path: str | None, batch_size: int | None, options: Any = None
) -> dict[str, float]:
    """The task's evaluation of a loaded model through the Trainer's evaluator — the numbers
    training logs as ``eval/...`` — on its run's validation data, or on every example of
    ``data_path`` (a file in the recipe's format); then the task's own scorers
    (:meth:`~seqkit.trainer.tasks.Task.extra_evaluation`: BLEU, greedy return...), given the
    command's ``options``."""
    from seqkit.trainer import Trainer

    recipe = loaded.recipe
    if recipe is None:
        if data_path is None:
            raise UserError(
                "the model is not inside a run directory, so its validation data is unknown; "
                "give --data FILE to score it on a file"
            )
        recipe = Recipe(task=loaded.task_name)
    data = loaded.data_class(recipe)
    window = loaded.builder.window(loaded.model.config)
    if data_path is not None:
        prepared = data.scoring_data(loaded.tokenizer, *window, Path(data_path))
    else:
        prepared = data.evaluation_data(loaded.tokenizer, *window)
    if prepared.eval_data is None:
        raise UserError(
            "the run's recipe keeps no validation data (data.val_fraction is 0); give --data FILE"
        )
    task = TASKS.get(loaded.task_name).for_model(loaded.model, data.facts(loaded.tokenizer))
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
            eval_data=prepared.eval_data,
            collate_fn=prepared.collate_fn,
        )
        metrics = trainer.evaluate()
    metrics["eval/examples"] = len(prepared.eval_data)
    scores = task.extra_evaluation(loaded.tokenizer, prepared.eval_data, options)
    return metrics | {f"eval/{name}": value for name, value in scores.items()}
