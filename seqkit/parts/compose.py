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
DATA_MODULE_FIELD = "data_module"
"""The ``config.json`` field naming the data module a model was trained on, when it is not its
task's default (``chorales``): how a model folder or checkpoint says which data module reads its
tokenizer and what a sample of it is (a GPT folder that composes MIDI). The one home of that
fact; a folder without it holds the task's default data (text)."""


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
    builder.model_class(recipe.task)  # refuses an architecture that cannot do this task
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
        if init_from is not None:  # before its tokenizer is read: a folder of another model
            check_init_from_type(init_from, parts.model_class, _what(parts.builder))
        tokenizer = parts.data.tokenizer(init_from)
        facts = parts.data.facts(tokenizer)
        torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
        if init_from is not None:
            model = parts.builder.from_init(parts.task_name, init_from, facts)
            if model is None:
                model = _load_init_from(parts, init_from)
            model = parts.builder.fit_to_data(model, facts)
            _check_labels(model, facts, init_from)
        else:
            model = parts.model_class(parts.builder.config(parts.task_name, facts))
    parts.builder.set_trainable(model)
    _check_vocabulary(model, tokenizer)
    _check_model(parts.data, tokenizer, model, saved if resume else init_from_folder(parts))
    data_name = DATA_MODULES.name_of(type(parts.data))
    if data_name != parts.task_class.default_data:
        setattr(model.config, DATA_MODULE_FIELD, data_name)
    elif hasattr(model.config, DATA_MODULE_FIELD):  # fine-tuned from a model of other data
        delattr(model.config, DATA_MODULE_FIELD)
    if parts.task_class.generates_text:
        parts.data.check_sample(tokenizer)
    settings = parts.builder.task_settings(recipe)
    prepared = parts.data.prepare(tokenizer, *parts.builder.window(model.config))
    task = parts.task_class.for_model(model, {**parts.data.facts(tokenizer), **settings})

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        metrics = {**metrics, **task.save_extras(folder, run_dir)}
        write_model_folder(folder, model, tokenizer, recipe, parts, metrics, run_dir)

    def save_run_files(run_dir: Path) -> None:
        folder = run_dir / RUN_MODEL
        folder.mkdir(parents=True, exist_ok=True)
        model.config.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        generation = generation_config(parts.task_name, parts.builder, model.config)
        if generation is not None:
            generation.save_pretrained(folder)  # a checkpoint's decoding defaults

    sample = None
    if parts.task_class.generates_text:

        def sample() -> str:
            return parts.data.sample(model, tokenizer)

    elif hasattr(parts.task_class, "closing_sample"):  # e.g. translations of three pairs
        examples = prepared.eval_data or prepared.train_data

        def sample() -> str:
            settings = parts.builder.generation_settings(model.config)
            return parts.task_class.closing_sample(model, tokenizer, examples, settings)

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


def init_from_folder(parts: Parts) -> Path | None:
    return Path(parts.builder.init_from) if parts.builder.init_from else None


def _check_model(data: Any, tokenizer: Any, model: Any, folder: Path | None) -> None:
    """A data module's own check that ``tokenizer`` fits ``model`` (vocabularies the config
    does not call ``vocab_size``: a translation model's source and target); ``folder`` is
    where both were read, for the message."""
    check = getattr(data, "check_model", None)
    if check is not None and tokenizer is not None:
        check(tokenizer, model.config, folder if folder is not None else Path("the run"))


def _what(builder: ModelBuilder) -> str:
    return f"seqkit {MODEL_BUILDERS.name_of(type(builder))}"


def _check_labels(model: Any, facts: dict[str, Any], folder: Path) -> None:
    """A classifier fine-tuned from ``folder`` must have as many classes as the data."""
    wanted = facts.get("num_labels")
    have = getattr(model.config, "num_labels", None)
    if wanted is not None and have != wanted:
        names = facts.get("id2label") or {}
        shown = f" ({', '.join(map(str, names.values()))})" if names else ""
        raise UserError(
            f"model.init_from: {folder} classifies into {have} labels, the data has {wanted}{shown}"
        )


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
        _what(builder),
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
    from seqkit.folders import check_model_folder, load_weights, loading

    folder = Path(folder)
    check_init_from_type(folder, model_class, what)
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


def check_init_from_type(folder: Path, model_class: type, what: str) -> None:
    """Refuse an ``init_from`` that is not a model folder of ``model_class``'s model type
    (``what`` names the architecture in the message)."""
    from seqkit.folders import read_config

    if not (folder / "config.json").is_file():
        raise UserError(f"model.init_from: {folder} is not a model folder (no config.json)")
    model_type = read_config(folder)["model_type"]
    if model_type != model_class.config_class.model_type:
        raise UserError(f"model.init_from: {folder} holds a {model_type!r} model, not a {what} one")


# ----------------------------------------------------------------------------- model folders


HOW_TO_LOAD = """\
import {module}  # registers the {model_type} model type with the Auto classes
from transformers import {auto_class}
from {tokenizer_module} import {tokenizer_import}

model = {auto_class}.from_pretrained("PATH")
tokenizer = {tokenizer_call}("PATH")
"""


def _tokenizer_loader(data: DataModule) -> dict[str, str]:
    """The import and the call of the data module's ``load_tokenizer``, for the card: a
    function (``load_tokenizer``) or a class method (``TranslationTokenizer.from_pretrained``)."""
    loader = data.load_tokenizer
    name = loader.__qualname__
    module = loader.__module__ if "." in name else _public_module(loader)
    return {
        "tokenizer_module": module,
        "tokenizer_import": name.split(".")[0],
        "tokenizer_call": name,
    }


def generation_config(task: str, builder: ModelBuilder | None, config: Any) -> Any:
    """The ``GenerationConfig`` saved beside a model: the task's defaults, then the model
    section's (a translation recipe's ``beam_size``); None when neither has any."""
    settings = dict(TASKS.get(task).generation_defaults or {})
    if builder is not None:
        settings.update(builder.generation_settings(config))
    if not settings:
        return None
    from transformers import GenerationConfig

    return GenerationConfig(**settings)


def how_to_load(model: Any, task_class: type, data: DataModule | None) -> str:
    """The model card's code that loads the folder, with the ``data`` module's tokenizer (none
    for a model without one: images, graphs, agents) and the task's usage lines."""
    text = HOW_TO_LOAD.format(
        module=type(model).__module__,
        model_type=model.config.model_type,
        auto_class=task_class.auto_class,
        **(_tokenizer_loader(data) if data is not None else _NO_TOKENIZER),
    )
    if data is None:
        text = "".join(line for line in text.splitlines(True) if "tokenizer" not in line)
    return text + getattr(task_class, "how_to_use", "")


_NO_TOKENIZER = {"tokenizer_module": "", "tokenizer_import": "", "tokenizer_call": ""}


def save_pretrained(
    model: Any,
    tokenizer: Any,
    folder: Path,
    task: str = "causal-lm",
    builder: ModelBuilder | None = None,
) -> None:
    """Write weights, config, tokenizer and the generation defaults of the task and of the
    ``builder``'s settings as a Hub folder (without a model card: :func:`write_model_folder`
    adds one)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    generation = generation_config(task, builder, model.config)
    if generation is not None:
        generation.save_pretrained(folder)


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

    save_pretrained(model, tokenizer, folder, parts.task_name, parts.builder)
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
        how_to_load=how_to_load(model, task_class, parts.data if tokenizer is not None else None),
    )


def _public_module(function: Any) -> str:
    """The shortest package that exports ``function`` (``seqkit.data``, not
    ``seqkit.data.tokenizer_folder``), for the model card's loading code."""
    module = function.__module__
    parts = module.split(".")
    for end in range(2, len(parts)):
        package = importlib.import_module(".".join(parts[:end]))
        if getattr(package, function.__name__, None) is function:
            return package.__name__
    return module


def builder_for_model_type(
    model_type: str, architectures: Iterable[str] = ()
) -> tuple[type[ModelBuilder], str] | None:
    """``(builder class, task)`` of the registered architecture whose model for that task has
    ``model_type``, or None. When several heads share the model type (BERT's masked-LM and
    classifier), the one named in the folder's ``architectures`` wins."""
    named = set(architectures) if isinstance(architectures, (list, tuple)) else set()
    found = None
    for name in MODEL_BUILDERS.names():
        builder_class = MODEL_BUILDERS.get(name)
        for task, head in builder_class.heads.items():
            if head.config_class.model_type == model_type or model_type in builder_class.stock:
                if head.__name__ in named:
                    return builder_class, task
                found = found or (builder_class, task)
    return found


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


def _parts_of(config: dict[str, Any], recipe: Recipe | None) -> tuple[ModelBuilder, str, type]:
    """The builder (with the run's settings, else the defaults), task and data module class
    (the one ``config`` names in :data:`DATA_MODULE_FIELD`, else the builder's or the task's
    default) of a model whose ``config.json`` holds ``config``."""
    model_type = config["model_type"]
    found = builder_for_model_type(model_type, config.get("architectures") or ())
    if found is None:
        raise UserError(f"seqkit cannot load a model of type {model_type!r}")
    builder_class, task = found
    builder = builder_class()
    if recipe is not None:
        parts = resolve(recipe)
        return parts.builder, parts.task_name, type(parts.data)
    data_name = config.get(DATA_MODULE_FIELD)
    if data_name is not None and not isinstance(data_name, str):
        raise UserError(f"config.json: {DATA_MODULE_FIELD} must be a name, got {show(data_name)}")
    data_name = data_name or builder_class.data_module
    return builder, task, data_module_class(task, {"module": data_name} if data_name else None)


def load_folder(folder: Path, run_dir: Path | None = None) -> Loaded:
    """The model and tokenizer of a Hub folder written by a composed run (checked first)."""
    from seqkit.folders import check_model_folder, check_vocabulary, load_weights, read_config

    check_model_folder(folder)
    recipe = _run_recipe(run_dir)
    config = read_config(folder)
    model_type = config["model_type"]
    builder, task, data_class = _parts_of(config, recipe)
    if model_type in builder.stock:  # a stock transformers folder, converted on load
        module_name, function = builder.stock[model_type].split(":")
        model, tokenizer = getattr(importlib.import_module(module_name), function)(folder)
        return Loaded(model.eval(), tokenizer, task, builder, data_class, recipe)
    model = load_weights(builder.model_class(task), folder)
    tokenizer = data_class.load_tokenizer(folder)
    if tokenizer is not None and hasattr(model.config, "vocab_size"):
        check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    _check_model(data_class, tokenizer, model, folder)
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
    builder, task, data_class = _parts_of(read_config(saved), recipe)
    model = _from_saved_config(builder.model_class(task), builder, saved)
    # The task names the modules the Trainer saved (a GAN's generator and discriminator).
    for name, module in TASKS.get(task).for_model(model, {}).models.items():
        load_module_weights(module, checkpoint / CHECKPOINT_WEIGHTS.format(name=name))
    tokenizer = data_class.load_tokenizer(saved)
    _check_vocabulary(model, tokenizer)
    _check_model(data_class, tokenizer, model, saved)
    return Loaded(model.eval(), tokenizer, task, builder, data_class, recipe)


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint folder the Trainer wrote (``RUN/checkpoints/step-N``)."""
    return path.name.startswith("step-") and any(path.glob(CHECKPOINT_WEIGHTS.format(name="*")))


def open_trained(path: str | Path) -> Loaded:
    """The model behind a run directory, a model folder or a checkpoint."""
    from seqkit.folders import read_config, resolve_model_dir, run_dir_of

    path = Path(path)
    if is_checkpoint(path) and saved_run_model(path.parent.parent):
        if not (path / "COMPLETE").exists():
            raise UserError(f"checkpoint {path} is incomplete (its writing was cut off)")
        return load_checkpoint(path)
    folder = resolve_model_dir(path)
    model_type = read_config(folder)["model_type"]
    if builder_for_model_type(model_type) is None:
        raise UserError(f"{folder} holds a model of type {model_type!r}, which seqkit cannot load")
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
