"""The contracts of the parts a recipe composes, and the :class:`Job` they make together.

A **model builder** is the dataclass that the recipe's ``model`` section is validated into: its
fields are the architecture's sizes, checked once in ``__post_init__``, and :meth:`config` turns
them, with what the data says (vocabulary size...), into the model's ``PretrainedConfig``. It is
the litgpt/torchtune shape: a name, a config, a builder — never a module that knows a whole
family end to end.

A **data module** reads the recipe's data, trains or loads the tokenizer, and cuts examples. It
tells the builder what the model must know about the data (:meth:`DataModule.facts`), and is
asked for its data sets once the model's context length is known.

The task is the Trainer's own :class:`seqkit.trainer.tasks.Task`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch.utils.data import Dataset

from seqkit.errors import UserError
from seqkit.recipes import DataSection, Recipe
from seqkit.trainer.tasks import Task


@dataclass
class ModelBuilder:
    """Base of the ``model`` section dataclasses; subclasses add the architecture's fields."""

    init_from: str | None = None
    """A model folder of the same architecture (a run's final/) to start from instead of
    random weights: fine-tuning. Its sizes must equal the recipe's."""

    heads: ClassVar[dict[str, type]] = {}
    """The model class trained for each task this architecture serves (``causal-lm`` → ...)."""
    shape_fields: ClassVar[dict[str, str]] = {}
    """Config field → recipe field, for the sizes an ``init_from`` folder must match."""
    tags: ClassVar[tuple[str, ...]] = ()
    """Model card tags."""
    stock: ClassVar[dict[str, str]] = {}
    """Stock ``transformers`` model types of the same architecture, and the
    ``"module:function"`` that loads such a folder as ``(seqkit model, tokenizer)``."""

    def config(self, task: str, facts: dict[str, Any]) -> Any:
        """The ``PretrainedConfig`` of the model for ``task``, given the data's ``facts``."""
        raise NotImplementedError

    def fit_to_data(self, model: Any, facts: dict[str, Any]) -> Any:
        """The ``init_from`` model made ready for this run's data (given its ``facts``): a new
        head for other labels, or a UserError for data it cannot take (another image size).
        The recipe's sizes were checked before (:attr:`shape_fields`)."""
        return model

    def set_trainable(self, model: Any) -> None:
        """Turn off the gradients of the layers the recipe keeps fixed (transfer learning's
        frozen features). Called on every model a run trains, a resumed one too: a checkpoint
        holds the weights, not which of them train."""

    def runtime_settings(self) -> dict[str, Any]:
        """Config fields that choose how the model runs, not what it computes (a kernel path):
        a model loaded from a folder (``init_from``, a checkpoint) takes them from the recipe."""
        return {}

    def window(self, config: Any) -> tuple[int, int | None]:
        """``(default, most)`` tokens per training example for a model of ``config``: its
        context length, which is also the most it takes (None: no limit)."""
        context = getattr(config, "max_position_embeddings", None)
        if context is None:
            raise NotImplementedError(f"{type(self).__name__} must say its context length")
        return context, context

    def model_class(self, task: str) -> type:
        """The model class this architecture trains for ``task``."""
        if task not in self.heads:
            raise UserError(
                f"model.architecture {self.name()} cannot be trained for task {task}; it serves "
                f"{', '.join(sorted(self.heads))}"
            )
        return self.heads[task]

    def card_tags(self) -> list[str]:
        """Model card tags naming the architecture."""
        return list(self.tags)

    def describe(self) -> dict[str, Any]:
        """The settings worth printing before training."""
        return dataclasses.asdict(self)

    @classmethod
    def name(cls) -> str:
        from seqkit.parts.registry import MODEL_BUILDERS

        return MODEL_BUILDERS.name_of(cls)


@dataclass
class Prepared:
    """What a data module hands the Trainer."""

    train_data: Dataset | None
    eval_data: Dataset | None
    collate_fn: Callable | None = None
    train_lengths: list[int] | None = None
    """One length per training example when batches should hold similar lengths."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Facts worth printing before training (corpus size, training tokens)."""
    callbacks: list[Any] = field(default_factory=list)
    """Trainer callbacks the data needs."""


class DataModule:
    """Base of the data modules: the recipe's data → tokenizer → data sets."""

    Section: ClassVar[type[DataSection]] = DataSection
    """The dataclass the recipe's ``data`` section is validated into."""
    how_to_load: ClassVar[str] = (
        'from seqkit.data import load_tokenizer\ntokenizer = load_tokenizer("PATH")\n'
    )
    """The model card's lines that load what :meth:`tokenizer` made from the folder ``PATH``
    (empty for data without a tokenizer)."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.data = recipe.data

    def tokenizer(self, init_from: Path | None) -> Any:
        """The run's tokenizer: the ``init_from`` model's own, a saved one, or one trained on
        the data; None for data that needs none (images, graphs)."""
        raise NotImplementedError

    @staticmethod
    def load_tokenizer(folder: Path) -> Any:
        """The tokenizer saved in ``folder`` by this data module's tokenizer."""
        raise NotImplementedError

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        """What the model builder must know about the data (``vocab_size``...)."""
        raise NotImplementedError

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        """Training and validation data; ``window`` tokens per example unless the recipe's
        ``data.block_size`` says otherwise, never more than ``most``."""
        raise NotImplementedError

    def scoring_data(self, tokenizer: Any, window: int, most: int | None, path: Path) -> Prepared:
        """Every example of the file ``path`` (in the recipe's format) as evaluation data, for
        ``seqkit evaluate --data``."""
        raise NotImplementedError

    def evaluation_data(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        """What ``seqkit evaluate RUN`` scores: the validation data, unless the data keeps a
        held-out test split for it (images)."""
        return self.prepare(tokenizer, window, most)

    def vocabulary(self, tokenizer: Any) -> str:
        """The vocabulary, as printed before training."""
        return "none" if tokenizer is None else str(tokenizer.vocab_size)

    def card_tags(self, tokenizer: Any) -> list[str]:
        """Model card tags describing the tokenization."""
        return []

    def check_sample(self, tokenizer: Any) -> None:
        """Refuse, before training, a ``sample`` prompt this vocabulary cannot spell."""

    def datasets_for_card(self) -> list[str]:
        """Hub data set names for the model card."""
        return [self.data.hub] if self.data.hub and not self.data.path else []


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
    """Trainer callbacks the run needs (a GAN's sample grids every N steps)."""
    train_lengths: list[int] | None = None
    """One length per training example when batches should hold similar lengths (translation
    pairs: less padding); None for random batches."""
    save_run_files: Callable[[Path], None] | None = None
    """``save_run_files(run_dir)`` writes what makes the run stand alone (its model config and
    tokenizer) at step 0; None for runs built by an unconverted family."""
