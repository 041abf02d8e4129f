"""The three registries: model builders, data modules and tasks, each by the name a recipe uses.

A registry maps a name to ``"module:attribute"`` and imports the module only when the part is
used, so ``seqkit recipes`` or a GPT run never pays for the parts it does not use, and the NLP
core names sibling packages (vision, gan, gcn, rl) without importing them. Adding an
architecture is one line in :data:`MODEL_BUILDERS`; a sibling package adds its lines here the
same way.

A recipe names one of each::

    task: causal-lm
    model: {architecture: gpt, n_layer: 4}
    data: {module: text}      # optional: each task has a default data module

The one-word ``task`` names of earlier recipes (``gpt``, ``lstm-lm``...) stay valid: they are
:data:`SHORTHANDS` for a task and an architecture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from seqkit.errors import UserError


class Registry:
    """Names → parts, imported on first use."""

    def __init__(self, kind: str, targets: dict[str, str]):
        self.kind = kind
        """What the name is written as in a recipe (``model.architecture``), for messages."""
        self._targets = dict(targets)

    def register(self, name: str, target: str) -> None:
        """Add a part: ``target`` is ``"package.module:attribute"``."""
        if ":" not in target:
            raise ValueError(f"a registry target is 'module:attribute', got {target!r}")
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def name_of(self, part: type) -> str:
        """The name ``part`` is registered as (its class name if it is not registered)."""
        target = f"{part.__module__}:{part.__qualname__}"
        return next((n for n, t in self._targets.items() if t == target), part.__name__)

    def get(self, name: str) -> Any:
        """The part registered as ``name``; an unknown name is a UserError listing the valid."""
        if name not in self._targets:
            raise UserError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        module_name, attribute = self._targets[name].split(":")
        return getattr(importlib.import_module(module_name), attribute)


TASKS = Registry(
    "task",
    {
        "causal-lm": "seqkit.trainer.tasks:LanguageModelingTask",
        "image-classification": "seqkit.vision.tasks:ImageClassificationTask",
        "image-reconstruction": "seqkit.vision.tasks:DenoisingTask",
        "regression": "seqkit.tabular.tasks:RegressionTask",
    },
)
"""Tasks (:class:`seqkit.trainer.tasks.Task` subclasses) by the recipe's ``task``."""

MODEL_BUILDERS = Registry(
    "model.architecture",
    {
        "gpt": "seqkit.models.gpt:GPTBuilder",
        "recurrent": "seqkit.models.rnn:RecurrentBuilder",
        "decoder": "seqkit.models.decoder:DecoderBuilder",
        "image-mlp": "seqkit.vision.models:ImageMLPBuilder",
        "cnn": "seqkit.vision.models:CNNBuilder",
        "resnet": "seqkit.vision.models:ResNetBuilder",
        "denoising-autoencoder": "seqkit.vision.models:DenoisingAutoencoderBuilder",
        "tabular-mlp": "seqkit.tabular.models:TabularMLPBuilder",
    },
)
"""Model builders (:class:`seqkit.parts.base.ModelBuilder`) by ``model.architecture``."""

DATA_MODULES = Registry(
    "data.module",
    {
        "text": "seqkit.data.lm:TextCorpus",
        "images": "seqkit.vision.data:ImageData",
        "bike-sharing": "seqkit.tabular.data:BikeSharingTable",
    },
)
"""Data modules (:class:`seqkit.parts.base.DataModule`) by ``data.module``."""


@dataclass(frozen=True)
class Shorthand:
    """A one-word ``task`` of earlier recipes: a task, an architecture and model presets."""

    task: str
    architecture: str
    presets: dict[str, Any] = field(default_factory=dict)
    """Model fields the shorthand fixes (``lstm-lm`` fixes ``cell: lstm``)."""


SHORTHANDS: dict[str, Shorthand] = {
    "gpt": Shorthand("causal-lm", "gpt"),
    "rnn-lm": Shorthand("causal-lm", "recurrent", {"cell": "rnn"}),
    "lstm-lm": Shorthand("causal-lm", "recurrent", {"cell": "lstm"}),
    "gru-lm": Shorthand("causal-lm", "recurrent", {"cell": "gru"}),
    "image-mlp": Shorthand("image-classification", "image-mlp"),
    "cnn": Shorthand("image-classification", "cnn"),
    "resnet": Shorthand("image-classification", "resnet"),
    "denoising-autoencoder": Shorthand("image-reconstruction", "denoising-autoencoder"),
    "bike-sharing-mlp": Shorthand("regression", "tabular-mlp"),
}
