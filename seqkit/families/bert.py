"""The BERT family: masked-LM pretraining (``bert-mlm``) and sequence classification
(``bert-classifier``), usually fine-tuned from a pretrained folder (``model.init_from``).

``bert-mlm``: corpus (local file, Hub data set, or CPython's pydoc topics by default) →
tokenizer with [CLS]/[SEP]/[MASK]/[PAD] tokens (byte-level BPE by default) → token stream, its
tail held out → non-overlapping chunks of ``data.max_length - 2`` tokens, each wrapped as
``[CLS] chunk [SEP]`` → :class:`~seqkit.data.masking.MaskedLMCollator` masks 15% of each batch
afresh (dynamic masking); validation chunks are masked once with a fixed seed, so every
evaluation (and ``seqkit evaluate``) scores the same positions.

``bert-classifier``: labelled texts read by :mod:`seqkit.data.classification` (a local
tab-separated, CSV, JSON or Parquet file, a Hub data set, or by default the embedded
prose-or-code lines of the pydoc topics; a validation file or a seeded split) →
``[CLS] text [SEP]`` → BERT's pooled [CLS] vector → a linear classifier. With
``model.init_from=RUN/final`` the encoder and tokenizer come from a pretrained folder and
only the pooler and classifier start from random weights; ``data.train_examples`` keeps a
small labelled set, the setting where pretraining pays.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

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
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.trainer.tasks import ClassificationTask, Models, SupervisedTask, only_model

MODEL_TYPES = ("seqkit-bert",)
MLM_TASK, CLASSIFIER_TASK = "bert-mlm", "bert-classifier"
EVAL_MASK_SEED = 1234
"""Seed of the validation masks: fixed, so evaluations compare."""


@dataclass
class ModelSection:
    """The ``model`` section of a BERT recipe. Sizes left unset come from ``init_from`` when
    it is given, and otherwise from the defaults noted."""

    hidden_size: int | None = None
    """Width of embeddings and layers (default 128)."""
    num_hidden_layers: int | None = None
    """Encoder layers (default 2)."""
    num_attention_heads: int | None = None
    """Heads per layer (default 4); must divide hidden_size."""
    intermediate_size: int | None = None
    """Feed-forward width (default 4 × hidden_size)."""
    max_position_embeddings: int | None = None
    """Longest input in tokens (default: data.max_length)."""
    dropout: float = 0.1
    """Dropout on embeddings, sub-layer outputs, attention probabilities and the classifier."""
    attention: str = "sdpa"
    """sdpa (fused kernel, default) or explicit (the formula written out; same numbers)."""
    init_from: str | None = None
    """A seqkit BERT folder (a run's final/) to start from: its encoder weights and tokenizer.
    A bert-classifier starting from an MLM folder gets a new pooler and classifier."""

    def __post_init__(self) -> None:
        if self.attention not in ("sdpa", "explicit"):
            raise UserError(f"model.attention must be sdpa or explicit, got {show(self.attention)}")
        check_ranges(
            "model",
            self,
            {
                "hidden_size": count(1, MAX_WIDTH),
                "num_hidden_layers": count(1, MAX_DEPTH),
                "num_attention_heads": count(1, MAX_DEPTH),
                "intermediate_size": count(1, MAX_WIDTH),
                "max_position_embeddings": count(1, MAX_POSITIONS),
                "dropout": probability(),
            },
        )


@dataclass
class DataSection(LabelledDataSection):
    """The ``data`` section of a BERT recipe."""

    max_length: int = 128
    """Tokens per example, [CLS] and [SEP] included (longer texts are cut)."""
    mlm_probability: float = 0.15
    """bert-mlm: fraction of tokens chosen as prediction targets in each batch."""
    train_examples: int | None = None
    """bert-classifier: keep only this many training texts (a small labelled set)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(
            "data",
            self,
            {
                "max_length": count(3, MAX_POSITIONS),  # [CLS], one token, [SEP]
                "mlm_probability": probability(low_open=True),
                "train_examples": count(1, None),
            },
        )


# ----------------------------------------------------------------------------- shared


def _check_init_from(section: ModelSection) -> dict | None:
    """The config of ``model.init_from`` (None without one); a UserError unless it is a
    seqkit BERT folder."""
    from seqkit.folders import check_model_folder

    if not section.init_from:
        return None
    pretrained = _read_config(Path(section.init_from))
    if pretrained.get("model_type") not in MODEL_TYPES:
        raise UserError(
            f"model.init_from: {section.init_from} holds a {pretrained.get('model_type')!r} "
            "model, not a seqkit BERT"
        )
    check_model_folder(Path(section.init_from))
    return pretrained


def _tokenizer_for(recipe: Recipe, section: ModelSection, texts: Any):
    from seqkit.data import DEFAULT_SPECIAL_TOKENS, load_tokenizer, train_tokenizer

    _check_init_from(section)
    if section.init_from:
        tokenizer = load_tokenizer(Path(section.init_from))
    elif recipe.tokenizer.path:
        tokenizer = load_tokenizer(Path(recipe.tokenizer.path))
    else:
        tokenizer = train_tokenizer(
            recipe.tokenizer.kind,
            texts,
            vocab_size=recipe.tokenizer.vocab_size,
            special_tokens=DEFAULT_SPECIAL_TOKENS,
        )
    for role in ("cls", "sep", "pad", "mask"):
        tokenizer.require_special_token_id(role, "BERT")
    return tokenizer


def _read_config(folder: Path) -> dict:
    """The config of a BERT folder; the sizes a recipe copies from it must be positive
    integers (a tampered config would otherwise build a model that fails deep in PyTorch)."""
    from seqkit.folders import read_config

    if not (folder / "config.json").is_file():
        raise UserError(f"model.init_from: {folder} is not a model folder (no config.json)")
    config = read_config(folder)
    for name in _SIZE_FIELDS:
        value = config.get(name)
        if name in config and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(
                f"{folder / 'config.json'}: {name} must be a positive integer, got {value!r}"
            )
    return config


_SIZE_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
)


def _config_for(recipe: Recipe, section: ModelSection, vocab_size: int, **extra: Any):
    """The BertConfig: the pretrained folder's sizes (if any), then the recipe's explicit ones."""
    from seqkit.models.bert import BertConfig

    values: dict[str, Any] = {
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": recipe.data.max_length,
    }
    pretrained = _check_init_from(section)
    if pretrained is not None:
        values.update({name: pretrained[name] for name in _SIZE_FIELDS if name in pretrained})
    values.update(
        {
            name: getattr(section, name)
            for name in _SIZE_FIELDS
            if getattr(section, name) is not None
        }
    )
    values.setdefault("intermediate_size", 4 * values["hidden_size"])
    if values["hidden_size"] % values["num_attention_heads"]:
        raise UserError(
            f"model.hidden_size ({values['hidden_size']}) must be divisible by "
            f"model.num_attention_heads ({values['num_attention_heads']})"
        )
    if recipe.data.max_length > values["max_position_embeddings"]:
        raise UserError(
            f"data.max_length ({recipe.data.max_length}) exceeds the model's "
            f"max_position_embeddings ({values['max_position_embeddings']})"
        )
    return BertConfig(
        vocab_size=vocab_size,
        hidden_dropout_prob=section.dropout,
        attention_probs_dropout_prob=section.dropout,
        attention=section.attention,
        **values,
        **extra,
    )


def load_encoder_weights(model: torch.nn.Module, folder: Path, new_heads: tuple[str, ...]) -> None:
    """Copy every weight of ``folder`` that ``model`` has, checking names and shapes.

    Parameters of ``model`` whose names start with one of ``new_heads`` may be missing from
    the folder (a classifier head on a pretrained encoder) and keep their fresh initialisation;
    any other missing name, or any shape that differs, is a UserError naming them. Weights of
    the folder that ``model`` has no place for (the MLM head) are left out on purpose.
    """
    from safetensors.torch import load_file

    from seqkit.folders import loading

    path = folder / "model.safetensors"
    if not path.is_file():
        raise UserError(f"model.init_from: {folder} has no model.safetensors")
    with loading(f"model.init_from: {path}"):
        saved = load_file(str(path))
    own = model.state_dict()
    wrong = [
        f"{name} {tuple(saved[name].shape)} vs {tuple(t.shape)}"
        for name, t in own.items()
        if name in saved and saved[name].shape != t.shape
    ]
    missing = [name for name in own if name not in saved and not name.startswith(new_heads)]
    if wrong or missing:
        problems = (
            [f"{len(wrong)} of different shape (pretrained vs here): " + ", ".join(wrong[:3])]
            if wrong
            else []
        )
        if missing:
            problems.append(f"{len(missing)} missing: " + ", ".join(missing[:3]))
        raise UserError(
            f"model.init_from: the weights in {folder} do not fit this model ("
            + "; ".join(problems)
            + ("; ..." if len(wrong) > 3 or len(missing) > 3 else "")
            + ")"
        )
    model.load_state_dict({name: saved[name] for name in own if name in saved}, strict=False)


def wrap(tokenizer, ids: list[int], max_length: int) -> list[int]:
    """``[CLS] ids [SEP]``, the ids cut to fit ``max_length``."""
    return [tokenizer.cls_token_id, *ids[: max_length - 2], tokenizer.sep_token_id]


def _save(model, tokenizer, folder: Path, recipe: Recipe, metrics, run_dir: Path, tags) -> None:
    from seqkit.export.model_card import write_model_card

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    mlm = recipe.task == MLM_TASK
    write_model_card(
        folder,
        title=f"seqkit BERT {'masked LM' if mlm else 'classifier'} "
        f"({recipe.source.stem if recipe.source else 'recipe'})",
        family=recipe.task,
        num_parameters=model.num_parameters(),
        recipe=recipe_to_dict(recipe),
        metrics=metrics,
        datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
        loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
        tags=["bert", *tags],
        pipeline_tag="fill-mask" if mlm else "text-classification",
        how_to_load=HOW_TO_LOAD.replace(
            "AUTO", "AutoModelForMaskedLM" if mlm else "AutoModelForSequenceClassification"
        ),
    )


HOW_TO_LOAD = """\
import seqkit.models.bert  # registers the seqkit-bert model type with the Auto classes
from transformers import AUTO
from seqkit.data import load_tokenizer

model = AUTO.from_pretrained("PATH")
tokenizer = load_tokenizer("PATH")
# or, from the command line: seqkit evaluate PATH
"""


def build(recipe: Recipe, section: ModelSection) -> Job:
    """A masked-LM pretraining job or a classifier fine-tuning job, by the recipe's task."""
    if recipe.task == CLASSIFIER_TASK:
        return _build_classifier(recipe, section)
    return _build_mlm(recipe, section)


# ----------------------------------------------------------------------------- masked LM


class ChunkDataset(torch.utils.data.Dataset):
    """``[CLS] chunk [SEP]`` examples cut from a token stream, optionally pre-masked."""

    def __init__(self, rows: list[dict[str, torch.Tensor]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.rows[index]


def mlm_splits(tokenizer, text: str, data: DataSection) -> tuple[ChunkDataset, ChunkDataset | None]:
    """Training chunks (masked per batch by the collator) and validation chunks (masked once,
    with :data:`EVAL_MASK_SEED`)."""
    from seqkit.data import encode_corpus
    from seqkit.data.masking import MaskedLMCollator

    ids = encode_corpus(tokenizer, text).tolist()
    body = data.max_length - 2
    n_val = int(len(ids) * data.val_fraction)
    if data.val_fraction > 0 and n_val < body:
        raise UserError(
            f"data.val_fraction={data.val_fraction} of {len(ids)} tokens is shorter than one "
            f"example ({body} tokens); use more text or a larger val_fraction"
        )
    train_ids, val_ids = (ids[: len(ids) - n_val], ids[len(ids) - n_val :]) if n_val else (ids, [])

    def chunks(stream: list[int]) -> list[torch.Tensor]:
        return [
            torch.tensor(wrap(tokenizer, stream[i : i + body], data.max_length))
            for i in range(0, len(stream) - body + 1, body)
        ]

    train = chunks(train_ids)
    if not train:
        raise UserError(f"the corpus is shorter than one example ({body} tokens)")
    eval_data = None
    if val_ids:
        collator = MaskedLMCollator.for_tokenizer(
            tokenizer,
            mlm_probability=data.mlm_probability,
            generator=torch.Generator().manual_seed(EVAL_MASK_SEED),
        )
        rows = []
        for chunk in chunks(val_ids):
            masked, labels = collator.mask(chunk[None])
            rows.append({"input_ids": masked[0], "labels": labels[0]})
        eval_data = ChunkDataset(rows)
    return ChunkDataset([{"input_ids": c} for c in train]), eval_data


class MLMCollator:
    """Masks training rows afresh (dynamic masking); pads pre-masked validation rows as is."""

    def __init__(self, masker) -> None:
        self.masker = masker

    def __call__(self, rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if "labels" not in rows[0]:
            return self.masker(rows)
        batch = self.masker.pad(rows)
        labels = torch.full_like(batch["input_ids"], -100)
        for i, row in enumerate(rows):
            labels[i, : len(row["labels"])] = row["labels"]
        batch["labels"] = labels
        return batch


class MaskedLMTask(SupervisedTask):
    """MLM cross-entropy; evaluation also reports the accuracy on masked tokens."""

    def evaluation_step(self, models: Models, batch: dict[str, torch.Tensor]) -> dict[str, tuple]:
        out = only_model(models)(**batch)
        targets = batch["labels"] != -100
        count = int(targets.sum())
        correct = (out.logits.argmax(dim=-1) == batch["labels"]) & targets
        return {
            "loss": (out.loss.detach().float() * count, count),
            "masked_accuracy": (correct.sum().float(), count),
        }


def _build_mlm(recipe: Recipe, section: ModelSection) -> Job:
    from seqkit.data import load_corpus
    from seqkit.data.masking import MaskedLMCollator
    from seqkit.models.bert import BertForMaskedLM

    text = load_corpus(recipe.data)
    tokenizer = _tokenizer_for(recipe, section, text)
    train_data, eval_data = mlm_splits(tokenizer, text, recipe.data)
    torch.manual_seed(recipe.trainer.seed)
    model = BertForMaskedLM(_config_for(recipe, section, tokenizer.vocab_size))
    if section.init_from:  # continued pretraining
        load_encoder_weights(model, Path(section.init_from), new_heads=())
    collator = MLMCollator(
        MaskedLMCollator.for_tokenizer(tokenizer, mlm_probability=recipe.data.mlm_probability)
    )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        _save(model, tokenizer, folder, recipe, metrics, run_dir, ["fill-mask"])

    return Job(
        task=MaskedLMTask(model),
        train_data=train_data,
        eval_data=eval_data,
        collate_fn=collator,
        save_final=save_final,
        summary={
            "corpus characters": len(text),
            "vocabulary": tokenizer.vocab_size,
            "train examples": len(train_data),
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


# ----------------------------------------------------------------------------- classifier


def _labelled(recipe: Recipe):
    """``(train, validation or None, training texts available)``: labelled texts, the
    training set cut to ``data.train_examples``; the same reader and split as the recurrent
    classifier's."""
    from seqkit.data.classification import labelled_splits
    from seqkit.families.rnn import EMBEDDED_LABELLED

    train, val = labelled_splits(recipe.data, recipe.trainer.seed, EMBEDDED_LABELLED)
    available = len(train)
    if recipe.data.train_examples is not None:
        train = train.subset(range(min(recipe.data.train_examples, available)))
    return train, val, available


def _encode_rows(tokenizer, data, max_length):
    return [
        {
            "input_ids": torch.tensor(wrap(tokenizer, tokenizer.encode(text), max_length)),
            "labels": int(label),
        }
        for text, label in zip(data.texts, data.labels, strict=True)
    ]


def _build_classifier(recipe: Recipe, section: ModelSection) -> Job:
    from seqkit.families.rnn import PadCollator
    from seqkit.models.bert import BertForSequenceClassification

    train, val, available = _labelled(recipe)
    names = train.label_names
    tokenizer = _tokenizer_for(recipe, section, train.texts)
    max_length = recipe.data.max_length
    train_data = _encode_rows(tokenizer, train, max_length)
    eval_data = _encode_rows(tokenizer, val, max_length) if val is not None else None
    torch.manual_seed(recipe.trainer.seed)
    id2label = dict(enumerate(names))
    pretrained = _check_init_from(section)
    if pretrained is not None:
        heads = pretrained.get("id2label") or {}
        is_classifier = "BertForSequenceClassification" in (pretrained.get("architectures") or [])
        if is_classifier and len(heads) != len(names):
            raise UserError(
                f"model.init_from: {section.init_from} classifies into {len(heads)} labels, "
                f"the data has {len(names)} ({', '.join(names)})"
            )
    config = _config_for(
        recipe,
        section,
        tokenizer.vocab_size,
        id2label=id2label,
        label2id={n: i for i, n in id2label.items()},
    )
    model = BertForSequenceClassification(config)
    if section.init_from:
        # An MLM folder has no pooler or classifier: those two start fresh.
        load_encoder_weights(
            model, Path(section.init_from), new_heads=("bert.pooler.", "classifier.")
        )
    if len(train) < available:
        print(
            f"note: training on {len(train)} of {available} labelled texts (data.train_examples)",
            file=sys.stderr,
        )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        _save(model, tokenizer, folder, recipe, metrics, run_dir, ["text-classification"])

    return Job(
        task=ClassificationTask(model),
        train_data=train_data,
        eval_data=eval_data,
        collate_fn=PadCollator(tokenizer.pad_token_id),
        save_final=save_final,
        summary={
            "texts": f"{available} train, {len(val) if val is not None else 0} validation",
            "train texts": len(train),
            "classes": ", ".join(names),
            "vocabulary": tokenizer.vocab_size,
            "parameters": model.num_parameters(),
            "pretrained": section.init_from or "no (random initialisation)",
            "model": asdict(section),
        },
    )


# ----------------------------------------------------------------------------- loading, evaluate


def load_pretrained(folder: Path):
    """``(model, tokenizer)``: a BertForMaskedLM or BertForSequenceClassification by the
    folder's ``architectures``."""
    from seqkit.data import load_tokenizer
    from seqkit.folders import check_vocabulary, load_weights
    from seqkit.models.bert import BertForMaskedLM, BertForSequenceClassification, BertModel

    architectures = _read_config(folder).get("architectures")
    heads = {c.__name__: c for c in (BertModel, BertForMaskedLM, BertForSequenceClassification)}
    saved_as = (
        [a for a in architectures if isinstance(a, str) and a in heads]
        if isinstance(architectures, list)
        else []
    )
    cls = heads[saved_as[0]] if saved_as else BertForMaskedLM
    model = load_weights(cls, folder)
    tokenizer = load_tokenizer(folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    return model, tokenizer


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """bert-mlm: loss and accuracy on the masked validation tokens (fixed masks).
    bert-classifier: loss and the :mod:`seqkit.metrics` scores on the run's held-out texts
    (``--plots``: the confusion matrix as a PNG)."""
    from seqkit.data.classification import has_validation
    from seqkit.families.rnn import PadCollator
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its validation data"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    mlm = recipe.task == MLM_TASK
    if not (recipe.data.val_fraction > 0 if mlm else has_validation(recipe.data)):
        raise UserError(f"{run_dir}'s recipe keeps no validation data (data.val_fraction is 0)")
    model, tokenizer = load_pretrained(folder)
    model.eval()
    batch_size = args.batch_size or recipe.trainer.eval_batch_size or recipe.trainer.batch_size
    if mlm:
        from seqkit.data import load_corpus
        from seqkit.data.masking import MaskedLMCollator

        _, eval_data = mlm_splits(tokenizer, load_corpus(recipe.data), recipe.data)
        collate = MLMCollator(MaskedLMCollator.for_tokenizer(tokenizer))
        task: SupervisedTask = MaskedLMTask(model)
        totals: dict[str, float] = {}
        count = 0
        with torch.inference_mode():
            for start in range(0, len(eval_data), batch_size):
                rows = [eval_data[i] for i in range(start, min(start + batch_size, len(eval_data)))]
                results = task.evaluation_step(task.models, collate(rows))
                for name, (value, _) in results.items():
                    totals[name] = totals.get(name, 0.0) + float(value)
                count += results["loss"][1]
        return {
            "val_loss": totals["loss"] / count,
            "masked_accuracy": totals["masked_accuracy"] / count,
            "masked_tokens": count,
        }

    from seqkit.metrics import report_to_console

    _, val, _ = _labelled(recipe)
    names = val.label_names
    if model.config.num_labels != len(names):
        raise UserError(
            f"{folder} classifies into {model.config.num_labels} labels, the data has {len(names)}"
        )
    rows = _encode_rows(tokenizer, val, recipe.data.max_length)
    collate = PadCollator(tokenizer.pad_token_id)
    probabilities, loss = [], 0.0
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start : start + batch_size])
            out = model(**batch)
            loss += float(out.loss) * len(batch["labels"])
            probabilities.append(out.logits.float().softmax(dim=-1))
    scores = report_to_console(
        val.labels,
        torch.cat(probabilities).numpy(),
        [model.config.id2label[i] for i in range(len(names))],
        run_dir,
        plots=getattr(args, "plots", False),
    )
    return {"val_loss": loss / len(rows), **scores}
