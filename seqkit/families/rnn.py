"""The recurrent family: RNN, LSTM and GRU language models, and a recurrent text classifier.

Tasks (a recipe's ``task``):

* ``rnn-lm``, ``lstm-lm``, ``gru-lm``: a character- or BPE-level language model on a corpus,
  cut into windows exactly like the ``gpt`` family (so the validation losses compare), trained
  as a language-modeling task. ``data.block_size`` is the length of truncated back-propagation
  through time: every window starts from a zero state.
* ``rnn-classifier``: a text classifier on labelled texts, read by
  :mod:`seqkit.data.classification` (a local tab-separated, CSV, JSON or Parquet file, a Hub
  data set, or by default the embedded prose-or-code lines of CPython's pydoc topics), with a
  validation file (``data.val_path``) or a seeded split.

The models live in :mod:`seqkit.models.rnn`; ``model.implementation`` picks torch's fused
kernels (default) or the cells written out gate by gate.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from seqkit import recipes
from seqkit.checks import (
    MAX_DEPTH,
    MAX_POSITIONS,
    MAX_WIDTH,
    check_ranges,
    count,
    probability,
    show,
)
from seqkit.data.classification import LabelledDataSection
from seqkit.errors import UserError
from seqkit.families import Job, load_init_from
from seqkit.recipes import Recipe, SampleSection, recipe_to_dict
from seqkit.trainer.tasks import ClassificationTask

LM_CELLS = {"rnn-lm": "rnn", "lstm-lm": "lstm", "gru-lm": "gru"}
"""Language-model tasks and the cell each one trains."""
CLASSIFIER_TASK = "rnn-classifier"
MODEL_TYPES = ("seqkit-rnn-lm", "seqkit-rnn-classifier")
CELLS = ("rnn", "lstm", "gru")
IMPLEMENTATIONS = ("fused", "explicit")
POOLINGS = ("last", "mean", "max")
EMBEDDED_LABELLED = "pydoc-prose-or-code"
"""The classifier's labelled set when a recipe names no data."""
DataSection = LabelledDataSection
"""The ``data`` section: the common fields, and for the classifier label_column, labels and
val_path (language models ignore those three)."""


@dataclass
class ModelSection:
    """The ``model`` section of a recurrent recipe (``*-lm`` and ``rnn-classifier``)."""

    cell: str | None = None
    """rnn, lstm or gru. Language-model tasks name their cell (``lstm-lm``), so leave it unset
    there; the classifier's default is lstm."""
    embedding_size: int = 128
    """Width of the token embedding."""
    hidden_size: int = 256
    """Width of each layer's hidden state (per direction)."""
    num_layers: int = 2
    """Stacked recurrent layers."""
    dropout: float = 0.0
    """Dropout on embeddings, between layers and on the top layer's outputs."""
    nonlinearity: str = "tanh"
    """The plain RNN's non-linearity: tanh or relu."""
    implementation: str = "fused"
    """fused (torch's kernels, default) or explicit (the cells written out, proven equal)."""
    tie_weights: bool = False
    """Language models: share the embedding with the output layer (needs embedding_size ==
    hidden_size)."""
    block_size: int = 128
    """Language models: tokens per training window (the truncated-BPTT length), unless
    data.block_size is set."""
    bidirectional: bool = True
    """Classifier: read each text both ways."""
    pooling: str = "last"
    """Classifier: last (final states), mean or max over the outputs."""
    max_length: int = 256
    """Classifier: tokens read per text (longer texts are truncated, and the run says so)."""
    init_from: str | None = None
    """A model folder of the same task (a run's final/) to start from: fine-tuning."""

    def __post_init__(self) -> None:
        checks = {
            "cell": (self.cell, (None, *CELLS)),
            "nonlinearity": (self.nonlinearity, ("tanh", "relu")),
            "implementation": (self.implementation, IMPLEMENTATIONS),
            "pooling": (self.pooling, POOLINGS),
        }
        for name, (value, valid) in checks.items():
            if value not in valid:
                shown = ", ".join(v for v in valid if v is not None)
                raise UserError(f"model.{name} must be one of {shown}, got {show(value)}")
        check_ranges(
            "model",
            self,
            {
                "embedding_size": count(1, MAX_WIDTH),
                "hidden_size": count(1, MAX_WIDTH),
                "num_layers": count(1, MAX_DEPTH),
                "dropout": probability(),
                "block_size": count(1, MAX_POSITIONS),
                "max_length": count(1, MAX_POSITIONS),
            },
        )


# ----------------------------------------------------------------------------- shared


def _cell_for(task: str, section: ModelSection) -> str:
    if task in LM_CELLS:
        if section.cell is not None and section.cell != LM_CELLS[task]:
            raise UserError(
                f"task {task} trains a {LM_CELLS[task]} model, but model.cell is "
                f"{section.cell!r}; use task {section.cell}-lm instead"
            )
        return LM_CELLS[task]
    return section.cell or "lstm"


def _tokenizer_for(recipe: Recipe, section: ModelSection, texts: Any):
    from seqkit.data import load_tokenizer, train_tokenizer

    if section.init_from:
        return load_tokenizer(Path(section.init_from))
    if recipe.tokenizer.path:
        return load_tokenizer(Path(recipe.tokenizer.path))
    return train_tokenizer(recipe.tokenizer.kind, texts, vocab_size=recipe.tokenizer.vocab_size)


def _load_init_from(section: ModelSection, model_class: type, task: str, expected: dict):
    """The model in ``section.init_from``, checked against the recipe (see
    :func:`seqkit.families.load_init_from`), running the recipe's implementation path."""
    model = load_init_from(Path(section.init_from), model_class, task, expected)
    model.config.implementation = section.implementation
    return model


def _sizes(section: ModelSection, cell: str, *extra: str) -> dict:
    """The recipe's architecture, by config field, that an init_from folder must match."""
    names = ("embedding_size", "hidden_size", "num_layers", *extra)
    sizes = {"cell": cell, **{name: getattr(section, name) for name in names}}
    if cell == "rnn":
        sizes["nonlinearity"] = section.nonlinearity
    return sizes


def _save_folder(model, tokenizer, folder: Path, generation: bool) -> None:
    from transformers import GenerationConfig

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if generation:
        GenerationConfig(
            do_sample=True, temperature=0.8, max_new_tokens=200, top_k=None, top_p=None
        ).save_pretrained(folder)


def _shown(section: ModelSection, cell: str, hide: tuple[str, ...]) -> dict[str, Any]:
    """The model settings worth printing: the resolved cell, without the other task's fields."""
    return {k: v for k, v in {**asdict(section), "cell": cell}.items() if k not in hide}


def build(recipe: Recipe, section: ModelSection) -> Job:
    """A language model or a classifier, by the recipe's task."""
    if recipe.task == CLASSIFIER_TASK:
        return _build_classifier(recipe, section)
    return _build_lm(recipe, section)


# ----------------------------------------------------------------------------- language model


def _build_lm(recipe: Recipe, section: ModelSection) -> Job:
    from seqkit.data import CausalLMDataset, encode_corpus, load_corpus, split_tail
    from seqkit.export.model_card import write_model_card
    from seqkit.models.rnn import RecurrentLMConfig, RecurrentLMForCausalLM
    from seqkit.trainer.tasks import LanguageModelingTask

    cell = _cell_for(recipe.task, section)
    text = load_corpus(recipe.data)
    tokenizer = _tokenizer_for(recipe, section, text)
    ids = encode_corpus(tokenizer, text)
    # Checked now, not after training: the sample prompt must be spelled in this vocabulary.
    tokenizer.encode(recipe.sample.prompt, what="sample.prompt")
    torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
    if section.init_from:
        model = _load_init_from(section, RecurrentLMForCausalLM, recipe.task, _sizes(section, cell))
    else:
        if section.tie_weights and section.embedding_size != section.hidden_size:
            raise UserError(
                f"model.tie_weights needs model.embedding_size ({section.embedding_size}) equal "
                f"to model.hidden_size ({section.hidden_size})"
            )
        model = RecurrentLMForCausalLM(
            RecurrentLMConfig(
                vocab_size=tokenizer.vocab_size,
                cell=cell,
                embedding_size=section.embedding_size,
                hidden_size=section.hidden_size,
                num_layers=section.num_layers,
                dropout=section.dropout,
                nonlinearity=section.nonlinearity,
                implementation=section.implementation,
                tie_word_embeddings=section.tie_weights,
            )
        )
    if model.config.vocab_size != tokenizer.vocab_size:
        raise UserError(
            f"tokenizer has {tokenizer.vocab_size} tokens but the model expects "
            f"{model.config.vocab_size}"
        )
    block_size = recipe.data.block_size or section.block_size
    if recipe.data.val_fraction > 0:
        train_ids, val_ids = split_tail(ids, recipe.data.val_fraction, block_size)
        # Validation windows do not overlap, so every validation token is scored once.
        eval_data = CausalLMDataset(val_ids, block_size, stride=block_size)
    else:
        train_ids, eval_data = ids, None
    train_data = CausalLMDataset(train_ids, block_size, stride=recipe.data.stride)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        _save_folder(model, tokenizer, folder, generation=True)
        write_model_card(
            folder,
            title=f"seqkit {cell.upper()} language model "
            f"({recipe.source.stem if recipe.source else 'recipe'})",
            family=recipe.task,
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=[cell, "rnn", "causal-lm", f"{recipe.tokenizer.kind}-level"],
            pipeline_tag="text-generation",
            how_to_load=HOW_TO_LOAD_LM,
        )

    def sample() -> str:
        return sample_text(model, tokenizer, recipe.sample, seed=recipe.trainer.seed)

    return Job(
        task=LanguageModelingTask(model),
        sample=sample,
        train_data=train_data,
        eval_data=eval_data,
        save_final=save_final,
        summary={
            "corpus characters": len(text),
            "vocabulary": tokenizer.vocab_size,
            "train tokens": len(train_ids),
            "parameters": model.num_parameters(),
            "model": _shown(section, cell, hide=("bidirectional", "pooling", "max_length")),
        },
    )


HOW_TO_LOAD_LM = """\
import seqkit.models.rnn  # registers the seqkit-rnn-lm model type with the Auto classes
from transformers import AutoModelForCausalLM
from seqkit.data import load_tokenizer

model = AutoModelForCausalLM.from_pretrained("PATH")  # implementation="explicit" to read the gates
tokenizer = load_tokenizer("PATH")
# or, from the command line: seqkit generate PATH --prompt "To be"
"""


def sample_text(model, tokenizer, settings: SampleSection, seed: int) -> str:
    """Continue ``settings.prompt`` (a recurrent model has no context limit)."""
    from seqkit.generation import generate

    output = generate(
        model,
        torch.tensor([tokenizer.encode(settings.prompt)], dtype=torch.long),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        generator=torch.Generator().manual_seed(seed),
    )
    return tokenizer.decode(output[0].tolist())


def _model_type(folder: Path) -> str | None:
    from seqkit.folders import read_config

    return read_config(folder)["model_type"]


def load_pretrained(folder: Path):
    """``(model, tokenizer)`` from a folder written by this family (LM or classifier)."""
    from seqkit.data import load_tokenizer
    from seqkit.folders import check_vocabulary, load_weights
    from seqkit.models.rnn import RecurrentForSequenceClassification, RecurrentLMForCausalLM

    if _model_type(folder) == "seqkit-rnn-classifier":
        model = load_weights(RecurrentForSequenceClassification, folder)
    else:
        model = load_weights(RecurrentLMForCausalLM, folder)
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model.eval(), tokenizer


def generate_command(folder: Path, args) -> int:
    """``seqkit generate`` for a recurrent LM; a classifier folder is refused. The prompt is
    read into the state, then tokens are sampled one at a time from it."""
    from seqkit.cli import generate_text  # imported here: the CLI imports families lazily too

    if _model_type(folder) == "seqkit-rnn-classifier":
        raise UserError(
            f"{folder} holds a text classifier, which does not generate text; use seqkit evaluate"
        )
    return generate_text(load_pretrained, folder, args)


# ----------------------------------------------------------------------------- classifier


def _build_classifier(recipe: Recipe, section: ModelSection) -> Job:
    from seqkit.export.model_card import write_model_card
    from seqkit.models.rnn import RecurrentClassifierConfig, RecurrentForSequenceClassification

    cell = _cell_for(recipe.task, section)
    train, val = _labelled(recipe)
    names = train.label_names
    texts = train.texts + (val.texts if val is not None else [])
    # A character tokenizer has no unknown token, so it learns every text's alphabet (the
    # validation texts' too); the model still learns only from the training texts.
    tokenizer = _tokenizer_for_classifier(recipe, section, texts)
    pad_id = _pad_id(tokenizer)
    encode = _Encoder(tokenizer, section.max_length)
    train_data = _encoded(encode, train)
    eval_data = _encoded(encode, val) if val is not None else None
    if encode.truncated:
        print(
            f"note: {encode.truncated} of {len(texts)} texts are longer than model.max_length "
            f"({section.max_length} tokens) and were truncated",
            file=sys.stderr,
        )
    torch.manual_seed(recipe.trainer.seed)
    if section.init_from:
        model = _load_init_from(
            section,
            RecurrentForSequenceClassification,
            recipe.task,
            _sizes(section, cell, "bidirectional", "pooling"),
        )
        if model.config.num_labels != len(names):
            raise UserError(
                f"model.init_from has {model.config.num_labels} classes, the data has {len(names)}"
            )
    else:
        model = RecurrentForSequenceClassification(
            RecurrentClassifierConfig(
                vocab_size=tokenizer.vocab_size,
                cell=cell,
                embedding_size=section.embedding_size,
                hidden_size=section.hidden_size,
                num_layers=section.num_layers,
                bidirectional=section.bidirectional,
                pooling=section.pooling,
                dropout=section.dropout,
                nonlinearity=section.nonlinearity,
                implementation=section.implementation,
                pad_token_id=pad_id,
                id2label=dict(enumerate(names)),
            )
        )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        _save_folder(model, tokenizer, folder, generation=False)
        write_model_card(
            folder,
            title=f"seqkit {cell.upper()} text classifier "
            f"({recipe.source.stem if recipe.source else 'recipe'})",
            family=recipe.task,
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=[cell, "rnn", "text-classification"],
            pipeline_tag="text-classification",
            how_to_load=HOW_TO_LOAD_CLASSIFIER,
        )

    return Job(
        task=ClassificationTask(model),
        train_data=train_data,
        eval_data=eval_data,
        collate_fn=PadCollator(pad_id),
        save_final=save_final,
        summary={
            "texts": f"{len(train)} train, {len(val) if val is not None else 0} validation",
            "classes": ", ".join(names),
            "vocabulary": tokenizer.vocab_size,
            "parameters": model.num_parameters(),
            "model": _shown(section, cell, hide=("tie_weights", "block_size")),
        },
    )


HOW_TO_LOAD_CLASSIFIER = """\
import seqkit.models.rnn  # registers the seqkit-rnn-classifier model type with the Auto classes
from transformers import AutoModelForSequenceClassification
from seqkit.data import load_tokenizer

model = AutoModelForSequenceClassification.from_pretrained("PATH")
tokenizer = load_tokenizer("PATH")
# or, from the command line: seqkit evaluate PATH
"""

# ---- labelled data: read by seqkit.data.classification, the home every classifier shares


def _labelled(recipe: Recipe):
    """``(train, validation or None)`` labelled texts of the recipe."""
    from seqkit.data.classification import labelled_splits

    return labelled_splits(recipe.data, recipe.trainer.seed, default_embedded=EMBEDDED_LABELLED)


def _encoded(encode: _Encoder, data) -> LabelledTexts:
    return LabelledTexts([encode(text) for text in data.texts], data.labels.tolist())


def _tokenizer_for_classifier(recipe: Recipe, section: ModelSection, texts: list[str]):
    if section.init_from or recipe.tokenizer.path:
        return _tokenizer_for(recipe, section, texts)
    from seqkit.data import train_tokenizer

    # Padding needs an id of its own, never a character of the texts.
    specials = {"pad": "<pad>"}
    return train_tokenizer(
        recipe.tokenizer.kind, texts, vocab_size=recipe.tokenizer.vocab_size,
        special_tokens=specials,
    )  # fmt: skip


def _pad_id(tokenizer) -> int:
    if getattr(tokenizer, "pad_token_id", None) is not None:
        return tokenizer.pad_token_id
    for token in ("<pad>", "<|pad|>", "[PAD]"):
        if token in tokenizer.get_vocab():
            return tokenizer.get_vocab()[token]
    raise UserError("the classifier's tokenizer has no padding token (<pad>)")


class _Encoder:
    """Texts to id tensors, truncated to ``max_length``; counts how many were cut."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer, self.max_length, self.truncated = tokenizer, max_length, 0

    def __call__(self, text: str) -> torch.Tensor:
        ids = self.tokenizer.encode(text)
        if len(ids) > self.max_length:
            self.truncated += 1
            ids = ids[: self.max_length]
        if not ids:
            raise UserError(f"text {text[:40]!r} has no tokens")
        return torch.tensor(ids, dtype=torch.long)


class LabelledTexts(torch.utils.data.Dataset):
    """Token id tensors of different lengths, each with a class id."""

    def __init__(self, ids: list[torch.Tensor], labels: list[int]) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


class PadCollator:
    """Right-pads a batch to its longest text: ``input_ids`` and ``attention_mask`` (B, T),
    ``labels`` (B,). Padding per batch (not to a global maximum) keeps short batches cheap."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n] = row["input_ids"]
            mask[i, :n] = 1
        labels = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """LM: validation loss (nats per token) and perplexity on the run's validation tail, every
    token scored once. Classifier: validation loss and the :mod:`seqkit.metrics` scores on the
    run's held-out texts (``--plots``: the confusion matrix as a PNG)."""
    from seqkit.data.classification import has_validation
    from seqkit.families import data_section_for
    from seqkit.recipes import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its validation data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml", data_section_for=data_section_for)
    classifier = _model_type(folder) == "seqkit-rnn-classifier"
    if not (has_validation(recipe.data) if classifier else recipe.data.val_fraction > 0):
        raise UserError(f"{run_dir}'s recipe keeps no validation data (data.val_fraction is 0)")
    model, tokenizer = load_pretrained(folder)
    batch_size = args.batch_size or recipe.trainer.eval_batch_size or recipe.trainer.batch_size
    if classifier:
        from seqkit.metrics import report_to_console

        _, val = _labelled(recipe)
        section = recipes.parse_section(ModelSection, recipe.model, "model")
        rows = _encoded(_Encoder(tokenizer, section.max_length), val)
        collate = PadCollator(model.config.pad_token_id)
        loss, probabilities = 0.0, []
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                batch = collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
                out = model(**batch)
                loss += float(out.loss) * len(batch["labels"])
                probabilities.append(out.logits.float().softmax(dim=-1))
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        scores = report_to_console(
            val.labels,
            torch.cat(probabilities).numpy(),
            names,
            run_dir,
            plots=getattr(args, "plots", False),
        )
        return {"val_loss": loss / len(rows), **scores}

    from seqkit.data import CausalLMDataset, encode_corpus, load_corpus, split_tail

    section = recipes.parse_section(ModelSection, recipe.model, "model")
    block_size = recipe.data.block_size or section.block_size
    ids = encode_corpus(tokenizer, load_corpus(recipe.data))
    _, val_ids = split_tail(ids, recipe.data.val_fraction, block_size)
    windows = CausalLMDataset(val_ids, block_size, stride=block_size)
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            rows = [windows[i] for i in range(start, min(start + batch_size, len(windows)))]
            batch = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
            targets = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * targets
            count += targets
    loss = total / count
    return {"val_loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}
