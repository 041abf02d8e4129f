"""Corpora of rows — sentence pairs, labelled texts — as Arrow files: written once, encoded once,
read row by row, so a corpus larger than memory trains with flat memory.

A language model's corpus is one token stream (:mod:`seqkit.data.token_file`); a translation or
classification corpus is rows that stay apart (a pair, a text and its label). Here they are kept
in Arrow, the columnar format of Hugging Face ``datasets`` (Lhoest et al. 2021, "Datasets: A
Community Library for Natural Language Processing"):

- local text files become an Arrow file through ``datasets.Dataset.from_generator``
  (:func:`rows_from_generator`), cached under a fingerprint of the files (absolute path, size and
  modification time, as the token files are keyed) and of the reader's settings; a Hub data set
  already is one;
- :func:`encode_rows` turns every row into token ids, batch by batch (``num_proc`` worker
  processes, in order), into an Arrow file cached under the corpus's ``datasets`` fingerprint and
  a digest of the tokenizer's saved files, so a second run on the same corpus and tokenizer
  starts from the cache;
- training reads examples at random through ``datasets``' memory map.

Passes over a whole corpus (training a tokenizer, finding the classes, encoding) read its Arrow
files as a stream of record batches with ordinary reads (:func:`record_batches`), not through the
memory map: every page a map touches stays counted in the process's resident memory until the
map is dropped, while a read leaves the pages to the kernel's cache (the reason the token files
are read with ``pread``).

Files are written under a temporary name and renamed when complete, so an interrupted run never
leaves a half-written cache entry.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.folders import cache_dir

FORMAT = 1
"""Version of the cache layout; part of every cache key."""
BATCH_ROWS = 10_000
"""Rows encoded per batch: large enough for the Rust tokenizers' batch encoding to pay, small
enough that ``num_proc`` batches in flight stay a few megabytes."""


def digest(data: Any) -> str:
    """A short, stable hex digest of JSON-able ``data`` (cache keys)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def row_position(index: int, length: int, what: str) -> int:
    """``index`` into ``length`` rows as a position 0 … length - 1 (a negative index counts from
    the end, as a list's does); an ``IndexError`` naming ``what`` (``"text"``, ``"pair"``)
    outside them."""
    position = index + length if index < 0 else index
    if not 0 <= position < length:
        raise IndexError(f"{what} {index} out of range for {length} {what}s")
    return position


def rows_cache_root(configured: str | None) -> Path:
    """Where row corpora and their encodings are cached: ``data.cache_dir`` when the recipe
    sets it, else seqkit's cache (:func:`seqkit.folders.cache_dir`, kind ``rows``)."""
    return Path(configured).expanduser() if configured else cache_dir("rows")


def user_error_in(error: BaseException) -> UserError | None:
    """The UserError behind ``error``: ``datasets`` wraps what a generator raises in a
    ``DatasetGenerationError``, and the user must see the original line."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def rows_from_generator(
    generator: Callable[..., Iterator[dict]],
    gen_kwargs: dict[str, Any],
    identity: dict[str, Any],
    features: Any,
    root: Path,
) -> Any:
    """``datasets.Dataset.from_generator`` of ``generator(**gen_kwargs)``, cached under
    ``root/text`` by ``identity`` (what decides the rows: the files' keys and the reader's
    settings). A UserError the generator raises comes out as itself, and leaves no cache."""
    import datasets

    from seqkit.data.pipelines import _quiet

    fingerprint = digest({"format": FORMAT, "reader": generator.__name__, **identity})
    try:
        with _quiet():
            return datasets.Dataset.from_generator(
                generator,
                features=features,
                gen_kwargs=gen_kwargs,
                cache_dir=str(root / "text"),
                fingerprint=fingerprint,
            )
    except Exception as error:  # datasets wraps the generator's error
        user = user_error_in(error)
        if user is not None:
            raise UserError(str(user)) from None
        raise


def record_batches(records: Any, start: int = 0, stop: int | None = None) -> Iterator[Any]:
    """Rows ``start`` to ``stop`` (default: all) of a ``datasets.Dataset`` as ``pyarrow`` record
    batches, in storage order, read from its Arrow files with ordinary reads (see the module
    docstring). A data set that is not plainly its files (a selection, or in memory) is read
    through ``datasets``' own batches instead."""
    import pyarrow as pa

    stop = len(records) if stop is None else min(stop, len(records))
    if getattr(records, "_indices", None) is None and records.cache_files:
        at = 0  # the index of the batch's first row
        for entry in records.cache_files:
            with pa.OSFile(entry["filename"]) as handle:
                for batch in pa.ipc.open_stream(handle):
                    if at >= stop:
                        return
                    first, last = max(start - at, 0), min(stop - at, batch.num_rows)
                    at += batch.num_rows
                    if first < last:
                        yield batch.slice(first, last - first)
        return
    table_rows = records.with_format("arrow")
    for first in range(start, stop, BATCH_ROWS):
        yield from table_rows[first : min(first + BATCH_ROWS, stop)].to_batches()


def column_values(
    records: Any, column: str, start: int = 0, stop: int | None = None
) -> Iterator[Any]:
    """The values of one column, row by row in storage order (see :func:`record_batches`)."""
    for batch in record_batches(records, start, stop):
        yield from batch.column(column).to_pylist()


# ----------------------------------------------------------------------------- encoding

_WORKER_ENCODER: Any = None


def _start_worker(encoder: Any) -> None:
    global _WORKER_ENCODER
    import torch

    torch.set_num_threads(1)
    _WORKER_ENCODER = encoder


def _encode_in_worker(batch: Any) -> Any:
    return _WORKER_ENCODER(batch)


def encode_rows(
    batches: Iterable[Any],
    encoder: Callable[[Any], Any],
    key: dict[str, Any],
    root: Path,
    *,
    num_proc: int = 1,
) -> tuple[Any, dict[str, Any], bool]:
    """``(encoded rows, facts, found)``: ``encoder`` (a picklable callable: a record batch ->
    ``(pyarrow table, facts of the batch)``, facts being counts to sum) over ``batches`` (from
    :func:`record_batches`), in order, by ``num_proc`` processes. The result is a memory-mapped
    ``datasets.Dataset`` cached in ``root/encoded`` under ``key``, which must name everything
    the rows depend on: the corpus (its ``datasets`` fingerprint and the rows taken), the
    tokenizer's digest and every setting the encoder reads. ``found`` says it came from the
    cache, where ``batches`` is not read at all."""
    import pyarrow as pa

    folder = root / "encoded" / digest({"format": FORMAT, **key})
    if (folder / "meta.json").is_file():
        return _load_encoded(folder), _read_meta(folder)["facts"], True
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        facts: dict[str, Any] = {}
        writer = None
        with _batches_encoded(encoder, iter(batches), num_proc) as encoded:
            for table, batch_facts in encoded:
                if writer is None:
                    writer = pa.ipc.new_stream(str(staging / "rows.arrow"), table.schema)
                writer.write_table(table)
                for name, value in batch_facts.items():
                    facts[name] = facts.get(name, 0) + value
        if writer is None:
            raise UserError("the corpus holds no rows")
        writer.close()
        meta = {"key": key, "facts": facts}
        (staging / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same entry first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _load_encoded(folder), facts, False


class _batches_encoded:
    """``encoder`` over ``batches`` in order: in this process, or in ``num_proc`` workers."""

    def __init__(self, encoder: Any, batches: Iterator[Any], num_proc: int) -> None:
        self.encoder, self.batches, self.num_proc = encoder, batches, num_proc
        self.pool = None

    def __enter__(self) -> Iterator[Any]:
        if self.num_proc <= 1:
            return (self.encoder(batch) for batch in self.batches)
        # spawn, not fork: the parent may already run torch's and tokenizers' thread pools.
        context = multiprocessing.get_context("spawn")
        self.pool = context.Pool(self.num_proc, initializer=_start_worker, initargs=(self.encoder,))
        return self.pool.imap(_encode_in_worker, self.batches)

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "meta.json").read_text(encoding="utf-8"))


def _load_encoded(folder: Path) -> Any:
    import datasets

    return datasets.Dataset.from_file(str(folder / "rows.arrow"))


def encoded_column(records: Any, column: str) -> Any:
    """One numeric column of rows as a numpy array (read in batches, not mapped)."""
    import numpy as np

    # A copy: a zero-copy view would keep each batch's whole message body (every column of
    # it) alive, and so the whole file in memory.
    parts = [
        np.array(batch.column(column).to_numpy(zero_copy_only=False), copy=True)
        for batch in record_batches(records)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def ragged(ids: Any, offsets: Any, rows: Any, most: int) -> tuple[Any, Any, Any]:
    """``(values, offsets, cut)``: the rows ``rows`` (indices) of the ragged array ``ids`` /
    ``offsets`` (row ``i`` is ``ids[offsets[i]:offsets[i + 1]]``), each cut to its first
    ``most`` values, as one flat array and its offsets (an Arrow list column's layout), and a
    boolean per kept row saying it was longer."""
    import numpy as np

    lengths = (offsets[1:] - offsets[:-1])[rows]
    kept = np.minimum(lengths, most)
    new_offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=new_offsets[1:])
    # Index of each kept value in ``ids``: its row's start plus its place in the row.
    shift = np.repeat(offsets[:-1][rows] - new_offsets[:-1], kept)
    values = ids[np.arange(new_offsets[-1]) + shift]
    return values, new_offsets, lengths > most


def list_column(values: Any, offsets: Any) -> Any:
    """An Arrow ``list<int32>`` column from a flat id array and its offsets."""
    import numpy as np
    import pyarrow as pa

    if offsets[-1] > np.iinfo(np.int32).max:
        raise UserError("one encoding batch holds over 2**31 tokens; the rows are too long")
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), pa.array(values.astype(np.int32))
    )
