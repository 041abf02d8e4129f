"""Families: how a recipe's ``task`` name becomes a model, a tokenizer, data and a Task.

Each family module defines:

- ``ModelSection``: the dataclass the recipe's ``model`` section is validated into;
- ``build(recipe, model_section) -> Job``: everything the Trainer needs, plus how to write the
  trained model as a Hub folder;
- ``DataSection`` (optional): a subclass of :class:`seqkit.recipes.DataSection` with the fields
  this family's ``data`` section adds;
- ``MODEL_TYPES`` and ``load_pretrained(folder)``: how to load a saved folder of that family back
  for generation.

and may define, for the CLI commands that apply to it:

- ``generate_command(folder, args) -> int``: ``seqkit generate`` for models that do not produce
  text from a prompt (a GAN writes an image grid); without it, ``generate`` samples text;
- ``evaluate(folder, run_dir, args) -> dict[str, float]``: ``seqkit evaluate`` (``run_dir`` is
  the run the folder came from, or None for a bare model folder); it prints what it measures
  beyond the returned numbers itself.

Modules are imported lazily by name, so ``seqkit recipes`` or a GPT run never pays for families
it does not use. Sibling packages (vision, gan, gcn, rl) register their tasks here by module
name only; the NLP core never imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from torch.utils.data import Dataset

from seqkit.errors import UserError
from seqkit.folders import check_model_folder, load_weights, loading, read_config
from seqkit.trainer.tasks import Task

FAMILY_MODULES: dict[str, str] = {
    "gpt": "seqkit.families.gpt",
    "bow-classifier": "seqkit.families.bow",
    "transformer": "seqkit.families.transformer",
    "bert-mlm": "seqkit.families.bert",
    "bert-classifier": "seqkit.families.bert",
    "seq2seq": "seqkit.families.seq2seq",
    "rnn-lm": "seqkit.families.rnn",
    "lstm-lm": "seqkit.families.rnn",
    "gru-lm": "seqkit.families.rnn",
    "rnn-classifier": "seqkit.families.rnn",
    "image-mlp": "seqkit.vision.family",
    "cnn": "seqkit.vision.family",
    "resnet": "seqkit.vision.family",
    "denoising-autoencoder": "seqkit.vision.family",
    "dcgan": "seqkit.gan.family",
    "bike-sharing-mlp": "seqkit.tabular.family",
    "gcn": "seqkit.gcn.family",
    "q-learning": "seqkit.rl.family",
    "dqn": "seqkit.rl.family",
    "music-gpt": "seqkit.music.family",
    "music-lstm": "seqkit.music.family",
}


@dataclass
class Job:
    """A recipe made concrete: what to train, on what, and how to save the result."""

    task: Task
    train_data: Dataset | None
    eval_data: Dataset | None
    save_final: Callable[[Path, dict[str, float], Path], None]
    """``save_final(folder, metrics, run_dir)`` writes the trained model as a Hub folder."""
    collate_fn: Callable | None = None
    sample: Callable[[], str] | None = None
    """Text from the trained model with the recipe's ``sample`` settings, printed after training."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Facts worth printing before training (corpus size, vocabulary, parameters)."""
    callbacks: list[Any] = field(default_factory=list)
    """Trainer callbacks the family needs (a GAN's sample grids every N steps)."""
    train_lengths: list[int] | None = None
    """One length per training example when batches should hold similar lengths (translation
    pairs: less padding); None for random batches."""


def get_family(task_name: str) -> ModuleType:
    """The family module for a recipe's ``task`` name."""
    if task_name not in FAMILY_MODULES:
        valid = ", ".join(sorted(FAMILY_MODULES))
        raise UserError(f"unknown task {task_name!r}; valid tasks: {valid}")
    return importlib.import_module(FAMILY_MODULES[task_name])


def data_section_for(task_name: str) -> type:
    """The dataclass that validates the ``data`` section of a recipe for ``task_name``."""
    from seqkit.recipes import DataSection

    return getattr(get_family(task_name), "DataSection", DataSection)


def family_for_model(folder: Path) -> ModuleType:
    """The family module that wrote the Hub folder ``folder`` (found by its ``model_type``),
    once the folder has passed :func:`seqkit.folders.check_model_folder`."""
    check_model_folder(folder)
    model_type = read_config(folder)["model_type"]
    module = family_of_model_type(model_type)
    if module is None:
        raise UserError(f"{folder} holds a model of type {model_type!r}, which seqkit cannot load")
    return module


def family_of_model_type(model_type: str) -> ModuleType | None:
    """The family module that loads folders of ``model_type``, or None."""
    for module_name in dict.fromkeys(FAMILY_MODULES.values()):
        module = importlib.import_module(module_name)
        if model_type in module.MODEL_TYPES:
            return module
    return None


def load_pretrained(folder: Path) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a Hub folder written by any family."""
    return family_for_model(folder).load_pretrained(folder)


def load_init_from(
    folder: Path,
    model_class: type,
    task: str,
    expected: dict[str, Any],
    recipe_names: dict[str, str] | None = None,
):
    """The model in ``folder`` (a recipe's ``model.init_from``), for fine-tuning.

    A folder of another family, one whose architecture differs from the recipe's (``expected``:
    the recipe's value by config field; ``recipe_names`` maps a config field to the recipe
    field that sets it, for the message), or weights that do not all fit are a UserError
    naming what does not fit: ``from_pretrained`` alone would take the folder's sizes without
    a word and initialise missing weights at random.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError(f"model.init_from: {folder} is not a model folder (no config.json)")
    model_type = read_config(folder)["model_type"]
    if model_type != model_class.config_class.model_type:
        raise UserError(f"model.init_from: {folder} holds a {model_type!r} model, not a {task} one")
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
