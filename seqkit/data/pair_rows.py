"""Sentence pairs of corpora of any size, kept in Arrow rows: line-aligned files read once into
cached rows, Hub data sets and local JSON lines / CSV / Parquet files with one column per
language or a ``translation`` column of dicts, and the pairs encoded once into cached rows of
token ids (:mod:`seqkit.data.arrow_rows`). A :class:`PairRows` reads like a list of pairs and an
:class:`EncodedPairs` like :class:`~seqkit.data.seq2seq.TranslationDataset`, so the
``sentence-pairs`` data module (:mod:`seqkit.data.seq2seq`) and the translation task never ask
which they hold; neither holds the corpus in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

from seqkit.data.arrow_rows import row_position
from seqkit.errors import UserError

if TYPE_CHECKING:
    from seqkit.data.seq2seq import TranslationTokenizer

Pair = tuple[str, str]


def _lines(handle: Iterable[str]) -> Iterator[str]:
    """The lines of an open text file as ``str.splitlines`` cuts a whole text, one at a time."""
    for line in handle:
        yield from line.splitlines()


def _aligned_rows(source: str, target: str) -> Iterator[dict[str, str]]:
    """Rows ``{"source", "target"}`` of two line-aligned files, read in step (the generator
    :func:`read_parallel_rows` writes into Arrow); a different number of lines, or a file that is
    not UTF-8, is the user's mistake (the messages of
    :func:`seqkit.data.seq2seq.read_parallel_files`)."""
    try:
        with open(source, encoding="utf-8") as src, open(target, encoding="utf-8") as tgt:
            source_lines, target_lines = _lines(src), _lines(tgt)
            count = 0
            for source_line in source_lines:
                target_line = next(target_lines, None)
                if target_line is None:
                    more = 1 + sum(1 for _ in source_lines)
                    raise UserError(
                        f"{source} has {count + more} lines but {target} has {count}; parallel "
                        "files must align"
                    )
                count += 1
                yield {"source": source_line, "target": target_line}
            more = sum(1 for _ in target_lines)
            if more:
                raise UserError(
                    f"{source} has {count} lines but {target} has {count + more}; parallel "
                    "files must align"
                )
    except UnicodeDecodeError as exc:
        raise UserError(f"{source} / {target}: not UTF-8 text ({exc.reason})") from None


def read_parallel_rows(source: Path, target: Path, root: Path) -> PairRows:
    """Line-aligned files as Arrow rows, cached under ``root`` by the files' path, size and
    modification time: read once, then memory-mapped (:mod:`seqkit.data.arrow_rows`)."""
    import datasets

    from seqkit.data.arrow_rows import rows_from_generator
    from seqkit.data.token_file import files_key

    for path in (source, target):
        if not path.is_file():
            raise UserError(f"{path} does not exist")
    features = datasets.Features(
        {"source": datasets.Value("string"), "target": datasets.Value("string")}
    )
    records = rows_from_generator(
        _aligned_rows,
        {"source": str(source), "target": str(target)},
        {"files": files_key([source, target])},
        features,
        root,
    )
    return PairRows(records, ("source",), ("target",))


class PairRows(Sequence[Pair]):
    """Sentence pairs held in Arrow rows (a ``datasets.Dataset``), rows ``start`` to ``stop``:
    a sequence of ``(source, target)`` like a list of pairs, without the list.

    ``source`` and ``target`` name where each side is: a column (``("de",)``), or a field of a
    struct column (``("translation", "de")``, the Hub's ``translation`` dicts). An empty cell
    reads as an empty sentence. Iterating reads the rows in batches from the Arrow files
    (:func:`seqkit.data.arrow_rows.record_batches`), so a pass over a corpus of any size holds
    one batch; indexing reads one row.
    """

    def __init__(
        self,
        records: Any,
        source: tuple[str, ...],
        target: tuple[str, ...],
        start: int = 0,
        stop: int | None = None,
    ) -> None:
        self.records, self.source, self.target = records, source, target
        self.start = start
        self.stop = len(records) if stop is None else min(stop, len(records))

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def rows(self, start: int = 0, stop: int | None = None) -> PairRows:
        """The pairs ``start`` to ``stop`` of these, as rows of the same data set."""
        stop = len(self) if stop is None else min(stop, len(self))
        return PairRows(
            self.records, self.source, self.target, self.start + start, self.start + stop
        )

    def batches(self) -> Iterator[tuple[list[str], list[str]]]:
        """``(sources, targets)`` a batch of rows at a time."""
        from seqkit.data.arrow_rows import record_batches

        for batch in record_batches(self.records, self.start, self.stop):
            yield _side(batch, self.source), _side(batch, self.target)

    def side(self, index: int) -> Iterator[str]:
        """Every source (``index`` 0) or target (1) sentence, in order."""
        for batch in self.batches():
            yield from batch[index]

    def __iter__(self) -> Iterator[Pair]:
        for sources, targets in self.batches():
            yield from zip(sources, targets, strict=True)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same pairs (a list of pairs, say)."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(
            pair == tuple(theirs) for pair, theirs in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = self.records[self.start + row_position(index, len(self), "pair")]
        return _cell(row, self.source), _cell(row, self.target)


def _cell(row: dict, path: tuple[str, ...]) -> str:
    value: Any = row
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def _side(batch: Any, path: tuple[str, ...]) -> list[str]:
    column = batch.column(path[0])
    for name in path[1:]:
        column = column.field(name)
    return ["" if value is None else value for value in column.to_pylist()]


def pair_columns(
    records: Any, source_lang: str, target_lang: str, where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Where each language is in ``records``: a column per language (``bentrevett/multi30k``),
    else the fields of a ``translation`` column of dicts (``wmt14``, ``opus_books``)."""
    names = list(records.column_names)
    if source_lang in names and target_lang in names:
        return (source_lang,), (target_lang,)
    if "translation" in names:
        fields = list(getattr(records.features["translation"], "languages", None) or [])
        fields = fields or list(records.features["translation"].keys())
        if source_lang in fields and target_lang in fields:
            return ("translation", source_lang), ("translation", target_lang)
        raise UserError(
            f"{where}: the translation column has no {source_lang!r} / {target_lang!r} (it has "
            f"{', '.join(fields)}); set data.source_lang / data.target_lang"
        )
    missing = source_lang if source_lang not in names else target_lang
    raise UserError(
        f"{where} has no column {missing!r} and no translation column (columns: "
        f"{', '.join(names)}); set data.source_lang / data.target_lang"
    )


def read_hub_pairs(
    name: str,
    split: str,
    source_lang: str,
    target_lang: str,
    *,
    config: str | None = None,
    revision: str | None = None,
    data_files: list[str] | None = None,
) -> PairRows:
    """Pairs from a Hub data set (by name, config, split, revision and files: see
    :mod:`seqkit.data.hub`), one column per language or a ``translation`` column of dicts."""
    from seqkit.data.hub import describe, load_hub_dataset

    records = load_hub_dataset(
        name, config=config, split=split, revision=revision, data_files=data_files
    )
    where = f"data.hub: {describe(name, config, split)}"
    return PairRows(records, *pair_columns(records, source_lang, target_lang, where))


def read_pair_records(path: str, source_lang: str, target_lang: str, root: Path) -> PairRows:
    """Pairs from local JSON lines, CSV or Parquet files (a file, a folder of them or a glob),
    read by ``datasets``: a column per language or a ``translation`` column of dicts."""
    from seqkit.data.pipelines import load_records

    records = load_records(path=path, cache_dir=root / "files")
    where = f"data.path: {path}"
    return PairRows(records, *pair_columns(records, source_lang, target_lang, where))


class _PairEncoder:
    """Encodes a batch of pair rows for :class:`EncodedPairs`: both sides' ids, pairs with an
    empty side dropped (counted), each side truncated (counted), and the longer side's length
    (the target with eos) for length bucketing. A class, not a closure, so that worker
    processes receive it pickled."""

    def __init__(
        self,
        tokenizer: TranslationTokenizer,
        source: tuple[str, ...],
        target: tuple[str, ...],
        max_source_length: int,
        max_target_length: int,
    ) -> None:
        self.tokenizer, self.source, self.target = tokenizer, source, target
        self.max_source_length, self.max_target_length = max_source_length, max_target_length

    def __call__(self, batch: Any) -> tuple[Any, dict[str, int]]:
        import numpy as np
        import pyarrow as pa

        from seqkit.data.arrow_rows import list_column, ragged

        src_ids, src_offsets, src_unknown = self.tokenizer.source.encode_documents(
            _side(batch, self.source)
        )
        tgt_ids, tgt_offsets, tgt_unknown = self.tokenizer.target.encode_documents(
            _side(batch, self.target)
        )
        kept = np.flatnonzero((np.diff(src_offsets) > 0) & (np.diff(tgt_offsets) > 0))
        src, src_new, src_cut = ragged(src_ids, src_offsets, kept, self.max_source_length)
        # The target keeps one place for eos.
        tgt, tgt_new, tgt_cut = ragged(tgt_ids, tgt_offsets, kept, self.max_target_length - 1)
        lengths = np.maximum(np.diff(src_new), np.diff(tgt_new) + 1)
        table = pa.table(
            {
                "source": list_column(src, src_new),
                "target": list_column(tgt, tgt_new),
                "length": pa.array(lengths.astype(np.int32)),
            }
        )
        facts = {
            "unknown": int((src_unknown + tgt_unknown)[kept].sum()),
            "truncated": int((src_cut | tgt_cut).sum()),
            "skipped": int(batch.num_rows - len(kept)),
        }
        return table, facts


class EncodedPairs(Dataset):
    """The pairs of :class:`PairRows` encoded once into cached Arrow rows, read one example at
    a time: :class:`TranslationDataset`'s examples, counts and ``pairs``, for a corpus of any
    size (:mod:`seqkit.data.arrow_rows`). The cache key is the corpus's fingerprint, a digest of
    the vocabularies' saved files and the length limits."""

    def __init__(
        self,
        pairs: PairRows,
        tokenizer: TranslationTokenizer,
        max_source_length: int,
        max_target_length: int,
        *,
        root: Path,
        num_proc: int = 1,
    ) -> None:
        from seqkit.data.arrow_rows import encode_rows, record_batches
        from seqkit.data.token_file import tokenizer_digest

        self.pairs = pairs
        """The pairs as text, all of them (BLEU scores translations of these)."""
        encoder = _PairEncoder(
            tokenizer, pairs.source, pairs.target, max_source_length, max_target_length
        )
        key: dict[str, Any] = {
            "kind": "translation-pairs",
            "sides": [list(pairs.source), list(pairs.target)],
            "tokenizer": tokenizer_digest(tokenizer),
            "lengths": [max_source_length, max_target_length],
        }
        key["rows"] = [pairs.records._fingerprint, pairs.start, pairs.stop]
        batches = record_batches(pairs.records, pairs.start, pairs.stop)
        self.rows, facts, self.found = encode_rows(batches, encoder, key, root, num_proc=num_proc)
        self.unknown = facts.get("unknown", 0)
        self.truncated = facts.get("truncated", 0)
        self.skipped = facts.get("skipped", 0)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        row = self.rows[index]
        return {"source": row["source"], "target": row["target"]}

    def lengths(self) -> Any:
        """Each example's longer side (the target with eos), as a numpy array."""
        from seqkit.data.arrow_rows import encoded_column

        return encoded_column(self.rows, "length")
