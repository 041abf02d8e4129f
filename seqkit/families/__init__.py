"""Families: the recipes not yet composed from registered parts (:mod:`seqkit.parts`).

A family module knows one kind of run end to end; the parts registries replace them one family
at a time (causal language models already run on parts). Each family module defines:

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
from pathlib import Path
from types import ModuleType
from typing import Any

from seqkit.errors import UserError
from seqkit.folders import check_model_folder, read_config

FAMILY_MODULES: dict[str, str] = {
    "bow-classifier": "seqkit.families.bow",
    "transformer": "seqkit.families.transformer",
    "bert-mlm": "seqkit.families.bert",
    "bert-classifier": "seqkit.families.bert",
    "seq2seq": "seqkit.families.seq2seq",
    "rnn-classifier": "seqkit.families.rnn",
    "dcgan": "seqkit.gan.family",
    "gcn": "seqkit.gcn.family",
    "q-learning": "seqkit.rl.family",
    "dqn": "seqkit.rl.family",
    "music-gpt": "seqkit.music.family",
    "music-lstm": "seqkit.music.family",
}


def get_family(task_name: str) -> ModuleType:
    """The family module for a recipe's ``task`` name."""
    if task_name not in FAMILY_MODULES:
        from seqkit.parts.registry import SHORTHANDS, TASKS

        valid = ", ".join(sorted({*FAMILY_MODULES, *TASKS.names(), *SHORTHANDS}))
        raise UserError(f"unknown task {task_name!r}; valid tasks: {valid}")
    return importlib.import_module(FAMILY_MODULES[task_name])


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
