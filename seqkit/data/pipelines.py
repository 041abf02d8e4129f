"""Data pipelines on Hugging Face ``datasets``: files or a Hub name -> tokenized -> batches.

    load_records      text / JSON / JSONL / CSV / Parquet file, or a Hub data set -> Dataset
    tokenize          batched ``map`` of a tokenizer over a text column (``num_proc`` workers)
    pack_blocks       causal LM: every document's ids (plus EOS) concatenated and cut into
                      fixed blocks of ``block_size + 1``, so no position is padding
    StreamingBlocks   the same blocks as an IterableDataset that reads files chunk by chunk
    split_eval        a held-out evaluation split
    ClassificationCollator
                      dynamic padding of token ids to the longest row of the batch, with labels
    masked_lm_collator
                      the masked-LM collator (seqkit.data.masking) wired to a tokenizer's roles

``datasets`` caches each ``map`` result on disk keyed by a fingerprint of the input data and
the function (tokenizer included), so re-running a recipe on an unchanged corpus and tokenizer
reuses the tokenized set. Seq2seq pairs and their collator live in ``seqkit.data.seq2seq``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from seqkit.errors import UserError

FILE_BUILDERS = {
    ".txt": "text",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
"""File suffix -> the ``datasets`` builder that reads it."""


def load_records(path: str | Path | None = None, hub: str | None = None, split: str = "train"):
    """A ``datasets.Dataset`` from a local file (by suffix) or a Hub data set's ``split``."""
    import datasets

    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"data file {path} does not exist")
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise UserError(
                f"cannot tell the format of {path}: expected one of {', '.join(FILE_BUILDERS)}"
            )
        _check_utf8(path, builder)
        try:
            with _quiet():
                records = datasets.load_dataset(builder, data_files=str(path), split="train")
        except Exception as error:  # pyarrow/pandas parse errors have many types
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise UserError(f"cannot read {path} as {builder}: {first}") from None
    elif hub:
        from seqkit.data.corpora import _hub_reachable

        hint = "use a local file with --set data.path=FILE"
        if not datasets.config.HF_HUB_OFFLINE and not _hub_reachable():
            raise UserError(f"cannot load Hub data set {hub!r}: the Hub is unreachable; {hint}")
        try:
            with _quiet():
                records = datasets.load_dataset(hub, split=split)
        except Exception:  # offline, unknown name, bad split: one fix for all
            raise UserError(f"cannot load Hub data set {hub!r} split {split!r}; {hint}") from None
    else:
        raise UserError("no data named: set data.path or data.hub")
    if len(records) == 0:
        raise UserError(f"{path or hub} holds no rows")
    return records


def _check_utf8(path: Path, builder: str) -> None:
    """Text formats must be UTF-8: report the file and byte offset before pyarrow fails vaguely."""
    if builder == "parquet":
        return
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"data file {path} is not UTF-8 text: byte 0x{data[error.start]:02x} at offset "
            f"{error.start} cannot be decoded; convert the file to UTF-8"
        ) from None
    if not data.strip():
        raise UserError(f"data file {path} is empty")


class _quiet:
    """Silence ``datasets`` progress bars and info logs inside a ``with`` block."""

    def __enter__(self) -> None:
        import datasets

        self._bars = datasets.utils.logging.is_progress_bar_enabled()
        datasets.utils.logging.disable_progress_bar()
        self._level = logging.getLogger("datasets").level
        logging.getLogger("datasets").setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        import datasets

        if self._bars:
            datasets.utils.logging.enable_progress_bar()
        logging.getLogger("datasets").setLevel(self._level)


def tokenize(
    records,
    tokenizer,
    text_column: str = "text",
    *,
    num_proc: int | None = None,
    batch_size: int = 1000,
    keep_columns: Sequence[str] = (),
):
    """``records`` with an ``input_ids`` column: the tokenizer over ``text_column`` in batches.

    ``num_proc`` > 1 splits the rows over worker processes; other columns are dropped except
    ``keep_columns`` (labels, for instance).
    """
    if text_column not in records.column_names:
        raise UserError(
            f"no column {text_column!r} (columns: {', '.join(records.column_names)}); "
            "set data.text_column"
        )
    if num_proc is not None and num_proc < 1:
        raise UserError(f"data.num_proc must be at least 1, got {num_proc}")
    for column in keep_columns:
        if column not in records.column_names:
            raise UserError(f"no column {column!r} (columns: {', '.join(records.column_names)})")
    encode_batch = tokenizer.encode_batch

    def encode(batch: dict) -> dict:
        return {"input_ids": encode_batch(batch[text_column])}

    drop = [c for c in records.column_names if c not in keep_columns]
    with _quiet():
        return records.map(
            encode, batched=True, batch_size=batch_size, num_proc=num_proc, remove_columns=drop
        )


def pack_blocks(tokenized, block_size: int, eos_token_id: int | None = None, *, num_proc=None):
    """Causal-LM blocks: documents joined (EOS between them if given) and cut into rows of
    ``block_size + 1`` ids — inputs are the first ``block_size``, next-token labels the last.
    The tail shorter than a block is dropped, so no position is ever padding.
    """
    if block_size < 1:
        raise UserError(f"block_size must be at least 1, got {block_size}")
    width = block_size + 1

    def pack(batch: dict) -> dict:
        stream: list[int] = []
        for ids in batch["input_ids"]:
            stream.extend(ids)
            if eos_token_id is not None:
                stream.append(eos_token_id)
        usable = len(stream) // width * width
        return {"block": [stream[i : i + width] for i in range(0, usable, width)]}

    with _quiet():
        blocks = tokenized.map(
            pack,
            batched=True,
            batch_size=1000,
            num_proc=num_proc,
            remove_columns=tokenized.column_names,
        )
    if len(blocks) == 0:
        raise UserError(
            f"the corpus is shorter than one block of {width} tokens; use more text or a smaller "
            "block_size"
        )
    return blocks.with_format("torch")


def causal_lm_collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Stack packed blocks into ``input_ids`` and aligned next-token ``labels``."""
    blocks = torch.stack([row["block"] for row in rows])  # (B, block_size + 1)
    return {"input_ids": blocks[:, :-1], "labels": blocks[:, 1:]}


def split_eval(records, eval_fraction: float, seed: int = 0):
    """``(train, eval)``: a seeded random ``eval_fraction`` of rows held out (eval None if 0)."""
    if not 0 <= eval_fraction < 1:
        raise UserError(f"the eval fraction must be in [0, 1), got {eval_fraction}")
    if eval_fraction == 0:
        return records, None
    if len(records) < 2:
        raise UserError("one row cannot be split into training and evaluation data")
    parts = records.train_test_split(test_size=eval_fraction, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


class ClassificationCollator:
    """Rows ``{"input_ids": [...], "label": int}`` -> a batch padded to its longest row.

    ``attention_mask`` marks real tokens; labels must lie in ``range(num_labels)``.
    """

    def __init__(self, pad_token_id: int, num_labels: int, label_column: str = "label") -> None:
        self.pad_token_id = pad_token_id
        self.num_labels = num_labels
        self.label_column = label_column

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(row["input_ids"]) for row in rows)
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            ids = torch.as_tensor(row["input_ids"], dtype=torch.long)
            input_ids[i, : len(ids)] = ids
            attention_mask[i, : len(ids)] = 1
        labels = torch.tensor([int(row[self.label_column]) for row in rows], dtype=torch.long)
        if labels.numel() and not (int(labels.min()) >= 0 and int(labels.max()) < self.num_labels):
            bad = next(int(x) for x in labels if not 0 <= int(x) < self.num_labels)
            raise UserError(f"label {bad} is outside the {self.num_labels} declared classes")
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def masked_lm_collator(tokenizer, **options):
    """The masked-LM collator of :mod:`seqkit.data.masking` wired to ``tokenizer``'s declared
    special tokens: its mask and pad ids, and every role token kept out of masking."""
    from seqkit.data.masking import MaskedLMCollator

    return MaskedLMCollator(
        mask_token_id=tokenizer.require_special_token_id("mask", "the masked-LM collator"),
        pad_token_id=tokenizer.require_special_token_id("pad", "the masked-LM collator"),
        vocab_size=tokenizer.vocab_size,
        special_token_ids=tokenizer.all_special_ids,
        **options,
    )


class StreamingBlocks(torch.utils.data.IterableDataset):
    """Causal-LM blocks read from text files as a stream: the corpus is never in memory.

    Each file is read ``chunk_bytes`` at a time and decoded incrementally (a byte that is not
    UTF-8 is reported with its file and offset); text is encoded up to the last place where a
    cut cannot change the ids (:data:`seqkit.data.bpe.SAFE_CUT`), so the ids are exactly those
    of encoding each whole file; ids are cut into rows of ``block_size + 1``. Memory stays at
    one chunk plus one partial block, whatever the corpus size.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        tokenizer,
        block_size: int,
        *,
        eos_token_id: int | None = None,
        chunk_bytes: int = 1 << 20,
    ) -> None:
        if block_size < 1:
            raise UserError(f"block_size must be at least 1, got {block_size}")
        self.paths = [Path(p) for p in paths]
        for path in self.paths:
            if not path.is_file():
                raise UserError(f"data file {path} does not exist")
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.eos_token_id = eos_token_id
        self.chunk_bytes = chunk_bytes

    def _file_ids(self, path: Path):
        """Arrays of ids of one file, chunk by chunk."""
        import codecs

        from seqkit.data.bpe import SAFE_CUT

        decoder = codecs.getincrementaldecoder("utf-8")()
        pending, consumed = "", 0
        with path.open("rb") as file:
            while True:
                data = file.read(self.chunk_bytes)
                final = not data
                buffered = len(decoder.getstate()[0])
                try:
                    pending += decoder.decode(data, final=final)
                except UnicodeDecodeError as error:
                    offset = consumed - buffered + error.start
                    raise UserError(
                        f"data file {path} is not UTF-8 text: the byte at offset {offset} "
                        "cannot be decoded; convert the file to UTF-8"
                    ) from None
                consumed += len(data)
                if consumed == len(data) and pending.startswith("\ufeff"):
                    pending = pending[1:]  # a byte-order mark is not text
                if final:
                    if pending:
                        yield self.tokenizer.encode_array(pending)
                    return
                cut = None
                for match in SAFE_CUT.finditer(pending, max(0, len(pending) - 4096)):
                    cut = match.start()
                if cut is None:  # no safe cut near the end: look further back once
                    for match in SAFE_CUT.finditer(pending):
                        cut = match.start()
                if cut:
                    yield self.tokenizer.encode_array(pending[:cut])
                    pending = pending[cut:]

    def __iter__(self):
        width = self.block_size + 1
        carry = torch.zeros(0, dtype=torch.long)
        for path in self.paths:
            for ids in self._file_ids(path):
                stream = torch.cat([carry, torch.from_numpy(ids)])
                usable = len(stream) // width * width
                for block in stream[:usable].view(-1, width):
                    yield {"input_ids": block[:-1], "labels": block[1:]}
                carry = stream[usable:]
            if self.eos_token_id is not None:
                carry = torch.cat([carry, torch.tensor([self.eos_token_id])])
