"""The ``labelled-text`` data module (:class:`LabelledText`): labelled texts
(:mod:`seqkit.data.labelled`) turned into token ids for the models that read text (recurrent
networks, BERT).

A tokenizer is trained on a stream of the training texts with the special tokens the model needs
(padding; BERT's [CLS], [SEP], [MASK]); each text is cut to ``max_length`` tokens
(``[CLS] text [SEP]`` for BERT) and encoded once into cached Arrow rows (:class:`EncodedRows`,
:mod:`seqkit.data.arrow_rows`), so a corpus larger than memory trains with flat memory; batches
are right-padded by :class:`PadCollator`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqkit.data.labelled import (
    LabelledDataSection,
    LabelledTexts,
    TextColumn,
    labelled_splits,
    load_labelled,
)
from seqkit.data.padding import padding_mask
from seqkit.data.tokenizer_folder import first_chars, load_tokenizer, recipe_tokenizer
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Prepared

EMBEDDED_LABELLED = "pydoc-prose-or-code"
"""The labelled set the ``labelled-text`` module reads when a recipe names no data."""
DEFAULT_MAX_LENGTH = 256
"""Tokens read per text when neither the recipe nor the model says otherwise."""


@dataclass
class LabelledTextSection(LabelledDataSection):
    """The ``data`` section of the ``labelled-text`` module."""

    max_length: int | None = None
    """Tokens read per text, BERT's [CLS] and [SEP] included (longer texts are cut, and the
    run says how many); default: the model's (a recurrent network's model.max_length, BERT's
    max_position_embeddings)."""
    train_examples: int | None = None
    """Keep only this many training texts (a small labelled set, where pretraining pays)."""
    num_proc: int = 1
    """Processes that encode a file or Hub corpus the first time it is read."""
    tokenizer_sample_chars: int | None = None
    """Train a bpe tokenizer on the training texts' first N characters only (default: all of
    them), for corpora too large to read whole; a char tokenizer always reads every text."""

    def __post_init__(self) -> None:
        from seqkit.checks import MAX_POSITIONS, check_ranges, count

        super().__post_init__()  # the cache, num_proc and tokenizer_sample_chars checked there
        check_ranges(
            "data",
            self,
            {"max_length": count(1, MAX_POSITIONS), "train_examples": count(1, None)},
        )


class EncodedTexts(torch.utils.data.Dataset):
    """Token id tensors of different lengths, each with a class id; ``collate_fn`` pads a
    batch of them."""

    def __init__(self, ids: list[torch.Tensor], labels: list[int], pad_id: int) -> None:
        self.ids, self.labels = ids, labels
        self.collate_fn = PadCollator(pad_id)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


class EncodedRows(torch.utils.data.Dataset):
    """Token ids read from cached Arrow rows (:func:`encode_rows_of`), each with a class id:
    :class:`EncodedTexts` for a corpus of any size. Item ``i`` is row ``positions[i]`` of the
    encoded rows."""

    def __init__(self, rows: Any, positions: np.ndarray, labels: np.ndarray, pad_id: int) -> None:
        self.rows, self.positions, self.labels = rows, positions, labels
        self.collate_fn = PadCollator(pad_id)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids = self.rows[int(self.positions[index])]["input_ids"]
        return {"input_ids": torch.tensor(ids, dtype=torch.long), "labels": int(self.labels[index])}


class _TextEncoder:
    """Encodes a batch of texts for :class:`EncodedRows`: at most ``body`` ids each (cut rows
    flagged), framed ``[CLS] … [SEP]`` when ``frame`` holds the two ids, and a flag for texts
    with no token at all. A class, not a closure, so that worker processes receive it."""

    def __init__(self, tokenizer: Any, body: int, frame: tuple[int, int] | None) -> None:
        self.tokenizer, self.body, self.frame = tokenizer, body, frame

    def __call__(self, batch: Any) -> tuple[Any, dict[str, int]]:
        import pyarrow as pa

        from seqkit.data.arrow_rows import list_column, ragged

        texts = batch.column("text").to_pylist()
        ids, offsets = self.tokenizer.encode_documents(texts)
        everything = np.arange(len(texts))
        values, new_offsets, cut = ragged(ids, offsets, everything, self.body)
        empty = np.diff(offsets) == 0
        if self.frame is not None:  # [CLS] before and [SEP] after every text
            cls_id, sep_id = self.frame
            lengths = np.diff(new_offsets)
            framed = np.empty(len(values) + 2 * len(texts), dtype=np.int64)
            starts = new_offsets[:-1] + 2 * everything
            framed[starts] = cls_id
            framed[starts + lengths + 1] = sep_id
            inside = np.ones(len(framed), dtype=bool)
            inside[starts] = inside[starts + lengths + 1] = False
            framed[inside] = values
            values, new_offsets = framed, new_offsets + 2 * np.arange(len(texts) + 1)
        table = pa.table(
            {
                "input_ids": list_column(values, new_offsets),
                "cut": pa.array(cut),
                "empty": pa.array(empty),
            }
        )
        return table, {}


def encode_rows_of(
    tokenizer: Any,
    data: LabelledTexts,
    max_length: int,
    *,
    frames: bool,
    cache_dir: str | None = None,
    num_proc: int = 1,
) -> tuple[EncodedRows, int]:
    """``(examples, how many texts were cut)`` of labelled texts held in Arrow: the selected
    rows encoded once (in storage order, ``num_proc`` processes) into cached Arrow rows keyed
    by the corpus's fingerprint, the rows taken, the tokenizer's digest and the lengths; a
    second run with the same corpus, split and tokenizer reads them from the cache."""
    import hashlib

    from seqkit.data.arrow_rows import encode_rows, encoded_column, record_batches, rows_cache_root
    from seqkit.data.token_file import tokenizer_digest

    texts = data.texts
    assert isinstance(texts, TextColumn)
    wanted = texts.row_numbers()
    stored = np.unique(wanted)  # the rows to encode, in storage order
    chosen = None
    if len(stored) < len(texts.records):
        chosen = np.zeros(len(texts.records), dtype=bool)
        chosen[stored] = True
    frame = (tokenizer.cls_token_id, tokenizer.sep_token_id) if frames else None
    body = max_length - 2 if frames else max_length

    def batches() -> Iterator[Any]:
        at = 0
        for batch in record_batches(texts.records):
            rows = batch.select([texts.column]).rename_columns(["text"])
            if chosen is not None:
                rows = rows.filter(chosen[at : at + batch.num_rows])
            at += batch.num_rows
            yield rows

    key = {
        "kind": "labelled-texts",
        "rows": texts.records._fingerprint,
        "column": texts.column,
        "taken": hashlib.sha256(stored.tobytes()).hexdigest() if chosen is not None else "all",
        "tokenizer": tokenizer_digest(tokenizer),
        "body": body,
        "frame": frame,
    }
    root = rows_cache_root(cache_dir)
    encoded, _, _ = encode_rows(batches(), _TextEncoder(tokenizer, body, frame), key, root,
                                num_proc=num_proc)  # fmt: skip
    positions = np.searchsorted(stored, wanted)
    if not frames:
        empty = encoded_column(encoded, "empty")[positions]
        if empty.any():
            text = texts[int(np.argmax(empty))]
            raise UserError(f"text {text[:40]!r} has no tokens")
    cut = int(encoded_column(encoded, "cut")[positions].sum())
    return EncodedRows(encoded, positions, data.labels, pad_id_of(tokenizer)), cut


def _stream(texts: Sequence[str]) -> Iterator[str]:
    """The texts in any order as a stream (a :class:`TextColumn` in storage order)."""
    return texts.stream() if isinstance(texts, TextColumn) else iter(texts)


class PadCollator:
    """Right-pads a batch to its longest text: ``input_ids`` (B, T), ``labels`` (B,), and
    ``attention_mask`` (B, T) when a row is padded (:func:`seqkit.data.padding.padding_mask`).
    Padding per batch (not to a global maximum) keeps short batches cheap."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        lengths = [len(row["input_ids"]) for row in rows]
        ids = torch.full((len(rows), max(lengths)), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : lengths[i]] = row["input_ids"]
        labels = torch.tensor([row["labels"] for row in rows], dtype=torch.long)
        return {"input_ids": ids, **padding_mask(lengths), "labels": labels}


def pad_id_of(tokenizer: Any) -> int:
    """The padding id of ``tokenizer``: its pad role, else a pad token of its vocabulary."""
    if getattr(tokenizer, "pad_token_id", None) is not None:
        return tokenizer.pad_token_id
    vocabulary = tokenizer.get_vocab()
    for token in ("<pad>", "<|pad|>", "[PAD]"):
        if token in vocabulary:
            return vocabulary[token]
    raise UserError("the classifier's tokenizer has no padding token (<pad>)")


class LabelledText(DataModule):
    """The ``labelled-text`` data module: labelled texts as token ids, for classifiers that
    read text (``task: classification`` with a recurrent network or BERT).

    The texts come from :func:`labelled_splits` (``data.path``, ``data.hub``, an embedded set;
    ``data.val_path`` or a seeded ``data.val_fraction``), the training set cut to
    ``data.train_examples``. The tokenizer is the ``init_from`` model's own, a saved one
    (``tokenizer.path``), or one trained with the special tokens the model needs: a character
    tokenizer has no unknown token, so it learns every text's alphabet (the validation texts'
    too); a BPE tokenizer learns from the training texts only (bytes cover the rest).
    """

    Section = LabelledTextSection
    load_tokenizer = staticmethod(load_tokenizer)

    default_embedded: str | None = EMBEDDED_LABELLED

    def __init__(self, recipe: Any):
        super().__init__(recipe)
        self._splits: tuple[LabelledTexts, LabelledTexts | None, int] | None = None

    def splits(self) -> tuple[LabelledTexts, LabelledTexts | None, int]:
        """``(train, validation or None, training texts available)``, read once."""
        if self._splits is None:
            train, val = labelled_splits(
                self.data, self.recipe.trainer.seed, default_embedded=self.default_embedded
            )
            available = len(train)
            wanted = getattr(self.data, "train_examples", None)
            if wanted is not None:
                train = train.subset(range(min(wanted, available)))
            self._splits = (train, val, available)
        return self._splits

    # -- what the model needs of the tokenizer

    def _special_tokens(self) -> dict[str, str]:
        from seqkit.parts.base import ModelBuilder

        return (self.builder or ModelBuilder).special_tokens

    def _frames(self) -> bool:
        return bool(getattr(self.builder, "frames_text", False))

    def _needed_by(self) -> str:
        return f"model.architecture {self.builder.name()}" if self.builder else "the model"

    def tokenizer(self, init_from: Path | None) -> Any:
        settings = self.recipe.tokenizer

        def texts() -> Iterator[str]:
            # A character vocabulary has no unknown token: it learns the validation texts'
            # alphabet too (the model still learns only from the training texts). Texts are
            # read as a stream, never gathered into a list.
            train, val, _ = self.splits()
            if settings.kind == "char":
                return chain(_stream(train.texts), _stream(val.texts) if val is not None else ())
            limit = getattr(self.data, "tokenizer_sample_chars", None)
            return first_chars(_stream(train.texts), limit)

        tokenizer = recipe_tokenizer(settings, init_from, texts, dict(self._special_tokens()))
        self.check_tokenizer(tokenizer)
        return tokenizer

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Refuse a tokenizer without the special tokens the model reads: padding, and the
        ``[CLS]``/``[SEP]`` framing of a model that frames its text (a stock BERT tokenizer
        has no bos/eos, and a classifier reads none)."""
        pad_id_of(tokenizer)
        for role in ("cls", "sep") if self._frames() else ():
            tokenizer.require_special_token_id(role, self._needed_by())

    def _class_names(self) -> list[str]:
        if self.model_config is not None:  # a trained model: its classes, in its order
            id2label = self.model_config.id2label
            return [str(id2label[i]) for i in range(len(id2label))]
        return self.splits()[0].label_names

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        names = self._class_names()
        facts = {
            "vocab_size": tokenizer.vocab_size,
            "pad_token_id": pad_id_of(tokenizer),
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
        }
        if self.data.max_length is not None:
            facts["max_length"] = self.data.max_length
        return facts

    # -- examples

    def _max_length(self, window: int, most: int | None) -> tuple[int, str]:
        if self.data.max_length is not None:
            max_length, name = self.data.max_length, "data.max_length"
        else:
            max_length = window or DEFAULT_MAX_LENGTH
            name = (
                "model.max_length"
                if hasattr(self.builder, "max_length")
                else "the model's max_position_embeddings"
            )
        if most is not None and max_length > most:
            raise UserError(
                f"data.max_length ({max_length}) exceeds the model's max_position_embeddings "
                f"({most})"
            )
        if self._frames() and max_length < 3:
            raise UserError(
                f"{name} ({max_length}) leaves no room for a token between [CLS] and [SEP]; "
                "use at least 3"
            )
        return max_length, name

    def encode(
        self, tokenizer: Any, data: LabelledTexts, max_length: int
    ) -> tuple[EncodedTexts | EncodedRows, int]:
        """``(examples, how many texts were cut)``: each text as ids, at most ``max_length``
        of them, ``[CLS] … [SEP]`` for a model that reads framed text. Texts in Arrow (a
        :class:`TextColumn`) are encoded once into cached Arrow rows (:class:`EncodedRows`)."""
        if isinstance(data.texts, TextColumn):
            return encode_rows_of(
                tokenizer,
                data,
                max_length,
                frames=self._frames(),
                cache_dir=self.data.cache_dir,
                num_proc=getattr(self.data, "num_proc", 1),
            )
        frames = self._frames()
        body = max_length - 2 if frames else max_length
        rows, truncated = [], 0
        for text in data.texts:
            ids = tokenizer.encode(text)
            if len(ids) > body:
                truncated += 1
                ids = ids[:body]
            if frames:
                ids = [tokenizer.cls_token_id, *ids, tokenizer.sep_token_id]
            elif not ids:
                raise UserError(f"text {text[:40]!r} has no tokens")
            rows.append(torch.tensor(ids, dtype=torch.long))
        return EncodedTexts(rows, data.labels.tolist(), pad_id_of(tokenizer)), truncated

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        max_length, name = self._max_length(window, most)
        train, val, available = self.splits()
        train_data, cut = self.encode(tokenizer, train, max_length)
        eval_data = None
        if val is not None:
            eval_data, cut_val = self.encode(tokenizer, val, max_length)
            cut += cut_val
        texts = len(train) + (len(val) if val is not None else 0)
        if cut:
            print(
                f"note: {cut} of {texts} texts are longer than {name} ({max_length} tokens) "
                "and were truncated",
                file=sys.stderr,
            )
        summary = {
            "texts": f"{available} train, {len(val) if val is not None else 0} validation",
            "classes": ", ".join(train.label_names),
        }
        if len(train) < available:
            summary["train texts"] = len(train)
            print(
                f"note: training on {len(train)} of {available} labelled texts "
                "(data.train_examples)",
                file=sys.stderr,
            )
        return Prepared(
            train_data=train_data,
            eval_data=eval_data,
            collate_fn=train_data.collate_fn,
            summary=summary,
        )

    def scoring_data(self, tokenizer: Any, window: int, most: int | None, path: Path) -> Prepared:
        max_length, _ = self._max_length(window, most)
        data = load_labelled(
            path=str(path),
            text_column=self.data.text_column,
            label_column=self.data.label_column,
            labels=self._class_names(),
        )
        eval_data, _ = self.encode(tokenizer, data, max_length)
        return Prepared(train_data=None, eval_data=eval_data, collate_fn=eval_data.collate_fn)

    def unlabelled(
        self, tokenizer: Any, texts: list[str], window: int, most: int | None
    ) -> EncodedTexts:
        """``texts`` as examples to classify (their labels are placeholders)."""
        max_length, _ = self._max_length(window, most)
        names = self._class_names()
        placeholder = LabelledTexts(texts, np.zeros(len(texts), dtype=np.int64), names)
        return self.encode(tokenizer, placeholder, max_length)[0]

    def vocabulary(self, tokenizer: Any) -> str:
        from seqkit.data.tokenization import CharTokenizer

        kind = "char" if isinstance(tokenizer, CharTokenizer) else "bpe"
        return f"{tokenizer.vocab_size} ({kind})"

    def card_tags(self, tokenizer: Any) -> list[str]:
        return ["text-classification"]
