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


def import_target(target: str) -> Any:
    """The object ``"package.module:attribute"`` names, its module imported."""
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


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

    def module_of(self, name: str) -> str:
        """The module the part ``name`` lives in, without importing it."""
        return self._targets[name].split(":")[0]

    def get(self, name: str) -> Any:
        """The part registered as ``name``; an unknown name is a UserError listing the valid."""
        if not isinstance(name, str) or name not in self._targets:  # a YAML list, a number
            raise UserError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return import_target(self._targets[name])


TASKS = Registry(
    "task",
    {
        "causal-lm": "seqkit.trainer.tasks:LanguageModelingTask",
        "seq2seq": "seqkit.trainer.translation:TranslationTask",
        "node-classification": "seqkit.gcn.task:NodeClassificationTask",
        "gan": "seqkit.gan.task:DCGANTask",
        "rl": "seqkit.rl.task:EnvironmentTask",
        "classification": "seqkit.trainer.tasks:ClassificationTask",
        "masked-lm": "seqkit.trainer.tasks:MaskedLMTask",
        "image-classification": "seqkit.vision.tasks:ImageClassificationTask",
        "image-reconstruction": "seqkit.vision.tasks:DenoisingTask",
        "regression": "seqkit.tabular.tasks:RegressionTask",
    },
)
"""Tasks (:class:`seqkit.trainer.tasks.Task` subclasses) by the recipe's ``task``."""

MODEL_BUILDERS = Registry(
    "model.architecture",
    {
        "gpt": "seqkit.models.gpt_config:GPTBuilder",
        "recurrent": "seqkit.models.rnn:RecurrentBuilder",
        "decoder": "seqkit.models.decoder:DecoderBuilder",
        "rnn-seq2seq": "seqkit.models.seq2seq:RNNSeq2SeqBuilder",
        "transformer": "seqkit.models.transformer:TransformerBuilder",
        "gcn": "seqkit.gcn.models:GCNBuilder",
        "dcgan": "seqkit.gan.models:DCGANBuilder",
        "q-table": "seqkit.rl.models:QTableBuilder",
        "q-network": "seqkit.rl.models:QNetworkBuilder",
        "bow": "seqkit.models.bow:BagOfWordsBuilder",
        "bert": "seqkit.models.bert:BertBuilder",
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
        "pretokenized": "seqkit.data.lm:PretokenizedCorpus",
        "streaming": "seqkit.data.streaming:StreamingCorpus",
        "chorales": "seqkit.music.data:MidiCorpus",
        "sentence-pairs": "seqkit.data.seq2seq:SentencePairs",
        "graph": "seqkit.gcn.data:GraphData",
        "gan-images": "seqkit.gan.data:GANImages",
        "environment": "seqkit.rl.envs:EnvironmentData",
        "labelled-text": "seqkit.data.classification:LabelledText",
        "bag-of-words": "seqkit.data.bow:BagOfWords",
        "masked-text": "seqkit.data.masking:MaskedText",
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
    data: dict[str, Any] = field(default_factory=dict)
    """Data fields the shorthand fixes (``music-gpt`` fixes ``module: chorales``)."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """Model fields the shorthand sets unless the recipe does: the defaults of the old task,
    where the architecture's own differ, so an old recipe builds the model it always built."""
    renames: dict[str, str | None] = field(default_factory=dict)
    """Old model field name → the architecture's (``music-lstm``'s ``n_layer`` is
    ``num_layers``); None for a field the old task accepted and ignored."""


SHORTHANDS: dict[str, Shorthand] = {
    "gpt": Shorthand("causal-lm", "gpt"),
    "rnn-lm": Shorthand("causal-lm", "recurrent", {"cell": "rnn"}),
    "lstm-lm": Shorthand("causal-lm", "recurrent", {"cell": "lstm"}),
    "gru-lm": Shorthand("causal-lm", "recurrent", {"cell": "gru"}),
    "music-gpt": Shorthand(
        "causal-lm",
        "gpt",
        data={"module": "chorales"},
        defaults={"n_layer": 2, "n_embd": 256, "block_size": 256, "dropout": 0.1},
        renames={"hidden_size": None},
    ),
    "music-lstm": Shorthand(
        "causal-lm",
        "recurrent",
        {"cell": "lstm"},
        data={"module": "chorales"},
        defaults={"embedding_size": 256, "hidden_size": 512, "block_size": 256, "dropout": 0.1},
        renames={"n_layer": "num_layers", "n_embd": "embedding_size", "n_head": None},
    ),
    # A recipe that names model.architecture under task seq2seq is already written out.
    "seq2seq": Shorthand("seq2seq", "rnn-seq2seq"),
    "transformer": Shorthand("seq2seq", "transformer"),
    "gcn": Shorthand("node-classification", "gcn"),
    "dcgan": Shorthand("gan", "dcgan"),
    "q-learning": Shorthand("rl", "q-table"),
    "dqn": Shorthand("rl", "q-network"),
    "bow-classifier": Shorthand("classification", "bow", data={"module": "bag-of-words"}),
    "rnn-classifier": Shorthand("classification", "recurrent"),
    "bert-mlm": Shorthand("masked-lm", "bert"),
    "bert-classifier": Shorthand("classification", "bert"),
    "image-mlp": Shorthand("image-classification", "image-mlp"),
    "cnn": Shorthand("image-classification", "cnn"),
    "resnet": Shorthand("image-classification", "resnet"),
    "denoising-autoencoder": Shorthand("image-reconstruction", "denoising-autoencoder"),
    "bike-sharing-mlp": Shorthand("regression", "tabular-mlp"),
}
