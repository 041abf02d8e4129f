"""Compose a recipe's parts into a run.

:func:`build_job` is the one place where a task, a model builder and a data module meet:

    data module → tokenizer → facts (vocabulary size...) → builder → config → model
                → data sets of the model's window → task

A run's tokenizer and config are written at step 0 (:mod:`seqkit.parts.model_folder`), so a
resumed run reloads them instead of rebuilding them from the corpus. ``model.init_from`` starts
the model from a folder (:func:`load_init_from`) after checking it fits the recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqkit.errors import UserError
from seqkit.parts.base import Job, ModelBuilder
from seqkit.parts.lora import ADAPTER_FOLDER, apply_lora, merge, save_adapter, trainable_summary
from seqkit.parts.model_folder import (
    DATA_MODULE_FIELD,
    RUN_MODEL,
    builder_for_model_type,
    check_data_fits,
    check_vocabulary,
    generation_config,
    saved_config,
    write_model_folder,
)
from seqkit.parts.pretrained import (
    load_stock,
    note_ignored_settings,
    resolve_init_from,
    stock_model_type,
    with_recipe_dropout,
)
from seqkit.parts.registry import DATA_MODULES, MODEL_BUILDERS
from seqkit.parts.resolve import Parts, resolve
from seqkit.recipes import Recipe

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
        config = saved_config(parts.builder.config_class(parts.task_name), parts.builder, saved)
        model = parts.builder.new_model(parts.task_name, config)
    else:
        init_from = _resolve_init_from(parts)
        stock = init_from is not None and stock_model_type(init_from, parts.builder) is not None
        if init_from is not None and not stock:  # before its tokenizer is read: another model
            check_init_from_type(init_from, parts.model_class, _what(parts.builder))
        tokenizer = parts.data.tokenizer(init_from)
        facts = parts.data.facts(tokenizer)
        torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
        if init_from is not None:
            model = parts.builder.from_init(parts.task_name, init_from, facts)
            if model is None:
                model = (
                    _load_stock(parts, init_from)
                    if stock
                    else _load_init_from(parts, init_from, recipe.model)
                )
            if stock:
                name = recipe.model.get("init_from", init_from)
                note_ignored_settings(recipe.model, parts.builder, model.config, name)
                model = with_recipe_dropout(model, recipe.model)
            model = parts.builder.fit_to_data(model, facts)
            _check_labels(model, facts, init_from)
            _take_sizes(parts.builder, model.config)
        else:
            config = parts.builder.config(parts.task_name, facts)
            model = parts.builder.new_model(parts.task_name, config)
    parts.builder.set_trainable(model)
    adapted = _with_lora(parts, model)
    check_vocabulary(model, tokenizer)
    check_data_fits(parts.data, tokenizer, model, saved if resume else init_from_folder(parts))
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
        final = model
        if adapted is not None:  # the adapter alone, then the plain model with it merged in
            save_adapter(adapted, folder / ADAPTER_FOLDER)
            final = merge(adapted)
        write_model_folder(folder, final, tokenizer, recipe, parts, metrics, run_dir)

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
            **({"trainable parameters": trainable_summary(model)} if adapted is not None else {}),
            "model": {"architecture": MODEL_BUILDERS.name_of(type(parts.builder))}
            | parts.builder.describe(),
        },
    )


def _with_lora(parts: Parts, model: Any) -> Any:
    """The ``PeftModel`` wrapping ``model`` with the recipe's ``model.lora`` adapters injected
    (in place), or None without ``model.lora``. Applied to a fresh, ``init_from`` or resumed
    model alike: a checkpoint holds the adapted model's weights, adapters included."""
    if parts.builder.lora is None:
        return None
    architecture = MODEL_BUILDERS.name_of(type(parts.builder))
    return apply_lora(model, parts.builder.lora, architecture, parts.task_name)


def init_from_folder(parts: Parts) -> Path | None:
    return Path(parts.builder.init_from) if parts.builder.init_from else None


def _resolve_init_from(parts: Parts) -> Path | None:
    """The folder of the builder's ``init_from`` (a Hub name fetched into the Hub cache), which
    the builder reads from then on; the recipe keeps the name as written."""
    if not parts.builder.init_from:
        return None
    folder = resolve_init_from(parts.builder.init_from)
    parts.builder.init_from = str(folder)
    return folder


def _take_sizes(builder: ModelBuilder, config: Any) -> None:
    """Set the builder's size fields to the ``init_from`` model's (``shape_fields``), so that
    what the run prints and hands on describes the model it trains, not the recipe's defaults."""
    for config_field, recipe_field in builder.shape_fields.items():
        value = getattr(config, config_field, None)
        if value is not None and hasattr(builder, recipe_field):
            setattr(builder, recipe_field, value)


def _load_stock(parts: Parts, folder: Path) -> Any:
    """The stock model in ``folder`` converted to the builder's class (its config's sizes),
    running the recipe's kernel paths."""
    model = load_stock(parts.builder, folder)
    if not isinstance(model, parts.model_class):
        raise UserError(
            f"model.init_from: {folder} holds a {type(model).__name__}, which cannot be "
            f"trained for task {parts.task_name}"
        )
    for key, value in parts.builder.runtime_settings().items():
        setattr(model.config, key, value)
    return model.train()


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


def _load_init_from(parts: Parts, folder: Path, recipe_model: dict[str, Any]) -> Any:
    """The model in ``folder`` for fine-tuning, running the recipe's kernel paths. Sizes the
    recipe's ``model`` mapping (``recipe_model``) sets must be the folder's; those it leaves out
    are the folder's."""
    builder = parts.builder
    model = load_init_from(
        folder,
        parts.model_class,
        _what(builder),
        {
            config_field: getattr(builder, recipe_field)
            for config_field, recipe_field in builder.shape_fields.items()
            if recipe_field in recipe_model and getattr(builder, recipe_field) is not None
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
    config = read_config(folder)
    model_type = config["model_type"]
    if model_type != model_class.config_class.model_type:
        found = builder_for_model_type(model_type, config.get("architectures") or ())
        hint = f" (model.architecture {found[0].name()} trains it)" if found else ""
        raise UserError(
            f"model.init_from: {folder} holds a {model_type!r} model, not a {what} one{hint}"
        )
