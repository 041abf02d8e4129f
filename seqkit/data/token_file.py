"""A corpus tokenized once into a flat file of token ids, and read back window by window.

This is how the fastest small-model trainers feed a language model (nanoGPT's ``prepare.py``
writes ``train.bin``; Megatron and litgpt keep indexed binary token files): the text is encoded
once, the ids are written in the smallest unsigned integer type that holds the vocabulary
(``uint8`` for a character vocabulary, ``uint16`` for GPT-2's 50,257 tokens), and training
windows are read from the file. Memory stays flat whatever the corpus size, and a second run on
the same corpus and tokenizer finds the file in the cache and starts at once.

Reading: a window is one ``os.pread`` of ``block_size + 1`` ids at its offset. A memory map would
do the same, but every page it touches stays counted in the process's resident memory until the
map is dropped (nanoGPT re-creates its ``np.memmap`` each batch for this reason); a read leaves
the page cache to the kernel and the process's own memory flat.

Writing: the text is streamed file by file, cut into pieces only where a cut cannot change the
ids (:data:`seqkit.data.bpe.SAFE_CUT`), and the pieces are encoded by ``num_proc`` processes in
order. The file is written under a temporary name and renamed when complete, so an interrupted
run never leaves a half file in the cache.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.data.bpe import SAFE_CUT
from seqkit.errors import UserError
from seqkit.folders import cache_dir

FORMAT = 1
"""Version of the cache layout; part of every cache key."""
PIECE_CHARS = 1 << 22
"""Characters per encoded piece (about 4 MB): large enough to keep encoding vectorized, small
enough that ``num_proc`` pieces in flight stay a few tens of MB."""
_READ_BYTES = 1 << 22


def default_cache_root() -> Path:
    """Where token files are cached unless ``data.cache_dir`` says otherwise
    (:func:`seqkit.folders.cache_dir`)."""
    return cache_dir("tokens")


def smallest_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every id below ``vocab_size``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise UserError(f"a vocabulary of {vocab_size} tokens does not fit 32-bit ids")


# ----------------------------------------------------------------------------- reading text


def corpus_files(path: str | Path) -> list[Path]:
    """The text files ``data.path`` names: a file, a folder (its ``*.txt`` files, sorted), or a
    glob pattern (``corpus/*.txt``, ``shards/**/*.txt``; the matches, sorted)."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        root = Path(text).expanduser()
        anchor = Path(root.anchor) if root.is_absolute() else Path(".")
        pattern = str(root.relative_to(anchor)) if root.is_absolute() else text
        files = sorted(p for p in anchor.glob(pattern) if p.is_file())
        if not files:
            raise UserError(f"data.path {text!r} matches no file")
        return files
    folder = Path(text).expanduser()
    if folder.is_dir():
        files = sorted(p for p in folder.glob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"corpus folder {folder} has no *.txt files")
        return files
    if not folder.is_file():
        raise UserError(f"corpus file {folder} does not exist")
    return [folder]


def _decoded(path: Path) -> Iterator[str]:
    """The UTF-8 text of ``path`` in pieces, a leading byte-order mark dropped."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, first = 0, True
    try:
        with path.open("rb") as handle:
            while data := handle.read(_READ_BYTES):
                if first and data.startswith(codecs.BOM_UTF8):
                    data, offset = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
                first = False
                yield decoder.decode(data)
                offset += len(data)
            yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise UserError(
            f"corpus file {path} is not UTF-8 text near byte {offset + error.start}; convert the "
            "file to UTF-8"
        ) from None
    except OSError as error:
        raise UserError(f"cannot read corpus file {path}: {error.strerror or error}") from None


def text_pieces(files: Iterable[Path], piece_chars: int = PIECE_CHARS) -> Iterator[str]:
    """The corpus (the files joined by "\\n", as :func:`seqkit.data.read_text_file` joins a
    folder) in pieces of about ``piece_chars`` characters, cut only at safe boundaries, so the
    pieces' ids are the ids of the whole text."""
    carry = ""

    def stream() -> Iterator[str]:
        for i, path in enumerate(files):
            if i:
                yield "\n"
            yield from _decoded(path)

    for text in stream():
        carry += text
        while len(carry) > piece_chars:
            cut = SAFE_CUT.search(carry, piece_chars)
            if cut is None:
                break  # no safe cut yet: read on
            yield carry[: cut.start()]
            carry = carry[cut.start() :]
    if carry:
        yield carry


# Where else a stream may be cut without changing byte-level BPE ids, when a window has no
# newline cut (SAFE_CUT): between a non-space character and one space that precedes a non-space
# character. Every GPT-2 pre-token ending in a letter, digit or punctuation mark ends before a
# space, and " word" (one space, then the word) is one pre-token whether it starts the text or
# not; a character vocabulary may be cut anywhere outside a special token.
SPACE_CUT = re.compile(r"(?<=\S)(?= \S)")
_CUT_WINDOW = 4096  # characters at the end of the pending text searched for a cut
CHUNK_BYTES = 1 << 20
"""Bytes read from a file at a time."""


def cut_point(pending: str, max_pending_chars: int) -> int:
    """Where to cut decoded text so that encoding the two sides apart gives the ids of the
    whole: a safe place near its end, or 0 for "read more first". Text with no safe place in
    ``max_pending_chars`` characters (no line break or space over megabytes) is cut anyway,
    which may change the ids of the one pre-token it splits: memory stays bounded."""
    window = max(0, len(pending) - _CUT_WINDOW)
    for pattern in (SAFE_CUT, SPACE_CUT):
        cut = 0
        for match in pattern.finditer(pending, window):
            cut = match.start()
        if cut:
            return cut
    if len(pending) >= max_pending_chars:
        # No cut within the last window; one further back is as good, else cut here.
        for pattern in (SAFE_CUT, SPACE_CUT):
            cut = 0
            for match in pattern.finditer(pending):
                cut = match.start()
            if cut:
                return cut
        return len(pending)
    return 0


def file_segments(
    path: Path,
    tokenizer: Any,
    start: int = 0,
    end: int | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_pending_chars: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(byte offset, ids)`` of the text of ``path`` between bytes ``start`` and ``end``, one
    segment at a time: each segment's text starts at its byte offset and ends at a cut
    (:func:`cut_point`), so the segments' ids joined are the ids of the whole range. ``start``
    must be a character boundary (0, or a segment's offset); a leading byte-order mark is not
    text. A byte that is not UTF-8 is a UserError naming its offset."""
    end = path.stat().st_size if end is None else end
    max_pending_chars = max_pending_chars or 8 * chunk_bytes
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        handle = path.open("rb")
    except OSError as error:
        raise UserError(f"cannot read data file {path}: {error.strerror or error}") from None
    with handle:
        if start == 0 and handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            start = len(codecs.BOM_UTF8)
        handle.seek(start)
        pending, pending_start, position = "", start, start
        while True:
            data = handle.read(min(chunk_bytes, end - position)) if position < end else b""
            final = not data
            buffered = len(decoder.getstate()[0])
            try:
                pending += decoder.decode(data, final=final)
            except UnicodeDecodeError as error:
                offset = position - buffered + error.start
                raise UserError(
                    f"data file {path} is not UTF-8 text: the byte at offset {offset} "
                    "cannot be decoded; convert the file to UTF-8"
                ) from None
            position += len(data)
            if final:
                if pending:
                    yield pending_start, corpus_ids(tokenizer, pending)
                return
            cut = cut_point(pending, max_pending_chars)
            if cut:
                text = pending[:cut]
                yield pending_start, corpus_ids(tokenizer, text)
                pending_start += len(text.encode("utf-8"))
                pending = pending[cut:]


def corpus_ids(tokenizer: Any, text: str) -> np.ndarray:
    """The ids of corpus text as int64 (the tokenizer's vectorized path)."""
    return np.asarray(tokenizer.encode_array(text, what="corpus"), dtype=np.int64)


def files_key(files: list[Path]) -> list[list[Any]]:
    """What identifies the corpus in a cache key: each file's absolute path, size and
    modification time (as ``make`` and ``datasets`` do)."""
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


# ----------------------------------------------------------------------------- the token file


class TokenFile:
    """The ids of one tokenized corpus: ``ids.bin`` (flat, ``dtype``) and ``meta.json``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        self.dtype = np.dtype(meta["dtype"])
        self.length = int(meta["tokens"])
        self.vocab_size = int(meta["vocab_size"])
        self.path = self.folder / "ids.bin"
        self._fd: int | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_pid": None}  # a worker opens its own

    def read(self, start: int, count: int) -> np.ndarray:
        """Ids ``start … start + count - 1``."""
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        size = self.dtype.itemsize
        data = os.pread(self._fd, count * size, start * size)
        return np.frombuffer(data, dtype=self.dtype)


def _encode_piece(piece: str) -> np.ndarray:
    return _WORKER_TOKENIZER.encode_array(piece, what="corpus")


_WORKER_TOKENIZER: Any = None


def _load_worker_tokenizer(folder: str) -> None:
    global _WORKER_TOKENIZER
    from seqkit.data.tokenizer_folder import load_tokenizer

    torch.set_num_threads(1)
    _WORKER_TOKENIZER = load_tokenizer(folder)


def tokenizer_digest(tokenizer: Any) -> str:
    """SHA-256 of the tokenizer's saved files: the same files, the same ids."""
    with tempfile.TemporaryDirectory(prefix="seqkit-tokenizer-") as scratch:
        tokenizer.save_pretrained(scratch)
        digest = hashlib.sha256()
        for path in sorted(Path(scratch).iterdir()):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


def token_file(
    files: list[Path], tokenizer: Any, cache_root: Path, num_proc: int = 1
) -> tuple[TokenFile, bool]:
    """``(token file, found)``: the ids of ``files`` under ``tokenizer``, from the cache when
    this corpus and tokenizer were encoded before (``found``), else encoded now."""
    key_data = {
        "format": FORMAT,
        "files": files_key(files),
        "tokenizer": tokenizer_digest(tokenizer),
    }
    key = hashlib.sha256(json.dumps(key_data).encode()).hexdigest()[:32]
    folder = cache_root / key
    if (folder / "meta.json").is_file():
        return TokenFile(folder), True
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_root))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the cache from other users
    try:
        dtype = smallest_dtype(tokenizer.vocab_size)
        count = _write_ids(files, tokenizer, staging, dtype, num_proc)
        meta = {
            **key_data,
            "tokens": count,
            "dtype": dtype.name,
            "vocab_size": tokenizer.vocab_size,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same file first: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TokenFile(folder), False


def _write_ids(
    files: list[Path], tokenizer: Any, staging: Path, dtype: np.dtype, num_proc: int
) -> int:
    count = 0
    with (staging / "ids.bin").open("wb") as out:
        if num_proc <= 1:
            encoded: Iterable[np.ndarray] = (
                tokenizer.encode_array(piece, what="corpus") for piece in text_pieces(files)
            )
            for ids in encoded:
                out.write(ids.astype(dtype).tobytes())
                count += len(ids)
            return count
        tokenizer.save_pretrained(staging / "tokenizer")
        # spawn, not fork: the parent may already run torch's and tokenizers' thread pools.
        context = multiprocessing.get_context("spawn")
        with context.Pool(
            num_proc, initializer=_load_worker_tokenizer, initargs=(str(staging / "tokenizer"),)
        ) as pool:
            for ids in pool.imap(_encode_piece, text_pieces(files)):  # in order
                out.write(ids.astype(dtype).tobytes())
                count += len(ids)
    return count


class TokenWindows(Dataset):
    """Windows of ``block_size + 1`` ids of a :class:`TokenFile` between ``start`` and
    ``end``: item ``i`` starts at ``start + i * stride``; input and next-token labels as
    :class:`seqkit.data.CausalLMDataset` gives them."""

    def __init__(self, ids: TokenFile, start: int, end: int, block_size: int, stride: int = 1):
        if end - start < block_size + 1:
            raise UserError(
                f"the token stream has {end - start} tokens, fewer than the block_size + 1 = "
                f"{block_size + 1} one example needs"
            )
        self.ids, self.start, self.block_size, self.stride = ids, start, block_size, stride
        self._length = (end - start - block_size - 1) // stride + 1

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} windows")
        window = self.ids.read(self.start + index * self.stride, self.block_size + 1)
        window = torch.from_numpy(window.astype(np.int64))  # (block_size + 1,)
        return {"input_ids": window[:-1], "labels": window[1:]}
