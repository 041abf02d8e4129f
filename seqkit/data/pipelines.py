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

Caching: ``datasets`` stores a loaded file as Arrow in ``cache_dir`` and each ``map`` result
beside it, under a fingerprint of the input data and of the function — the tokenizer's whole
JSON state included. A second run on an unchanged corpus and tokenizer therefore reuses the
tokenized set without encoding anything; an edited file (its size and modification time are
part of the builder's key) or another tokenizer gives another fingerprint and a fresh encode.
A ``map`` writes into a temporary file that becomes the cache file only when complete, and is
deleted when the function fails, so a bad input leaves no partial cache entry behind.

Speed: batches travel as Arrow tables (``with_format("arrow")``), the ids come back from the
Rust tokenizer as one flat array plus offsets, and packing is numpy slicing of that flat array;
no per-token Python object is made between the tokenizer and the Arrow file.

Seq2seq pairs and their collator live in ``seqkit.data.seq2seq``.
"""

from __future__ import annotations

import codecs
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


def load_records(
    path: str | Path | None = None,
    hub: str | None = None,
    split: str = "train",
    *,
    cache_dir: str | Path | None = None,
    config: str | None = None,
    revision: str | None = None,
    data_files: list[str] | None = None,
):
    """A ``datasets.Dataset`` from local files (a file, a folder or a glob of one format, by
    suffix: :func:`record_files`) or a Hub data set's ``split`` (of ``config``, at
    ``revision``, from ``data_files``: see :mod:`seqkit.data.hub`).

    ``cache_dir`` is where ``datasets`` keeps the Arrow copy and every tokenized ``map`` of it
    (default: ``HF_DATASETS_CACHE``).
    """
    import datasets

    cache = None if cache_dir is None else str(cache_dir)

    if path:
        builder, files = record_files(path)
        for file in files:
            _check_utf8(file, builder)
        try:
            with _quiet():
                records = datasets.load_dataset(
                    builder,
                    data_files=[str(file) for file in files],
                    split="train",
                    cache_dir=cache,
                )
        except Exception as error:  # pyarrow/pandas parse errors have many types
            raise UserError(f"cannot read {path} as {builder}: {_root_cause(error)}") from None
    elif hub:
        from seqkit.data.hub import load_hub_dataset

        records = load_hub_dataset(
            hub,
            config=config,
            split=split,
            revision=revision,
            data_files=data_files,
            cache_dir=cache,
        )
    else:
        raise UserError("no data named: set data.path or data.hub")
    if len(records) == 0:
        raise UserError(f"{path or hub} holds no rows")
    return records


def record_files(path: str | Path) -> tuple[str, list[Path]]:
    """``(builder, files)``: the files a local ``data.path`` names — a file, a folder (its
    files of a known suffix, sorted) or a glob pattern (``rows/*.jsonl``, ``shards/**/*.csv``:
    its matches, sorted) — and the ``datasets`` builder that reads them, one format for all."""
    from seqkit.data.token_file import corpus_files

    text = str(path)
    folder = Path(text).expanduser()
    if any(ch in text for ch in "*?["):
        files = corpus_files(text)
    elif folder.is_dir():
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in FILE_BUILDERS and not p.name.startswith(".")
        )
        if not files:
            raise UserError(f"data folder {folder} has no {', '.join(FILE_BUILDERS)} files")
    elif not folder.is_file():
        raise UserError(f"data file {folder} does not exist")
    else:
        files = [folder]
    builders = {FILE_BUILDERS.get(p.suffix.lower()) for p in files}
    if None in builders:
        odd = next(p for p in files if p.suffix.lower() not in FILE_BUILDERS)
        raise UserError(
            f"cannot tell the format of {odd}: expected one of {', '.join(FILE_BUILDERS)}"
        )
    if len(builders) > 1:
        suffixes = sorted({p.suffix.lower() for p in files})
        raise UserError(
            f"data.path {text} holds files of several formats ({', '.join(suffixes)}); name "
            "files of one format (a glob such as *.jsonl)"
        )
    return builders.pop(), files


def names_records(path: str | Path) -> bool:
    """Whether a local ``data.path`` names JSON, CSV or Parquet rows — a file of one of those
    suffixes, or a folder or glob of them — rather than text (``.txt``, ``.tsv``, parallel
    ``train.de`` files)."""
    text = str(path)
    suffix = Path(text).suffix.lower()
    if suffix in FILE_BUILDERS and not any(ch in text for ch in "*?["):
        return suffix != ".txt"
    if not (any(ch in text for ch in "*?[") or Path(text).expanduser().is_dir()):
        return False
    try:
        _, files = record_files(path)
    except UserError as error:
        # Files of several formats are records the user mixed up; no files at all, or files
        # of no known format, are for the text readers to report.
        return "several formats" in str(error)
    return any(p.suffix.lower() != ".txt" for p in files)


def _root_cause(error: BaseException) -> str:
    """The first line of the innermost error: ``datasets`` wraps a parser's precise message
    ("EOF inside string starting at row 1") in a generic one."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_utf8(path: Path, builder: str, chunk_bytes: int = 1 << 22) -> None:
    """Text formats must be UTF-8: report the file and byte offset before pyarrow fails vaguely.

    Read ``chunk_bytes`` at a time through an incremental decoder, so checking a corpus of any
    size holds one chunk in memory, not the file.
    """
    if builder == "parquet":
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed, has_text = 0, False
    with path.open("rb") as file:
        while True:
            data = file.read(chunk_bytes)
            # Bytes of a character cut by the previous read wait in the decoder.
            buffered = decoder.getstate()[0]
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as error:
                bad = (buffered + data)[error.start]
                raise UserError(
                    f"data file {path} is not UTF-8 text: byte 0x{bad:02x} at offset "
                    f"{consumed - len(buffered) + error.start} cannot be decoded; convert the "
                    "file to UTF-8"
                ) from None
            if not data:
                break
            has_text = has_text or bool(data.strip())
            consumed += len(data)
    if not has_text:
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
    batch_size: int = 10_000,
    keep_columns: Sequence[str] = (),
):
    """``records`` with an ``input_ids`` column: the tokenizer over ``text_column`` in batches.

    ``num_proc`` > 1 splits the rows over worker processes; other columns are dropped except
    ``keep_columns`` (labels, for instance). The result is cached (see the module docstring).
    ``batch_size`` is ten times ``datasets``' default: each batch is one ``encode_batch`` call,
    which spreads its rows over every core, and fewer calls leave less per-batch overhead: on
    tiny Shakespeare's 40,000 short lines, tokenize + pack took 889 ms with batches of 10,000
    and 916 ms with batches of 1,000 (medians of 15, 2 cores).
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
    # Only the text column goes to the tokenizer; Python strings are what the Rust core takes.
    encode = _Encode(tokenizer, text_column, list(keep_columns))
    drop = [c for c in records.column_names if c not in keep_columns]
    return _map_batches(records, encode, batch_size, num_proc, drop).with_format(None)


def _map_batches(records, function, batch_size: int, num_proc: int | None, remove: list[str]):
    """``records.map`` of a batched ``function`` that reads and returns Arrow batches, with
    ``num_proc`` workers, dropping the columns ``remove``; quiet, and cached on disk only beside
    a data set that has files (:func:`_nothing_to_cache_beside`)."""
    with _quiet():
        return records.with_format("arrow").map(
            function,
            batched=True,
            batch_size=batch_size,
            num_proc=num_proc,
            remove_columns=remove,
            keep_in_memory=_nothing_to_cache_beside(records),
        )


def _nothing_to_cache_beside(records) -> bool:
    """True for a data set that lives only in memory (built from Python objects, or the result
    of an in-memory map): ``datasets`` would write the result to a temporary file that nothing
    ever reads again, which costs a third of the tokenize time on tiny Shakespeare. A data set
    read from files keeps its results in the cache beside them, to be reused."""
    return not records.cache_files


class _Encode:
    """The ``map`` function of :func:`tokenize`: an Arrow batch -> ``input_ids`` as an Arrow
    list column built from one flat id array and its offsets.

    A class rather than a closure so that ``datasets`` fingerprints exactly what decides the
    output (the tokenizer and the column names) and nothing of the caller's frame.
    """

    def __init__(self, tokenizer, text_column: str, keep_columns: list[str]) -> None:
        self.tokenizer = tokenizer
        self.text_column = text_column
        self.keep_columns = keep_columns

    def __call__(self, batch):
        import pyarrow as pa

        texts = batch.column(self.text_column).to_pylist()
        if any(text is None for text in texts):
            row = texts.index(None)
            raise UserError(f"row {row} of the batch has no {self.text_column!r} (an empty cell)")
        ids, offsets = _encode_flat(self.tokenizer, texts)
        columns = {"input_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids))}
        columns.update({name: batch.column(name) for name in self.keep_columns})
        return pa.table(columns)


def _encode_flat(tokenizer, texts: list[str]):
    """``(ids, offsets)``: every text's ids end to end (int64) and where each text starts
    (int32, one more entry than texts), the layout of an Arrow list column."""
    import numpy as np

    ids, offsets = tokenizer.encode_documents(texts)
    if offsets[-1] > np.iinfo(np.int32).max:
        raise UserError("one tokenize batch holds over 2**31 tokens; lower the batch size")
    return ids, offsets.astype(np.int32)


def pack_blocks(
    tokenized,
    block_size: int,
    eos_token_id: int | None = None,
    *,
    num_proc=None,
    batch_size: int = 10_000,
):
    """Causal-LM blocks: documents joined (EOS between them if given) and cut into rows of
    ``block_size + 1`` ids — inputs are the first ``block_size``, next-token labels the last.

    Packing works on ``batch_size`` documents at a time; the tail of each batch shorter than a
    block is dropped (at most ``block_size`` tokens per batch), so no position is ever padding.
    """
    if block_size < 1:
        raise UserError(f"block_size must be at least 1, got {block_size}")
    if "input_ids" not in tokenized.column_names:
        raise UserError("pack_blocks needs an input_ids column: tokenize the records first")
    pack = _Pack(block_size + 1, eos_token_id)
    blocks = _map_batches(tokenized, pack, batch_size, num_proc, tokenized.column_names)
    if len(blocks) == 0:
        raise UserError(
            f"the corpus is shorter than one block of {block_size + 1} tokens; use more text or "
            "a smaller block_size"
        )
    return blocks.with_format("torch")


class _Pack:
    """The ``map`` function of :func:`pack_blocks`: a batch of id lists -> fixed-width blocks,
    by slicing the batch's flat id array (an EOS is written after every document)."""

    def __init__(self, width: int, eos_token_id: int | None) -> None:
        self.width = width
        self.eos_token_id = eos_token_id

    def __call__(self, batch):
        import numpy as np
        import pyarrow as pa

        column = batch.column("input_ids").combine_chunks()
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if self.eos_token_id is not None:
            # The ids of document d are flat[offsets[d]:offsets[d + 1]]; its EOS goes after them.
            offsets = column.offsets.to_numpy()
            ends = offsets[1:] - offsets[0]
            flat = np.insert(flat, ends, self.eos_token_id)
        usable = len(flat) // self.width * self.width
        blocks = pa.FixedSizeListArray.from_arrays(pa.array(flat[:usable]), self.width)
        return pa.table({"block": blocks})


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

    return MaskedLMCollator.for_tokenizer(tokenizer, **options)


class StreamingBlocks(torch.utils.data.IterableDataset):
    """Causal-LM blocks read from text files as a stream: the corpus is never in memory.

    Each file is read ``chunk_bytes`` at a time and decoded incrementally (a byte that is not
    UTF-8 is reported with its file and offset); the decoded text is encoded up to the last
    place near its end where a cut cannot change the ids (after a lone newline,
    :data:`seqkit.data.bpe.SAFE_CUT`, else before a lone space,
    :data:`seqkit.data.token_file.SPACE_CUT`), so the ids
    are exactly those of encoding each whole file; ids are cut into rows of ``block_size + 1``.
    Text with neither in ``max_pending_chars`` characters (no line break or space over
    megabytes) is cut there anyway, which may change the ids of the one pre-token it splits:
    memory stays bounded by one chunk, ``max_pending_chars`` and one partial block, whatever the
    corpus size. Under a ``DataLoader`` with several workers, each worker streams its own share
    of the files.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        tokenizer,
        block_size: int,
        *,
        eos_token_id: int | None = None,
        chunk_bytes: int = 1 << 20,
        max_pending_chars: int | None = None,
    ) -> None:
        if block_size < 1:
            raise UserError(f"block_size must be at least 1, got {block_size}")
        if chunk_bytes < 1:
            raise UserError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise UserError("no data files to stream")
        for path in self.paths:
            if not path.is_file():
                raise UserError(f"data file {path} does not exist")
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.eos_token_id = eos_token_id
        self.chunk_bytes = chunk_bytes
        self.max_pending_chars = max_pending_chars or 8 * chunk_bytes

    def _file_ids(self, path: Path):
        """Arrays of ids of one file, chunk by chunk."""
        from seqkit.data.token_file import file_segments

        for _, ids in file_segments(
            path,
            self.tokenizer,
            chunk_bytes=self.chunk_bytes,
            max_pending_chars=self.max_pending_chars,
        ):
            yield ids

    def _my_paths(self) -> list[Path]:
        """The files this process streams: all, or a DataLoader worker's share of them."""
        worker = torch.utils.data.get_worker_info()
        if worker is None:
            return self.paths
        return self.paths[worker.id :: worker.num_workers]

    def __iter__(self):
        width = self.block_size + 1
        carry = torch.zeros(0, dtype=torch.long)
        for path in self._my_paths():
            for ids in self._file_ids(path):
                stream = torch.cat([carry, torch.from_numpy(ids)])
                usable = len(stream) // width * width
                for block in stream[:usable].view(-1, width):
                    yield {"input_ids": block[:-1], "labels": block[1:]}
                # A copy: a view would keep the whole chunk's ids alive with it.
                carry = stream[usable:].clone()
            if self.eos_token_id is not None:
                carry = torch.cat([carry, torch.tensor([self.eos_token_id])])
