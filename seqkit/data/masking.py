"""Dynamic masking for masked language modelling (Devlin et al. 2019, BERT, section 3.1).

Each time a batch is drawn, 15% of its real tokens are chosen as prediction targets; of those,
80% are replaced by the mask token, 10% by a random token and 10% left unchanged, so the model
cannot learn that only ``[MASK]`` positions matter (the mask never appears at fine-tuning time).
The loss is computed on the chosen positions only: ``labels`` holds the original token there and
-100 everywhere else. Special tokens ([CLS], [SEP], …) and padding are never chosen.

Every batch also carries ``masked_positions``: the flat indices (into the B × T positions) of its
targets, found here on the host, where the mask is drawn. A model that takes them (seqkit's BERT)
runs its vocabulary projection on those ~15 % of positions only: at BERT's sizes the projection
onto the vocabulary is most of the model's arithmetic, so a pretraining step of the
``bert/sst2-mlm`` recipe's model runs 3.4× as fast as ``transformers``' ``BertForMaskedLM``'s
(``scripts/bench.py``, row ``bert-mlm``), with the same loss and gradients. Since the indices come
with the batch, the device never has to tell the host how many targets there are (which a
boolean mask would make it do).

Masking in the collator, not once when the data set is built, is RoBERTa's *dynamic* masking
(Liu et al. 2019): every epoch sees a fresh choice of positions.

Randomness comes from ``generator`` when given (tests), and otherwise from torch's global RNG,
which the Trainer seeds and saves in every checkpoint, so a resumed run masks exactly as an
uninterrupted one.

The ``masked-text`` data module (:class:`MaskedText`) feeds BERT's masked-LM pretraining: a
corpus (local file, Hub data set, or CPython's pydoc topics by default) → a tokenizer with
[CLS]/[SEP]/[MASK]/[PAD] (byte-level BPE by default) → one token stream, its tail held out →
non-overlapping chunks of ``max_length - 2`` tokens, each framed as ``[CLS] chunk [SEP]``. With
``data.line_by_line`` each document (a row of a table's text column, else a non-blank line) is
instead one example, ``[CLS] document [SEP]`` cut to ``max_length``: the input a classifier
fine-tuned from the encoder reads (``transformers``' ``run_mlm.py --line_by_line`` does the same).
The last documents are held out, or with ``data.val_split: seeded`` the very documents a
``labelled-text`` recipe with the same file, ``val_fraction`` and seed validates on, so that
pretraining never reads its classifier's validation text (the tokenizer is trained on the
training documents only, too).
Training chunks are masked afresh in every batch (``data.masking: static`` masks each once, from
``trainer.seed``); validation chunks are masked once with :data:`EVAL_MASK_SEED`, so every
evaluation (and ``seqkit evaluate``) scores the same positions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from seqkit.checks import MAX_POSITIONS, check_choice, check_ranges, count, probability
from seqkit.data.corpora import load_corpus, load_documents
from seqkit.data.labelled import seeded_split
from seqkit.data.lm import TextCorpus, encode_corpus
from seqkit.data.padding import padding_mask
from seqkit.data.special_tokens import DEFAULT_SPECIAL_TOKENS
from seqkit.data.tokenization import CharTokenizer
from seqkit.data.tokenizer_folder import recipe_tokenizer
from seqkit.errors import UserError
from seqkit.parts.base import Prepared
from seqkit.recipes import DataSection


def masked_positions(labels: torch.Tensor) -> torch.Tensor:
    """The flat indices (N,) of the targets of a (B, T) ``labels`` batch (those not -100), in
    row-major order: ``labels.reshape(-1)[positions]`` are the N target tokens."""
    return (labels.reshape(-1) != -100).nonzero().squeeze(1)


class MaskedLMCollator:
    """Pads a batch of token id sequences and masks it for MLM.

    Args:
        mask_token_id: id of the mask token.
        pad_token_id: id that fills short rows (never masked).
        vocab_size: random replacements are drawn from ids ``[0, vocab_size)`` that are not
            special.
        special_token_ids: ids never masked nor drawn as a random replacement.
        mlm_probability: fraction of real tokens chosen as targets (0.15).
        mask_fraction, random_fraction: of the chosen tokens, the share replaced by the mask
            token and by a random token; the rest (10%) keep their original token.
        generator: a seeded ``torch.Generator`` for reproducible masks; None uses the global RNG.

    Each row is a 1-D id tensor or list, or a dict with ``input_ids`` (and optionally
    ``token_type_ids``). Returns ``input_ids``, ``attention_mask``, ``labels`` (and
    ``token_type_ids``), each (B, T), and ``masked_positions`` (N,) (:func:`masked_positions`).
    """

    def __init__(
        self,
        *,
        mask_token_id: int,
        pad_token_id: int,
        vocab_size: int,
        special_token_ids: Iterable[int] = (),
        mlm_probability: float = 0.15,
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
            raise ValueError("mask_fraction and random_fraction must be >= 0 and sum to <= 1")
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        self.mlm_probability = mlm_probability
        self.mask_fraction = mask_fraction
        self.random_fraction = random_fraction
        self.generator = generator
        special = set(special_token_ids) | {mask_token_id, pad_token_id}
        self.special_ids = torch.tensor(sorted(special), dtype=torch.long)
        # Random replacements: ordinary tokens only (a random [CLS] would teach nothing).
        self.replacement_ids = torch.tensor(
            [i for i in range(vocab_size) if i not in special], dtype=torch.long
        )
        if len(self.replacement_ids) == 0:
            raise ValueError("the vocabulary has no ordinary tokens to draw replacements from")

    def _rand(self, shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def pad(self, rows: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Right-pad rows to the longest: ``input_ids`` (and ``token_type_ids``), each (B, T),
        and ``attention_mask`` when a row is padded (:func:`padding_mask`)."""
        sequences = [row["input_ids"] if isinstance(row, dict) else row for row in rows]
        sequences = [torch.as_tensor(s, dtype=torch.long) for s in sequences]
        longest = max(len(s) for s in sequences)
        ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        for i, s in enumerate(sequences):
            ids[i, : len(s)] = s
        batch = {"input_ids": ids, **padding_mask([len(s) for s in sequences])}
        if isinstance(rows[0], dict) and "token_type_ids" in rows[0]:
            segments = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                types = torch.as_tensor(row["token_type_ids"], dtype=torch.long)
                segments[i, : len(types)] = types
            batch["token_type_ids"] = segments
        return batch

    def mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masked input_ids, labels)`` for a (B, T) batch; the input is not modified."""
        maskable = ~torch.isin(input_ids, self.special_ids)  # (B, T)
        if attention_mask is not None:
            maskable &= attention_mask.bool()
        chosen = (self._rand(input_ids.shape) < self.mlm_probability) & maskable
        labels = input_ids.masked_fill(~chosen, -100)  # targets only where chosen

        # One uniform draw splits the chosen positions 80 / 10 / 10.
        split = self._rand(input_ids.shape)
        to_mask = chosen & (split < self.mask_fraction)
        to_random = (
            chosen
            & (split >= self.mask_fraction)
            & (split < self.mask_fraction + self.random_fraction)
        )
        masked = input_ids.masked_fill(to_mask, self.mask_token_id)
        picks = torch.randint(
            len(self.replacement_ids), input_ids.shape, generator=self.generator
        )  # (B, T) indices into the ordinary tokens
        masked = torch.where(to_random, self.replacement_ids[picks], masked)
        return masked, labels

    def __call__(self, rows: Sequence[Any]) -> dict[str, torch.Tensor]:
        batch = self.pad(rows)
        batch["input_ids"], batch["labels"] = self.mask(
            batch["input_ids"], batch.get("attention_mask")
        )
        batch["masked_positions"] = masked_positions(batch["labels"])
        return batch

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MaskedLMCollator:
        """A collator using a seqkit tokenizer's mask, pad and special tokens."""
        return cls(
            mask_token_id=tokenizer.require_special_token_id("mask", "masked language modelling"),
            pad_token_id=tokenizer.require_special_token_id("pad", "masked language modelling"),
            vocab_size=tokenizer.vocab_size,
            special_token_ids=tokenizer.all_special_ids,
            **kwargs,
        )


# ----------------------------------------------------------------------------- masked-text

EVAL_MASK_SEED = 1234
"""Seed of the validation masks: fixed, so evaluations compare."""
DEFAULT_MAX_LENGTH = 128
"""Tokens per example when neither the recipe nor the model says otherwise."""
MASKINGS = ("dynamic", "static")
VAL_SPLITS = ("tail", "seeded")


@dataclass
class MaskedTextSection(DataSection):
    """The ``data`` section of the ``masked-text`` module."""

    max_length: int | None = None
    """Tokens per example, [CLS] and [SEP] included; default: the model's
    max_position_embeddings (128 for a new BERT)."""
    mlm_probability: float = 0.15
    """Fraction of tokens chosen as prediction targets in each batch."""
    masking: str = "dynamic"
    """dynamic: every batch masks its examples afresh (RoBERTa); static: each training example
    is masked once, from ``trainer.seed`` (BERT's original recipe, without its 10 copies), so
    the examples do not depend on how many processes draw them."""
    line_by_line: bool = False
    """Each document (each row of a table's text column, else each non-blank line) is one
    example, ``[CLS] document [SEP]`` cut to max_length and padded per batch, as a classifier
    reads its texts; otherwise the corpus is one stream cut into full max_length windows."""
    val_split: str = "tail"
    """Which examples validate. tail: the last val_fraction of the corpus (of its stream, or of
    its documents with line_by_line). seeded (with line_by_line): a seeded random val_fraction
    of the documents, drawn from trainer.seed as the labelled-text module draws its split, so
    pretraining on a classifier's file with its val_fraction and seed never reads the
    documents that classifier validates on."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.masking", self.masking, MASKINGS)
        check_choice("data.val_split", self.val_split, VAL_SPLITS)
        if self.val_split == "seeded" and not self.line_by_line:
            raise UserError(
                "data.val_split=seeded holds out whole documents: set data.line_by_line=true"
            )
        check_ranges(
            "data",
            self,
            {
                "max_length": count(3, MAX_POSITIONS),  # [CLS], one token, [SEP]
                "mlm_probability": probability(low_open=True),
            },
        )


class ChunkDataset(torch.utils.data.Dataset):
    """``[CLS] chunk [SEP]`` examples cut from a token stream, the validation ones pre-masked
    (they carry ``labels``)."""

    def __init__(self, rows: list[dict[str, torch.Tensor]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.rows[index]


class MLMCollator:
    """Masks training rows afresh (dynamic masking); pads pre-masked rows (validation, and
    training under static masking) as they are."""

    def __init__(self, masker: MaskedLMCollator) -> None:
        self.masker = masker

    def __call__(self, rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        if "labels" not in rows[0]:
            return self.masker(rows)
        batch = self.masker.pad(rows)
        labels = torch.full_like(batch["input_ids"], -100)
        for i, row in enumerate(rows):
            labels[i, : len(row["labels"])] = row["labels"]
        batch["labels"] = labels
        batch["masked_positions"] = masked_positions(labels)
        return batch


def chunk_stream(tokenizer: Any, ids: list[int], max_length: int) -> list[torch.Tensor]:
    """Non-overlapping ``[CLS] chunk [SEP]`` examples of ``max_length`` tokens (a last,
    shorter chunk is dropped)."""
    body = max_length - 2
    return [
        torch.tensor([tokenizer.cls_token_id, *ids[i : i + body], tokenizer.sep_token_id])
        for i in range(0, len(ids) - body + 1, body)
    ]


def document_examples(
    tokenizer: Any, documents: Sequence[str], max_length: int
) -> list[torch.Tensor]:
    """One ``[CLS] document [SEP]`` example per document that has tokens, cut to
    ``max_length``."""
    body = max_length - 2
    return [
        torch.tensor([tokenizer.cls_token_id, *ids[:body], tokenizer.sep_token_id])
        for ids in tokenizer.encode_batch(list(documents))
        if ids
    ]


def masked_once(
    tokenizer: Any, chunks: list[torch.Tensor], mlm_probability: float, seed: int = EVAL_MASK_SEED
) -> ChunkDataset:
    """``chunks`` masked once from ``seed`` (validation: :data:`EVAL_MASK_SEED`): the same
    positions every time they are read."""
    collator = MaskedLMCollator.for_tokenizer(
        tokenizer,
        mlm_probability=mlm_probability,
        generator=torch.Generator().manual_seed(seed),
    )
    rows = []
    for chunk in chunks:
        masked, labels = collator.mask(chunk[None])
        rows.append({"input_ids": masked[0], "labels": labels[0]})
    return ChunkDataset(rows)


def mlm_datasets(
    tokenizer: Any,
    train: list[torch.Tensor],
    val: list[torch.Tensor],
    mlm_probability: float,
    static_seed: int | None = None,
) -> tuple[ChunkDataset, ChunkDataset | None]:
    """Training examples (masked per batch by the collator, or once from ``static_seed``) and
    validation examples (masked once), from ``[CLS] … [SEP]`` id tensors."""
    eval_data = masked_once(tokenizer, val, mlm_probability) if val else None
    if static_seed is not None:
        return masked_once(tokenizer, train, mlm_probability, static_seed), eval_data
    return ChunkDataset([{"input_ids": c} for c in train]), eval_data


def stream_splits(
    tokenizer: Any, text: str, max_length: int, val_fraction: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Chunks of the stream's head (training) and of its last ``val_fraction`` (validation)."""
    ids = encode_corpus(tokenizer, text).tolist()
    body = max_length - 2
    n_val = int(len(ids) * val_fraction)
    if val_fraction > 0 and n_val < body:
        raise UserError(
            f"data.val_fraction={val_fraction} of {len(ids)} tokens is shorter than one "
            f"example ({body} tokens); use more text or a larger val_fraction"
        )
    train_ids, val_ids = (ids[: len(ids) - n_val], ids[len(ids) - n_val :]) if n_val else (ids, [])
    train = chunk_stream(tokenizer, train_ids, max_length)
    if not train:
        raise UserError(f"the corpus is shorter than one example ({body} tokens)")
    return train, chunk_stream(tokenizer, val_ids, max_length) if val_ids else []


def split_documents(
    documents: list[str], val_fraction: float, val_split: str, seed: int
) -> tuple[list[str], list[str]]:
    """``(training, validation)`` documents: the last ``val_fraction`` validate (tail), or a
    seeded random share drawn as ``labelled-text`` draws it (seeded: :func:`seeded_split`)."""
    if val_split == "seeded":
        train, val = seeded_split(len(documents), val_fraction, seed)
        return [documents[i] for i in train], [documents[i] for i in val]
    n_val = int(len(documents) * val_fraction)
    if val_fraction > 0 and n_val == 0:
        raise UserError(
            f"data.val_fraction={val_fraction} of {len(documents)} documents holds none; use "
            "more text or a larger val_fraction"
        )
    return documents[: len(documents) - n_val], documents[len(documents) - n_val :]


class MaskedText(TextCorpus):
    """The ``masked-text`` data module: a corpus as masked-LM examples for ``task: masked-lm``
    (see the module docstring)."""

    Section = MaskedTextSection

    @cached_property
    def documents(self) -> tuple[list[str], list[str]]:
        """``(training, validation)`` documents of a ``line_by_line`` corpus, read once."""
        return split_documents(
            load_documents(self.data),
            self.data.val_fraction,
            self.data.val_split,
            self.recipe.trainer.seed,
        )

    def _tokenizer_text(self) -> str | list[str]:
        """What a new tokenizer learns from: the training documents only when they are
        documents (the held-out ones stay unread), the whole corpus otherwise."""
        return self.documents[0] if self.data.line_by_line else self.text

    def tokenizer(self, init_from: Path | None) -> Any:
        special = getattr(self.builder, "special_tokens", None) or DEFAULT_SPECIAL_TOKENS
        tokenizer = recipe_tokenizer(
            self.recipe.tokenizer, init_from, self._tokenizer_text, dict(special)
        )
        needed_by = f"model.architecture {self.builder.name()}" if self.builder else "masked LM"
        for role in ("cls", "sep", "pad", "mask"):
            tokenizer.require_special_token_id(role, needed_by)
        return tokenizer

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        facts = {"vocab_size": tokenizer.vocab_size}
        if self.data.max_length is not None:
            facts["max_length"] = self.data.max_length
        return facts

    def _max_length(self, window: int, most: int | None) -> int:

        max_length = self.data.max_length or window or DEFAULT_MAX_LENGTH
        if most is not None and max_length > most:
            raise UserError(
                f"data.max_length ({max_length}) exceeds the model's max_position_embeddings "
                f"({most})"
            )
        return max_length

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        max_length = self._max_length(window, most)
        if self.data.line_by_line:
            train_documents, val_documents = self.documents
            train = document_examples(tokenizer, train_documents, max_length)
            val = document_examples(tokenizer, val_documents, max_length)
            summary = {"documents": len(train_documents) + len(val_documents)}
        else:
            train, val = stream_splits(tokenizer, self.text, max_length, self.data.val_fraction)
            summary = {"corpus characters": len(self.text)}
        train_data, eval_data = mlm_datasets(
            tokenizer,
            train,
            val,
            self.data.mlm_probability,
            self.recipe.trainer.seed if self.data.masking == "static" else None,
        )
        masker = MaskedLMCollator.for_tokenizer(
            tokenizer, mlm_probability=self.data.mlm_probability
        )
        return Prepared(
            train_data=train_data,
            eval_data=eval_data,
            collate_fn=MLMCollator(masker),
            summary={**summary, "train examples": len(train_data)},
        )

    def scoring_data(self, tokenizer: Any, window: int, most: int | None, path: Path) -> Prepared:

        max_length = self._max_length(window, most)
        data = dataclasses.replace(self.data, path=str(path))
        if self.data.line_by_line:  # the corpus loader has refused a blank file
            chunks = document_examples(tokenizer, load_documents(data), max_length)
        else:
            text = load_corpus(data)
            chunks = chunk_stream(tokenizer, encode_corpus(tokenizer, text).tolist(), max_length)
            if not chunks:
                raise UserError(
                    f"--data: {path} is shorter than one example ({max_length - 2} tokens)"
                )
        eval_data = masked_once(tokenizer, chunks, self.data.mlm_probability)
        return Prepared(
            train_data=None,
            eval_data=eval_data,
            collate_fn=MLMCollator(MaskedLMCollator.for_tokenizer(tokenizer)),
        )

    def vocabulary(self, tokenizer: Any) -> str:
        kind = "char" if isinstance(tokenizer, CharTokenizer) else "bpe"
        return f"{tokenizer.vocab_size} ({kind})"

    def card_tags(self, tokenizer: Any) -> list[str]:
        return ["fill-mask"]
