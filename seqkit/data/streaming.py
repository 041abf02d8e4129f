"""Training on a corpus read as a stream, and the ``streaming`` data module.

A corpus you do not want to pre-tokenize (:mod:`seqkit.data.token_file`) is read chunk by chunk
from its files while training runs: each file is decoded incrementally, the text is encoded up
to a place where a cut cannot change the ids (:data:`seqkit.data.bpe.SAFE_CUT`, else
:data:`SPACE_CUT`), and the ids are cut into non-overlapping blocks of ``block_size + 1``. Memory
holds one chunk and one partial block, whatever the corpus size.

The stream's position after every block is a few integers: which file of the epoch's order, the
byte offset of a safe cut in it, how many ids past that cut are already in blocks, and the ids
before the cut not yet in a block (fewer than one block). A checkpoint stores the position of
the last batch trained (:class:`seqkit.trainer.sampling.ResumableStream`); resuming re-reads the
file from that byte, encodes from there — the same ids, since the cut is safe — and skips the
ids already trained. Nothing before the cut is read again, so resuming a run 100 GB into its
corpus costs one chunk, not 100 GB. (The one exception to "the same ids": text with no line
break or lone space in ``8 × chunk_bytes`` characters is cut where the reader happens to stand,
:func:`seqkit.data.token_file.cut_point`, and a resumed reader may cut it elsewhere.)

A checkpointed reader position rather than a replayed iterator is how large-scale trainers
resume streams (``datasets.IterableDataset.state_dict``, which :class:`HubTextStream` stores;
``torchdata``'s ``StatefulDataLoader``); here it is written out for plain text files.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import math
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqkit.checks import check_path, check_range
from seqkit.data.lm import CausalLMDataset, PretokenizedCorpus, PretokenizedSection
from seqkit.data.token_file import (
    CHUNK_BYTES,
    TokenWindows,
    corpus_files,
    corpus_ids,
    file_segments,
    token_file,
)
from seqkit.data.tokenizer_folder import Tokenizer
from seqkit.errors import UserError
from seqkit.parts.base import Prepared
from seqkit.trainer.sampling import ResumableStream


def cut_blocks(
    carry: np.ndarray, ids: np.ndarray, dropped: int, width: int, where: dict[str, Any]
) -> Generator[tuple[dict[str, torch.Tensor], dict[str, Any]], None, np.ndarray]:
    """Blocks of ``width`` ids from ``carry`` followed by ``ids[dropped:]``, each with the
    stream's position after it: ``where`` (the place ``ids`` start), how many of ``ids`` are now
    in blocks (``skip``) and the ids of ``carry`` not yet in one. Returns the ids left over."""
    stream = np.concatenate([carry, ids[dropped:]])
    blocks = len(stream) // width
    rows = torch.from_numpy(stream[: blocks * width]).view(blocks, width)
    for j in range(blocks):
        used = (j + 1) * width - len(carry)  # ids of this piece now in blocks
        after = {
            **where,
            "skip": dropped + max(used, 0),
            "carry": carry[(j + 1) * width :].tolist() if used < 0 else [],
        }
        yield {"input_ids": rows[j, :-1], "labels": rows[j, 1:]}, after
    # A copy: a view would keep the whole piece's ids alive with it.
    return stream[blocks * width :].copy()


def check_position_fields(position: Any, keys: tuple[str, ...], ints: tuple[str, ...]) -> None:
    """Refuse a saved position that is not a mapping of ``keys`` (``ints`` non-negative)."""
    if (
        not isinstance(position, dict)
        or set(position) != set(keys)
        or not all(isinstance(position[k], int) and position[k] >= 0 for k in ints)
        or not isinstance(position["carry"], list)
    ):
        raise UserError(
            "the checkpoint's stream position is damaged or was edited (expected "
            f"{', '.join(keys)})"
        )


OTHER_DATA = (
    "--resume: the checkpoint's stream position belongs to other data (files, data.hub, "
    "data.val_fraction, data.block_size or tokenizer changed); restore them, or start a new run"
)


@dataclasses.dataclass(frozen=True)
class Span:
    """Bytes ``start … end - 1`` of a text file: what a stream reads of it."""

    path: Path
    start: int
    end: int


class TextStream(ResumableStream):
    """Causal-LM blocks of ``block_size + 1`` ids streamed from ``spans`` of text files, with
    their exact positions (see the module docstring).

    Every epoch reads every span once, in an order drawn from ``seed + epoch`` (the files are
    shuffled, their text is not), ``separator`` ids after each; ids left over at the end of the
    epoch (less than one block) are dropped.
    """

    POSITION_KEYS = ("corpus", "file", "byte", "skip", "carry")

    def __init__(
        self,
        spans: list[Span],
        tokenizer: Any,
        block_size: int,
        *,
        seed: int = 0,
        separator: np.ndarray | None = None,
        shuffle_files: bool = True,
        chunk_bytes: int = CHUNK_BYTES,
        max_pending_chars: int | None = None,
    ):
        super().__init__()
        if not spans:
            raise UserError("no data files to stream")
        self.spans = list(spans)
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.seed = seed
        self.separator = np.zeros(0, np.int64) if separator is None else separator.astype(np.int64)
        self.shuffle_files = shuffle_files
        self.chunk_bytes = chunk_bytes
        self.max_pending_chars = max_pending_chars
        described = [[str(s.path.resolve()), s.start, s.end] for s in self.spans]
        described.append([block_size, self.separator.tolist(), shuffle_files])
        self.key = hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]
        """What a position belongs to: the spans, the block size and the separator."""

    def order(self, epoch: int) -> list[int]:
        """The spans in the order epoch ``epoch`` reads them."""
        if not self.shuffle_files:
            return list(range(len(self.spans)))
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(len(self.spans), generator=generator).tolist()

    def examples(self, epoch: int, position: Any) -> Iterator[tuple[Any, Any]]:
        width = self.block_size + 1
        order = self.order(epoch)
        first, begin, skip, carry = 0, None, 0, np.zeros(0, np.int64)
        if position is not None:
            first, begin, skip = position["file"], position["byte"], position["skip"]
            carry = np.asarray(position["carry"], dtype=np.int64)
        for i in range(first, len(order)):
            span = self.spans[order[i]]
            start = begin if i == first and begin is not None else span.start
            segments = file_segments(
                span.path,
                self.tokenizer,
                start,
                span.end,
                chunk_bytes=self.chunk_bytes,
                max_pending_chars=self.max_pending_chars,
            )
            for offset, ids in segments:
                dropped = min(skip, len(ids))  # trained before the checkpoint
                skip -= dropped
                where = {"corpus": self.key, "file": i, "byte": offset}
                carry = yield from cut_blocks(carry, ids, dropped, width, where)
            carry = np.concatenate([carry, self.separator])

    def check_position(self, position: Any) -> None:
        if position is None:
            return
        check_position_fields(position, self.POSITION_KEYS, ("file", "byte", "skip"))
        if position["corpus"] != self.key or position["file"] >= len(self.spans):
            raise UserError(OTHER_DATA)


@dataclasses.dataclass(frozen=True)
class HubSource:
    """A split of a Hub data set (or of a local folder laid out like one) read with
    ``streaming=True``: rows come as they download, none is stored."""

    name: str
    split: str
    text_column: str = "text"
    config: str | None = None
    revision: str | None = None
    data_files: list[str] | None = None

    def open(self) -> Any:
        """A fresh ``datasets.IterableDataset`` of the rows."""
        from seqkit.data.hub import load_hub_dataset

        return load_hub_dataset(
            self.name,
            config=self.config,
            split=self.split,
            revision=self.revision,
            data_files=self.data_files,
            streaming=True,
        )

    def texts(self, rows: Any) -> Iterator[str]:
        """The text of each row; a missing column or a row that is not text is a UserError."""
        from seqkit.data.hub import describe

        for row in rows:
            text = row.get(self.text_column) if isinstance(row, dict) else None
            if not isinstance(text, str):
                where = describe(self.name, self.config, self.split)
                if isinstance(row, dict) and self.text_column not in row:
                    raise UserError(
                        f"{where} has no column {self.text_column!r} (columns: "
                        f"{', '.join(row)}); set data.text_column"
                    )
                raise UserError(
                    f"column {self.text_column!r} of {where} has a row that is not text"
                )
            yield text


class HubTextStream(ResumableStream):
    """Causal-LM blocks of a Hub data set streamed row by row (rows joined by ``separator``),
    with exact positions: the data set's own ``state_dict()`` before the row a block ends in
    (``datasets`` restarts a stream there without reading what came before), the ids of that
    row already in blocks, and the ids before it not yet in one. Every epoch reads the rows in
    the data set's order."""

    POSITION_KEYS = ("corpus", "rows", "skip", "carry")

    def __init__(
        self,
        source: HubSource,
        tokenizer: Any,
        block_size: int,
        *,
        separator: np.ndarray | None = None,
    ):
        super().__init__()
        self.source = source
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.separator = np.zeros(0, np.int64) if separator is None else separator.astype(np.int64)
        described = [dataclasses.asdict(source), block_size, self.separator.tolist()]
        self.key = hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]

    def examples(self, epoch: int, position: Any) -> Iterator[tuple[Any, Any]]:
        width = self.block_size + 1
        rows = self.source.open()
        skip, carry = 0, np.zeros(0, np.int64)
        if position is not None:
            rows.load_state_dict(position["rows"])
            skip, carry = position["skip"], np.asarray(position["carry"], dtype=np.int64)
            state = position["rows"]
        else:
            state = rows.state_dict()
        for text in self.source.texts(rows):
            ids = np.concatenate([corpus_ids(self.tokenizer, text), self.separator])
            dropped = min(skip, len(ids))
            skip -= dropped
            where = {"corpus": self.key, "rows": state}
            carry = yield from cut_blocks(carry, ids, dropped, width, where)
            state = rows.state_dict()  # = before the next row

    def check_position(self, position: Any) -> None:
        if position is None:
            return
        check_position_fields(position, self.POSITION_KEYS, ("skip",))
        if position["corpus"] != self.key or not isinstance(position["rows"], dict):
            raise UserError(OTHER_DATA)


# ----------------------------------------------------------------------------- the data module


@dataclasses.dataclass
class StreamingSection(PretokenizedSection):
    """The ``data`` section of the ``streaming`` data module: the ``pretokenized`` module's
    fields (``num_proc`` encodes ``data.eval_path`` and ``seqkit evaluate --data`` files into
    the cache), plus how the stream is read and what is held out."""

    chunk_bytes: int = CHUNK_BYTES
    """Bytes read from a file at a time."""
    eval_path: str | None = None
    """Validation text (a file, a folder of *.txt or a glob), pre-tokenized into the cache;
    when set, all of data.path trains and data.val_fraction is not used."""
    val_max_bytes: int = 1 << 22
    """The most bytes data.val_fraction (or data.hub_eval_split) holds out: validation is
    encoded in memory."""
    hub_eval_split: str | None = None
    """The split of the data.hub data set that validates (its first data.val_max_bytes)."""
    shuffle_files: bool = True
    """Read the files in a new order every epoch (drawn from trainer.seed and the epoch)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("data.chunk_bytes", self.chunk_bytes, 1, 1 << 30, integer=True)
        if self.eval_path is not None:
            check_path("data.eval_path", self.eval_path)
        if self.hub_eval_split is not None and not self.hub_eval_split.strip():
            raise UserError("data.hub_eval_split must name a split (e.g. validation)")
        check_range("data.val_max_bytes", self.val_max_bytes, 1, 1 << 34, integer=True)
        if self.stride != 1:
            raise UserError(
                "data.stride does not apply to data.module streaming (a stream is cut into "
                "non-overlapping blocks); remove it, or use data.module pretokenized"
            )


class StreamingCorpus(PretokenizedCorpus):
    """The ``streaming`` data module: text read as a stream while training runs, never
    tokenized ahead and never whole in memory; a checkpoint stores the stream's position, so
    ``--resume`` continues mid-file (or mid-data-set).

    The text is local files (``data.path``: a file, a folder of ``*.txt`` or a glob;
    :class:`TextStream`) or a Hub data set read with ``streaming=True`` (``data.hub`` and its
    ``hub_*`` fields; :class:`HubTextStream`). Validation, as in the ``text`` module, is the
    files' last ``data.val_fraction`` (by bytes here, from the start of a line, at most
    ``data.val_max_bytes``), the files of ``data.eval_path``, or, for a Hub data set, its split
    ``data.hub_eval_split`` (its first ``data.val_max_bytes``). The tokenizer is found or
    trained as the ``pretokenized`` module's (``data.tokenizer_sample_chars`` bounds what a bpe
    tokenizer is trained on).
    """

    Section = StreamingSection
    name = "streaming"

    @property
    def hub_source(self) -> HubSource | None:
        """The Hub data set streamed, when the recipe names one and no ``data.path``."""
        data = self.data
        if data.path or not data.hub:
            return None
        return HubSource(data.hub, data.hub_split, data.text_column, data.hub_config,
                         data.hub_revision, data.hub_data_files)  # fmt: skip

    @property
    def files(self) -> list[Path]:
        if not self.data.path:
            raise UserError(
                "data.module streaming reads local text files or a Hub data set: set data.path "
                "or data.hub"
            )
        return corpus_files(self.data.path)

    def _corpus_key(self) -> dict[str, Any]:
        source = self.hub_source
        return super()._corpus_key() if source is None else {"hub": dataclasses.asdict(source)}

    def _corpus_pieces(self) -> Iterator[str]:
        source = self.hub_source
        if source is None:
            return super()._corpus_pieces()
        return _joined(source.texts(source.open()))

    def prepare(self, tokenizer: Tokenizer, window: int, most: int | None) -> Prepared:
        block_size = self._block_size(window, most)
        data, source = self.data, self.hub_source
        eval_data = None
        summary: dict[str, Any] = {}
        if data.eval_path:
            eval_files = corpus_files(data.eval_path)
            ids, _ = token_file(eval_files, tokenizer, self.cache_root, data.num_proc)
            eval_data = TokenWindows(ids, 0, len(ids), block_size, stride=block_size)
            summary["validation"] = f"{data.eval_path} ({len(ids)} tokens)"
        if source is not None:
            if eval_data is None and data.hub_eval_split:
                held = dataclasses.replace(source, split=data.hub_eval_split)
                text = _first_bytes(_joined(held.texts(held.open())), data.val_max_bytes)
                eval_data = _windows(tokenizer, text, block_size)
                summary["validation"] = f"split {data.hub_eval_split} ({len(text)} characters)"
            elif eval_data is None and data.val_fraction > 0:
                raise UserError(
                    "data.val_fraction cannot hold out the end of a streamed Hub data set (its "
                    "length is unknown); set data.hub_eval_split (e.g. validation), "
                    "data.eval_path, or data.val_fraction=0"
                )
            stream: ResumableStream = HubTextStream(
                source, tokenizer, block_size, separator=_newline(tokenizer)
            )
            summary["streamed"] = f"{source.name} (split {source.split})"
            return Prepared(train_data=stream, eval_data=eval_data, summary=summary)
        files = self.files
        spans = [Span(f, 0, f.stat().st_size) for f in files]
        summary["corpus files"] = len(files)
        if eval_data is None and data.val_fraction > 0:
            spans, held_out = split_spans(spans, data.val_fraction, data.val_max_bytes)
            eval_data = _windows(tokenizer, "\n".join(map(read_span, held_out)), block_size)
            summary["validation"] = f"the last {sum(s.end - s.start for s in held_out)} bytes"
        summary["streamed bytes"] = sum(s.end - s.start for s in spans)
        stream = TextStream(
            spans,
            tokenizer,
            block_size,
            seed=self.recipe.trainer.seed,
            separator=_newline(tokenizer),
            shuffle_files=data.shuffle_files,
            chunk_bytes=data.chunk_bytes,
        )
        return Prepared(train_data=stream, eval_data=eval_data, summary=summary)


def _windows(tokenizer: Any, text: str, block_size: int) -> CausalLMDataset:
    """Held-out text as non-overlapping windows (every token scored once)."""
    ids = torch.from_numpy(corpus_ids(tokenizer, text))
    return CausalLMDataset(ids, block_size, stride=block_size)


def _joined(texts: Iterator[str]) -> Iterator[str]:
    """The texts with "\\n" between them, as the streams join rows."""
    for i, text in enumerate(texts):
        if i:
            yield "\n"
        yield text


def _first_bytes(pieces: Iterator[str], most: int) -> str:
    """The pieces joined, cut after ``most`` bytes of UTF-8 (at a line start when one is
    within them)."""
    kept: list[str] = []
    size = 0
    for piece in pieces:
        kept.append(piece)
        size += len(piece.encode("utf-8"))
        if size >= most:
            break
    text = "".join(kept).encode("utf-8")[:most].decode("utf-8", errors="ignore")
    if len(text.encode("utf-8")) >= most and "\n" in text:
        text = text[: text.rindex("\n") + 1]
    return text


def _newline(tokenizer: Any) -> np.ndarray:
    """The ids of "\\n", which join the files as :func:`seqkit.data.read_text_file` joins a
    folder's; none for a vocabulary without it (a corpus of one line)."""
    try:
        return corpus_ids(tokenizer, "\n")
    except UserError:
        return np.zeros(0, np.int64)


def split_spans(spans: list[Span], fraction: float, most: int) -> tuple[list[Span], list[Span]]:
    """``(train, held out)``: the last ``fraction`` of the spans' bytes (at most ``most``) is
    held out, from the first line start at or after that point."""
    total = sum(s.end - s.start for s in spans)
    cut = total - min(math.floor(total * fraction), most)
    seen = 0
    for i, span in enumerate(spans):
        size = span.end - span.start
        if cut < seen + size:
            local = _line_start(span.path, span.start + cut - seen, span.end)
            train = [*spans[:i], Span(span.path, span.start, local)]
            held = [Span(span.path, local, span.end), *spans[i + 1 :]]
            train = [s for s in train if s.end > s.start]
            held = [s for s in held if s.end > s.start]
            if held and train:
                return train, held
            break
        seen += size
    raise UserError(
        f"data.val_fraction {fraction} holds out no whole line of the corpus ({total} bytes); "
        "raise data.val_fraction or data.val_max_bytes, or set data.eval_path"
    )


def _line_start(path: Path, offset: int, end: int) -> int:
    """The first byte at or after ``offset`` that starts a line (``end`` if none does)."""
    if offset == 0:
        return 0
    with path.open("rb") as handle:
        handle.seek(offset - 1)
        position = offset - 1
        while position < end:
            data = handle.read(min(CHUNK_BYTES, end - position))
            found = data.find(b"\n")
            if found >= 0:
                return position + found + 1
            position += len(data)
    return end


def read_span(span: Span) -> str:
    """The text of ``span`` (a held-out slice: at most ``data.val_max_bytes``)."""
    with span.path.open("rb") as handle:
        handle.seek(span.start)
        data = handle.read(span.end - span.start)
    if span.start == 0 and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"data file {span.path} is not UTF-8 text: the byte at offset "
            f"{span.start + error.start} cannot be decoded; convert the file to UTF-8"
        ) from None
