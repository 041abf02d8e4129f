"""The ``bow-classifier`` family: bag-of-words text classification.

Recipe → labelled documents (:mod:`seqkit.data.classification`: embedded ``python-docstrings``
topics, a local CSV/JSON/Parquet or tab-separated file, or a Hub data set) → a validation file or
a seeded train/validation split → :class:`~seqkit.data.bow.BagOfWordsVectorizer` fitted on the
training documents only (Chinese cut into words by ``data.segmenter``) → logistic regression or
a one-hidden-layer MLP (:mod:`seqkit.models.bow`) trained by the Trainer; evaluation reports the
scores of :mod:`seqkit.metrics` (accuracy, macro-F1, precision, recall, ROC-AUC when binary).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.checks import (
    MAX_WIDTH,
    check_choice,
    check_range,
    check_ranges,
    count,
    probability,
    show,
)
from seqkit.data.classification import LabelledDataSection
from seqkit.errors import UserError
from seqkit.parts.base import Job
from seqkit.recipes import Recipe
from seqkit.trainer.tasks import ClassificationTask

MODEL_TYPES = ("seqkit-bow",)
MAX_NGRAM = 10
"""Longest word n-gram (every document yields about one n-gram per word for each n)."""


@dataclass
class ModelSection:
    """The ``model`` section of a ``bow-classifier`` recipe."""

    classifier: str = "logistic"
    """logistic (one linear layer over the features) or mlp (one hidden ReLU layer)."""
    hidden_size: int = 64
    """Width of the MLP's hidden layer."""
    dropout: float = 0.0
    """Dropout on the MLP's hidden layer."""

    def __post_init__(self) -> None:
        from seqkit.models.bow import CLASSIFIERS

        check_choice("model.classifier", self.classifier, CLASSIFIERS)
        check_ranges("model", self, {"hidden_size": count(1, MAX_WIDTH), "dropout": probability()})


@dataclass
class DataSection(LabelledDataSection):
    """The ``data`` section of a ``bow-classifier`` recipe: documents, labels and features."""

    weighting: str = "tfidf"
    """count or tfidf."""
    ngram_range: tuple[int, int] = (1, 2)
    """Smallest and largest n of the word n-grams."""
    min_df: int | float = 2
    """Drop terms in fewer documents than this (an int) or this fraction of documents."""
    max_df: int | float = 1.0
    """Drop terms in more documents than this (an int) or this fraction of documents."""
    max_features: int | None = 20000
    """Keep only the most frequent terms (null = all)."""
    stop_words: str | list[str] | None = None
    """english (scikit-learn's list), a list of words, or null."""
    sublinear_tf: bool = True
    """tfidf: use 1 + ln(count) instead of the count."""
    lowercase: bool = True
    """Lowercase documents before cutting them into words."""
    segmenter: str = "none"
    """none (the word pattern), jieba (Chinese words) or char (every CJK character a token)."""

    def __post_init__(self) -> None:
        from seqkit.data.bow import WEIGHTINGS

        super().__post_init__()
        check_choice("data.weighting", self.weighting, WEIGHTINGS)
        for i, n in enumerate(self.ngram_range):
            check_range(f"data.ngram_range[{i}]", n, 1, MAX_NGRAM, integer=True)
        if self.ngram_range[0] > self.ngram_range[1]:
            raise UserError(
                f"data.ngram_range must be [min, max] with min <= max, got {list(self.ngram_range)}"
            )
        for name in ("min_df", "max_df"):
            value = getattr(self, name)
            if isinstance(value, float):  # a fraction of the documents
                check_range(f"data.{name}", value, 0, 1)
            else:  # a number of documents
                check_range(f"data.{name}", value, 0, None, integer=True)
        check_ranges("data", self, {"max_features": count(1, None)})
        if isinstance(self.stop_words, str) and self.stop_words != "english":
            raise UserError(
                f"data.stop_words must be english or a list of words, got {show(self.stop_words)}"
            )


class BagOfWordsDataset(Dataset):
    """Rows of a CSR feature matrix with their labels, one document per item."""

    def __init__(self, features, labels: np.ndarray) -> None:
        self.features = features.tocsr()
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        start, end = self.features.indptr[index], self.features.indptr[index + 1]
        ids = self.features.indices[start:end]
        values = self.features.data[start:end]
        return ids, values, self.labels[index]


def collate_bags(rows: list[tuple]) -> dict[str, torch.Tensor]:
    """Pad each document's feature ids/values to the longest of the batch (id 0, value 0.0)."""
    longest = max(1, max(len(ids) for ids, _, _ in rows))
    feature_ids = torch.zeros((len(rows), longest), dtype=torch.long)
    feature_values = torch.zeros((len(rows), longest), dtype=torch.float32)
    for i, (ids, values, _) in enumerate(rows):
        feature_ids[i, : len(ids)] = torch.from_numpy(ids.astype(np.int64))
        feature_values[i, : len(values)] = torch.from_numpy(values.astype(np.float32))
    labels = torch.stack([label for _, _, label in rows])
    return {"feature_ids": feature_ids, "feature_values": feature_values, "labels": labels}


def _vectorizer_for(data: DataSection):
    from seqkit.data.bow import BagOfWordsVectorizer

    return BagOfWordsVectorizer(
        weighting=data.weighting,
        ngram_range=data.ngram_range,
        min_df=data.min_df,
        max_df=data.max_df,
        max_features=data.max_features,
        stop_words=data.stop_words,
        sublinear_tf=data.sublinear_tf,
        lowercase=data.lowercase,
        segmenter=data.segmenter,
    )


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load and split the documents, fit the vectorizer, build the classifier."""
    from seqkit.data.bow import cjk_share
    from seqkit.data.classification import labelled_splits
    from seqkit.export.model_card import write_model_card
    from seqkit.models.bow import BagOfWordsConfig, BagOfWordsForSequenceClassification
    from seqkit.recipes import recipe_to_dict

    train, val = labelled_splits(recipe.data, recipe.trainer.seed)
    vectorizer = _vectorizer_for(recipe.data)
    share = cjk_share(train.texts)
    if recipe.data.segmenter == "none" and share >= 0.01:
        # The word pattern would keep whole clauses of Chinese as single rare tokens.
        print(
            f"note: {share:.0%} of the training documents hold CJK text, which data.segmenter: "
            "none does not cut into words; set data.segmenter to jieba or char",
            file=sys.stderr,
        )
    train_features = vectorizer.fit_transform(train.texts)
    torch.manual_seed(recipe.trainer.seed)
    names = train.label_names
    config = BagOfWordsConfig(
        num_features=vectorizer.num_features,
        classifier=section.classifier,
        hidden_size=section.hidden_size,
        dropout=section.dropout,
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
    )
    model = BagOfWordsForSequenceClassification(config)
    eval_data = None
    if val is not None:
        eval_data = BagOfWordsDataset(vectorizer.transform(val.texts), val.labels)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        vectorizer.save_pretrained(folder)
        write_model_card(
            folder,
            title=f"seqkit bag-of-words {section.classifier} classifier",
            family="bow-classifier",
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["bag-of-words", "text-classification", section.classifier],
            pipeline_tag="text-classification",
            how_to_load=HOW_TO_LOAD,
        )

    return Job(
        task=ClassificationTask(model, len(names)),
        train_data=BagOfWordsDataset(train_features, train.labels),
        eval_data=eval_data,
        save_final=save_final,
        collate_fn=collate_bags,
        summary={
            "documents": f"{len(train)} train, {len(val) if val is not None else 0} validation",
            "classes": ", ".join(names),
            "features": vectorizer.num_features,
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit.models.bow  # registers the seqkit-bow model type with the Auto classes
from transformers import AutoModelForSequenceClassification
from seqkit.data.bow import BagOfWordsVectorizer

model = AutoModelForSequenceClassification.from_pretrained("PATH")
vectorizer = BagOfWordsVectorizer.from_pretrained("PATH")
# or, from the command line: seqkit generate PATH --prompt "some text" (prints the class)
"""


def load_pretrained(folder: Path):
    """``(model, vectorizer)`` from a folder written by a ``bow-classifier`` run."""
    from seqkit.data.bow import BagOfWordsVectorizer
    from seqkit.folders import load_weights, loading
    from seqkit.models.bow import BagOfWordsForSequenceClassification

    with loading(f"the vectorizer in {folder}"):
        vectorizer = BagOfWordsVectorizer.from_pretrained(folder)
    model = load_weights(BagOfWordsForSequenceClassification, folder)
    if model.config.num_features != vectorizer.num_features:
        raise UserError(
            f"{folder}: the vectorizer has {vectorizer.num_features} features but the model "
            f"expects {model.config.num_features}"
        )
    return model, vectorizer


def _predict(model, vectorizer, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Class probabilities, one row per text."""
    features = vectorizer.transform(texts)
    dataset = BagOfWordsDataset(features, np.zeros(len(texts), dtype=np.int64))
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = collate_bags(
                [dataset[i] for i in range(start, min(start + batch_size, len(texts)))]
            )
            batch.pop("labels")
            chunks.append(model(**batch).logits.softmax(dim=-1).numpy())
    return np.concatenate(chunks)


def generate_command(folder: Path, args) -> int:
    """``seqkit generate FOLDER --prompt TEXT``: print the predicted class and its probability."""
    if not args.prompt:
        raise UserError("--prompt is required: the text to classify")
    model, vectorizer = load_pretrained(folder)
    probabilities = _predict(model, vectorizer, [args.prompt])[0]
    ranked = np.argsort(-probabilities)
    for c in ranked[: min(3, len(ranked))]:
        print(f"{model.config.id2label[int(c)]}\t{probabilities[c]:.3f}")
    return 0


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """The :mod:`seqkit.metrics` scores on the run's validation documents (its val_path, or
    the same seeded split); a per-class report and the confusion matrix are printed, and with
    ``--plots`` the matrix is drawn to ``RUN/plots/confusion-matrix.png``."""
    from seqkit.data.classification import has_validation, labelled_splits
    from seqkit.metrics import report_to_console
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its validation data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    if not has_validation(recipe.data):
        raise UserError(
            f"{run_dir}'s recipe keeps no validation data (no data.val_path, val_fraction 0)"
        )
    model, vectorizer = load_pretrained(folder)
    _, val = labelled_splits(recipe.data, recipe.trainer.seed)
    probabilities = _predict(model, vectorizer, val.texts)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return report_to_console(
        val.labels, probabilities, names, run_dir, plots=getattr(args, "plots", False)
    )
