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
from seqkit.parts.lora import LoraSettings
from seqkit.recipes import DataSection, Recipe
from seqkit.trainer.tasks import Task


def same_names(*names: str) -> dict[str, str]:
    """A :attr:`ModelBuilder.shape_fields` for config fields named as the recipe's fields."""
    return {name: name for name in names}


@dataclass
class ModelBuilder:
    """Base of the ``model`` section dataclasses; subclasses add the architecture's fields."""

    init_from: str | None = None
    """A model to start from instead of random weights (fine-tuning): a seqkit run or its
    final/ (sizes the recipe sets must equal its own; those left out are its own), a stock
    transformers folder of the architecture (``stock``), or a Hub name. A stock model's config
    sets the sizes: the recipe's are ignored with a note; a ``dropout`` the recipe sets applies
    (:mod:`seqkit.parts.pretrained`)."""
    lora: LoraSettings | None = None
    """Train low-rank adapters of the chosen layers instead of every weight (LoRA), usually
    with ``init_from``; the run's final/ holds the merged model (:mod:`seqkit.parts.lora`)."""

    heads: ClassVar[dict[str, type | str]] = {}
    """The model class of each task this architecture serves (``causal-lm`` → ...): the
    ``transformers`` class its folders load as through the Auto classes, and the class a run
    trains unless :meth:`new_model` says otherwise. A value may name the class as
    ``"module:Class"`` so that the builder's module need not import it (:meth:`head`)."""
    shape_fields: ClassVar[dict[str, str]] = {}
    """Config field → recipe field, for the sizes an ``init_from`` folder must match."""
    tags: ClassVar[tuple[str, ...]] = ()
    """Model card tags."""
    extra_auto_classes: ClassVar[dict[str, type]] = {}
    """Auto classes beyond the tasks' own that load this architecture's folders (``AutoModel``
    → the bare encoder), by the Auto class's name in ``transformers``."""
    stock: ClassVar[dict[str, str]] = {}
    """Stock ``transformers`` model types of the same architecture, and the
    ``"module:function"`` that loads such a folder as ``(seqkit model, tokenizer)``."""
    special_tokens: ClassVar[dict[str, str]] = {"pad": "<pad>"}
    """Special tokens (role → token) that a tokenizer trained for this model's text inputs
    gets, and that a loaded one must have (padding, by default)."""
    data_module: ClassVar[str | None] = None
    """The data module this architecture's inputs come from, when the task's default does not
    fit (bag-of-words features); used to read a model folder back without its recipe."""
    frames_text: ClassVar[bool] = False
    """Whether each text is read as ``[CLS] text [SEP]`` (BERT, Devlin et al. 2019)."""

    def config(self, task: str, facts: dict[str, Any]) -> Any:
        """The ``PretrainedConfig`` of the model for ``task``, given the data's ``facts``."""
        raise NotImplementedError

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        """Settings of the ``model`` section (and the rest of ``recipe``) that the task uses, not
        the model (a DQN's discount and replay memory, a GAN's per-network learning rates):
        handed to ``Task.for_model`` with the data's facts. A combination the task cannot train
        is a UserError here, before the run directory is made."""
        return {}

    def from_init(self, task: str, folder: Path, facts: dict[str, Any]) -> Any:
        """The model for ``task`` started from the ``init_from`` folder, for an architecture
        that loads it its own way (a classifier on a masked-LM encoder); None (the default)
        loads the folder as it is, after checking its sizes (``shape_fields``)."""
        return None

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

    def generation_settings(self, config: Any) -> dict[str, Any]:
        """Decoding defaults the recipe's model section sets (``num_beams``...), written with
        the task's own into ``generation_config.json`` beside the model."""
        return {}

    def window(self, config: Any) -> tuple[int, int | None]:
        """``(default, most)`` tokens per training example for a model of ``config``: its
        context length, which is also the most it takes (None: no limit)."""
        context = getattr(config, "max_position_embeddings", None)
        if context is None:
            raise NotImplementedError(f"{type(self).__name__} must say its context length")
        return context, context

    def check_task(self, task: str) -> None:
        """A UserError unless this architecture serves ``task``."""
        if task not in self.heads:
            raise UserError(
                f"model.architecture {self.name()} cannot be trained for task {task}; it serves "
                f"{', '.join(sorted(self.heads))}"
            )

    def model_class(self, task: str) -> type:
        """The model class of this architecture for ``task`` (its :attr:`heads` entry); a
        task it does not serve is a UserError."""
        self.check_task(task)
        return self.head(task)

    @classmethod
    def head(cls, task: str) -> type:
        """The class :attr:`heads` gives for ``task``, imported if it is named."""
        from seqkit.parts.registry import import_target

        head = cls.heads[task]
        return import_target(head) if isinstance(head, str) else head

    @classmethod
    def head_module(cls, task: str) -> str:
        """The module of :meth:`head`'s class, without importing it."""
        head = cls.heads[task]
        return head.split(":")[0] if isinstance(head, str) else head.__module__

    @classmethod
    def head_classes(cls) -> dict[str, type]:
        """Every task's class (:meth:`head`), imported."""
        return {task: cls.head(task) for task in cls.heads}

    def config_class(self, task: str) -> type:
        """The ``PretrainedConfig`` class of this architecture's model for ``task``."""
        return self.model_class(task).config_class

    def new_model(self, task: str, config: Any) -> Any:
        """A freshly initialised model of ``config`` to train for ``task`` (a resumed run's
        weights are loaded into it afterwards): by default the task's :meth:`head` class."""
        return self.model_class(task)(config)

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
class EncoderDecoderBuilder(ModelBuilder):
    """Base of the translation architectures' sections: how their decoder searches by default
    (saved as the folder's ``generation_config.json``; ``--beam-size`` overrides it)."""

    beam_size: int = 1
    """Default beam width of translate and evaluate (1 = greedy)."""
    length_penalty: float = 1.0
    """Beam search ranks by log-prob / length ** length_penalty."""
    max_length: int = 64
    """Most tokens generated per sentence."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A translation model's folder also loads with AutoModel (as transformers' encoder-
        # decoders do), so each architecture need not say so again.
        super().__init_subclass__(**kwargs)
        if "seq2seq" in cls.heads:
            cls.extra_auto_classes = {"AutoModel": cls.heads["seq2seq"], **cls.extra_auto_classes}

    @staticmethod
    def special_token_ids(facts: dict[str, Any]) -> dict[str, int]:
        """The config's special token ids from the data's ``facts``; decoding starts at BOS."""
        return {
            "pad_token_id": facts["pad_token_id"],
            "bos_token_id": facts["bos_token_id"],
            "eos_token_id": facts["eos_token_id"],
            "decoder_start_token_id": facts["bos_token_id"],
        }

    def __post_init__(self) -> None:
        from seqkit.trainer.translation import check_decoding

        check_decoding("model.", self.beam_size, self.length_penalty, self.max_length)

    def generation_settings(self, config: Any) -> dict[str, Any]:
        return {
            "num_beams": self.beam_size,
            "length_penalty": self.length_penalty,
            "max_length": self.max_length,
            "bos_token_id": config.bos_token_id,
            "eos_token_id": config.eos_token_id,
            "pad_token_id": config.pad_token_id,
            "decoder_start_token_id": config.decoder_start_token_id,
        }


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
    """Base of the data modules: the recipe's data → tokenizer → data sets.

    A data module may also define ``generate_command(loaded, args) -> int`` (a classmethod):
    ``seqkit generate`` on a model trained on its data runs it instead of the task's
    generation (a composer points to ``seqkit compose``).
    """

    Section: ClassVar[type[DataSection]] = DataSection
    """The dataclass the recipe's ``data`` section is validated into."""
    builder: ModelBuilder | None = None
    """The run's model builder (set by :mod:`seqkit.parts.compose`), for data whose examples
    depend on the architecture (special tokens, ``[CLS] text [SEP]`` framing)."""
    model_config: Any = None
    """The config of the trained model being scored (set by ``seqkit evaluate``), for data
    that must match it (a labelled file's classes, in the model's order)."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.data = recipe.data

    def tokenizer(self, init_from: Path | None) -> Any:
        """The run's tokenizer: the ``init_from`` model's own, a saved one, or one trained on
        the data; None (this default) for data that needs none (images, graphs)."""
        return None

    @staticmethod
    def load_tokenizer(folder: Path) -> Any:
        """The tokenizer saved in ``folder`` by this data module's tokenizer; None (this
        default) for data without one."""
        return None

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        """What the model builder must know about the data (``vocab_size``...)."""
        raise NotImplementedError

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        """Training and validation data; ``window`` tokens per example unless the recipe's
        ``data.block_size`` says otherwise, never more than ``most``."""
        raise NotImplementedError

    no_data_files: ClassVar[str] = ""
    """For data that ``seqkit evaluate --data FILE`` cannot read (images, graphs, an
    environment): the line that refuses it and says what ``seqkit evaluate RUN`` scores."""

    def scoring_data(self, tokenizer: Any, window: int, most: int | None, path: Path) -> Prepared:
        """Every example of the file ``path`` (in the recipe's format) as evaluation data, for
        ``seqkit evaluate --data``."""
        if self.no_data_files:
            raise UserError(self.no_data_files)
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

    def sample(self, model: Any, tokenizer: Any) -> str:
        """What a run of a generating task prints after training: by default the recipe's
        ``sample`` settings continuing ``sample.prompt`` as text. Data whose examples are not
        text (MIDI) says here what a sample is."""
        from seqkit.generation import sample_text

        return sample_text(model, tokenizer, self.recipe.sample, seed=self.recipe.trainer.seed)

    def extra_evaluation(
        self, model: Any, tokenizer: Any, eval_data: Any, metrics: dict[str, float], options: Any
    ) -> dict[str, float]:
        """Scores of the data's own that ``seqkit evaluate`` adds (NLL per note and musical
        statistics of generated pieces), after :meth:`prepare` or :meth:`scoring_data` made
        ``eval_data``; ``metrics`` are the task's on it (``eval/loss``...), ``options`` the
        command's (None when called from code)."""
        return {}


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
