"""A model as a folder: written by a run (its step-0 ``model/``, checkpoints, ``final/``), and
read back without the run's data.

At step 0 a run writes :data:`RUN_MODEL` (``RUN/model/``): the model's resolved ``config.json``
and its tokenizer — a Hub folder without weights. With it a run stands alone: ``--resume``
reloads the tokenizer instead of training it again, and a checkpoint becomes a Hub folder
(:func:`load_checkpoint`; a LoRA run's with its adapters merged) without reading the corpus,
so export, evaluation and generation of a checkpoint work after the data is gone.
:func:`write_model_folder` writes a trained model with its config, tokenizer, generation
defaults and card; :func:`open_trained` reads any of them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqkit.checks import show
from seqkit.errors import UserError
from seqkit.models.gpt_network import StandaloneGPT
from seqkit.parts.base import DataModule, ModelBuilder
from seqkit.parts.lora import apply_lora, merge
from seqkit.parts.registry import MODEL_BUILDERS, TASKS
from seqkit.parts.resolve import Parts, data_module_class, load_recipe, resolve
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS

RUN_MODEL = "model"
"""The folder of a run that holds its model config and tokenizer from step 0."""
DATA_MODULE_FIELD = "data_module"
"""The ``config.json`` field naming the data module a model was trained on, when it is not its
task's default (``chorales``): how a model folder or checkpoint says which data module reads its
tokenizer and what a sample of it is (a GPT folder that composes MIDI). The one home of that
fact; a folder without it holds the task's default data (text)."""


def check_data_fits(data: Any, tokenizer: Any, model: Any, folder: Path | None) -> None:
    """A data module's own check that ``tokenizer`` fits ``model`` (vocabularies the config
    does not call ``vocab_size``: a translation model's source and target); ``folder`` is
    where both were read, for the message."""
    check = getattr(data, "check_model", None)
    if check is not None and tokenizer is not None:
        check(tokenizer, model.config, folder if folder is not None else Path("the run"))


def check_vocabulary(model: Any, tokenizer: Any) -> None:
    if tokenizer is None or not hasattr(model.config, "vocab_size"):
        return  # data without a vocabulary (images, graphs, environments)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise UserError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{model.config.vocab_size}"
        )


def saved_config(config_class: type, builder: ModelBuilder, folder: Path) -> Any:
    """The model config saved in ``folder``, running the recipe's kernel paths."""
    from seqkit.folders import loading

    with loading(f"the run's model config {folder / 'config.json'}"):
        config = config_class.from_pretrained(folder)
    for key, value in builder.runtime_settings().items():
        setattr(config, key, value)
    return config


def model_from_saved_config(model_class: type, builder: ModelBuilder, folder: Path) -> Any:
    """A freshly initialised ``model_class`` of the config saved in ``folder`` (weights come
    later)."""
    return model_class(saved_config(model_class.config_class, builder, folder))


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


def how_to_load(model: Any, parts: Parts, data: DataModule | None) -> str:
    """The model card's code that loads the folder, with the ``data`` module's tokenizer (none
    for a model without one: images, graphs, agents) and the task's usage lines."""
    task_class = parts.task_class
    text = HOW_TO_LOAD.format(
        module=parts.builder.head_module(parts.task_name),
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
    model card with the recipe, its data (sizes and SHA-256 from ``run_dir``'s ``data.json``),
    the metrics and the loss plot."""
    from seqkit.export.model_card import read_data_record, write_model_card

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
        how_to_load=how_to_load(model, parts, parts.data if tokenizer is not None else None),
        data_record=read_data_record(run_dir),
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
        for task, head in builder_class.head_classes().items():
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
    check_data_fits(data_class, tokenizer, model, folder)
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
    model = model_from_saved_config(builder.model_class(task), builder, saved)
    # A LoRA run saved its adapted model: load into the same layers, then merge the updates.
    adapted = None
    if builder.lora is not None:
        adapted = apply_lora(model, builder.lora, MODEL_BUILDERS.name_of(type(builder)), task)
    # The task names the modules the Trainer saved (a GAN's generator and discriminator).
    for name, module in TASKS.get(task).for_model(model, {}).models.items():
        load_module_weights(module, checkpoint / CHECKPOINT_WEIGHTS.format(name=name))
    if adapted is not None:
        model = merge(adapted)
    tokenizer = data_class.load_tokenizer(saved)
    check_vocabulary(model, tokenizer)
    check_data_fits(data_class, tokenizer, model, saved)
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


STANDALONE_MODELS: dict[str, type] = {StandaloneGPT.model_type: StandaloneGPT}
"""Model types whose network also exists as a plain ``nn.Module`` that loads without
``transformers`` (:func:`open_standalone`), by ``config.json`` model type."""


def open_standalone(path: str | Path) -> tuple[Any, Any] | None:
    """The model and tokenizer of a text model folder (or a run's ``final/``) as a plain PyTorch
    module, for ``seqkit generate``; None when the folder needs :func:`open_trained`.

    Why: a seqkit model class is a ``transformers`` ``PreTrainedModel``, and importing that
    class takes seconds (transformers imports its distributed tensors, its dynamo hooks and
    scipy with it) — more than the rest of a generation command together. The standalone class
    (:data:`STANDALONE_MODELS`) is the same network with the same weights file and imports
    only torch. It serves when the folder holds one of its model types trained on text (no
    :data:`DATA_MODULE_FIELD`), in one float32 ``model.safetensors`` whose tensors are exactly
    the network's; anything else — a checkpoint, a stock folder, MIDI, another dtype, a config
    or a file that would not load — goes to the full loader, which also names what is wrong.
    The folder's checks and the tokenizer's are the full loader's.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from seqkit.data.tokenizer_folder import load_tokenizer
    from seqkit.folders import check_vocabulary, read_config, resolve_model_dir

    path = Path(path)
    if is_checkpoint(path):
        return None
    folder = resolve_model_dir(path)
    config = read_config(folder)
    model_class = STANDALONE_MODELS.get(config.get("model_type"))
    weights = folder / "model.safetensors"
    if model_class is None or DATA_MODULE_FIELD in config or not weights.is_file():
        return None
    if not _plain_generation_defaults(folder):
        return None
    settings = model_class.config_from(config)
    if settings is None:
        return None
    try:
        state = load_file(weights)
    except (SafetensorError, OSError):
        return None
    if any(tensor.dtype != torch.float32 for tensor in state.values()):
        return None
    model = model_class.from_weights(settings, state)
    if model is None:
        return None
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, settings.vocab_size)
    return model.eval(), tokenizer


def _plain_generation_defaults(folder: Path) -> bool:
    """Whether ``folder``'s ``generation_config.json`` (if any) holds only the sampling defaults
    seqkit writes for a language model, with valid values. ``seqkit generate`` takes its
    settings from the command line, but a damaged file means a damaged folder, which the full
    loader (``transformers``' ``GenerationConfig``) refuses with its reason."""
    path = folder / "generation_config.json"
    if not path.exists():
        return True
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    checks = {
        "do_sample": lambda v: type(v) is bool,
        "max_new_tokens": lambda v: type(v) is int and v >= 1,
        "temperature": lambda v: type(v) in (int, float) and v > 0,
        "top_k": lambda v: type(v) is int and v >= 1,
        "top_p": lambda v: type(v) in (int, float) and 0 < v <= 1,
        "transformers_version": lambda v: isinstance(v, str),
    }
    return isinstance(values, dict) and all(
        name in checks and checks[name](value) for name, value in values.items()
    )


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
