"""The recurrent text classifier (``task: rnn-classifier``).

Labelled texts are read by :mod:`seqkit.data.classification` (a local tab-separated, CSV, JSON
or Parquet file, a Hub data set, or by default the embedded prose-or-code lines of CPython's
pydoc topics), with a validation file (``data.val_path``) or a seeded split. The model lives in
:mod:`seqkit.models.rnn`; ``model.implementation`` picks torch's fused kernels (default) or the
cells written out gate by gate. (The recurrent language models are composed from parts: model
architecture ``recurrent`` in :mod:`seqkit.models.rnn`.)
"""

from __future__ import annotations

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
from seqkit.parts.base import Job
from seqkit.parts.compose import load_init_from
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.trainer.tasks import ClassificationTask

MODEL_TYPES = ("seqkit-rnn-classifier",)
CELLS = ("rnn", "lstm", "gru")
IMPLEMENTATIONS = ("fused", "explicit")
POOLINGS = ("last", "mean", "max")
EMBEDDED_LABELLED = "pydoc-prose-or-code"
"""The classifier's labelled set when a recipe names no data."""
DataSection = LabelledDataSection
"""The ``data`` section: the common fields, label_column, labels and val_path."""


@dataclass
class ModelSection:
    """The ``model`` section of an ``rnn-classifier`` recipe."""

    cell: str = "lstm"
    """rnn, lstm or gru."""
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
    bidirectional: bool = True
    """Read each text both ways."""
    pooling: str = "last"
    """last (final states), mean or max over the outputs."""
    max_length: int = 256
    """Tokens read per text (longer texts are truncated, and the run says so)."""
    init_from: str | None = None
    """A model folder of the same task (a run's final/) to start from: fine-tuning."""

    def __post_init__(self) -> None:
        checks = {
            "cell": (self.cell, CELLS),
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
                "max_length": count(1, MAX_POSITIONS),
            },
        )


# ----------------------------------------------------------------------------- shared


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


def _sizes(section: ModelSection, *extra: str) -> dict:
    """The recipe's architecture, by config field, that an init_from folder must match."""
    names = ("embedding_size", "hidden_size", "num_layers", *extra)
    sizes = {"cell": section.cell, **{name: getattr(section, name) for name in names}}
    if section.cell == "rnn":
        sizes["nonlinearity"] = section.nonlinearity
    return sizes


def build(recipe: Recipe, section: ModelSection) -> Job:
    """The classifier, its tokenizer and the labelled texts, wrapped for the Trainer."""
    from seqkit.export.model_card import write_model_card
    from seqkit.models.rnn import RecurrentClassifierConfig, RecurrentForSequenceClassification

    cell = section.cell
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
            _sizes(section, "bidirectional", "pooling"),
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
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
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
            "model": asdict(section),
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


def load_pretrained(folder: Path):
    """``(model, tokenizer)`` from a classifier folder written by this family."""
    from seqkit.data import load_tokenizer
    from seqkit.folders import check_vocabulary, load_weights
    from seqkit.models.rnn import RecurrentForSequenceClassification

    model = load_weights(RecurrentForSequenceClassification, folder)
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model.eval(), tokenizer


def generate_command(folder: Path, args) -> int:
    """``seqkit generate`` refuses a classifier folder: it does not generate text."""
    raise UserError(
        f"{folder} holds a text classifier, which does not generate text; use seqkit evaluate"
    )


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
    """Validation loss and the :mod:`seqkit.metrics` scores on the run's held-out texts
    (``--plots``: the confusion matrix as a PNG)."""
    from seqkit.data.classification import has_validation
    from seqkit.metrics import report_to_console
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its validation data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    if not has_validation(recipe.data):
        raise UserError(f"{run_dir}'s recipe keeps no validation data (data.val_fraction is 0)")
    model, tokenizer = load_pretrained(folder)
    batch_size = args.batch_size or recipe.trainer.eval_batch_size or recipe.trainer.batch_size
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
