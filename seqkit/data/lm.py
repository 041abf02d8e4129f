"""Causal language-modeling examples cut from one token stream, and the ``text`` data module.

The recipe follows nanoGPT's ``shakespeare_char``: the whole corpus becomes one stream of ids,
the last tenth is held out for validation, and every example is a window of ``block_size``
tokens whose target is the same window shifted by one token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from seqkit.data.corpora import load_corpus
from seqkit.data.token_file import (
    TokenWindows,
    corpus_files,
    default_cache_root,
    files_key,
    text_pieces,
    token_file,
)
from seqkit.data.tokenization import CharTokenizer
from seqkit.data.tokenizer_folder import (
    Tokenizer,
    load_tokenizer,
    recipe_tokenizer,
    train_tokenizer,
)
from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection


class _Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


def encode_corpus(tokenizer: _Encoder, text: str) -> torch.Tensor:
    """The ids of ``text`` as a 1-D int64 tensor."""
    if hasattr(tokenizer, "encode_array"):
        # Vectorized (CharTokenizer) or parallel (BPETokenizer): torch.tensor() on a list of a
        # million Python ints alone takes ~0.2 s.
        return torch.from_numpy(tokenizer.encode_array(text, what="corpus"))
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def split_tail(
    ids: torch.Tensor, val_fraction: float, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_ids, val_ids)``: the last ``val_fraction`` of the stream is validation.

    Both are views of ``ids``. Each non-empty split must hold at least ``block_size + 1``
    tokens (one input window plus its shifted target); ``val_fraction == 0`` gives an empty
    validation split.
    """
    if ids.dim() != 1:
        raise ValueError(f"expected a 1-D token stream, got shape {tuple(ids.shape)}")
    n_train = split_point(len(ids), val_fraction, block_size)
    return ids[:n_train], ids[n_train:]


def split_point(total: int, val_fraction: float, block_size: int) -> int:
    """How many of ``total`` tokens train when the last ``val_fraction`` is validation; each
    non-empty split must hold at least ``block_size + 1`` tokens."""
    if not 0 <= val_fraction < 1:
        raise UserError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    # nanoGPT's prepare.py keeps `int(n * 0.9)` training tokens; rounding to 6 decimals first
    # keeps float noise from costing a token (1 - 0.9 is 0.09999999999999998).
    n_train = math.floor(round(total * (1 - val_fraction), 6))
    needed = block_size + 1
    if n_train < needed:
        raise UserError(
            f"the training split has {n_train} tokens (of {total}), fewer than the "
            f"block_size + 1 = {needed} one example needs; use a larger corpus or a smaller "
            "block_size"
        )
    if val_fraction > 0 and total - n_train < needed:
        raise UserError(
            f"the validation split (data.val_fraction={val_fraction}) has {total - n_train} "
            f"tokens (of {total}), fewer than the block_size + 1 = {needed} one example needs; "
            "raise data.val_fraction, use a larger corpus, or a smaller block_size"
        )
    return n_train


class CausalLMDataset(Dataset):
    """Windows of a token stream: item ``i`` starts at token ``i * stride``.

    ``stride=1`` gives every window (the set nanoGPT's random offsets sample from);
    ``stride=block_size`` gives packed, non-overlapping blocks, so evaluation scores every
    token once (the last partial block is dropped). Items are views of the stream; the default
    collate function stacks them into ``(batch, block_size)`` tensors.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, stride: int = 1) -> None:
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D token stream, got shape {tuple(ids.shape)}")
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"token ids must be integers, got {ids.dtype}")
        if block_size < 1:
            raise UserError(f"block_size must be at least 1, got {block_size}")
        if stride < 1:
            raise UserError(f"data.stride must be at least 1, got {stride}")
        if len(ids) < block_size + 1:
            raise UserError(
                f"the token stream has {len(ids)} tokens, fewer than the block_size + 1 = "
                f"{block_size + 1} one example needs"
            )
        # Embedding layers want int64; convert once here rather than per batch.
        self.ids = ids.long()
        self.block_size = block_size
        self.stride = stride
        self._length = (len(ids) - block_size - 1) // stride + 1

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} windows")
        start = index * self.stride
        window = self.ids[start : start + self.block_size + 1]  # (block_size + 1,)
        return {"input_ids": window[:-1], "labels": window[1:]}  # labels: next-token targets


class TextCorpus(DataModule):
    """The ``text`` data module: a corpus as one token stream, cut into windows.

    The corpus is ``data.path``, ``data.hub`` or ``data.embedded`` (:func:`load_corpus`); the
    tokenizer is the ``init_from`` model's own, a saved one (``tokenizer.path``), or one trained
    on the corpus (``tokenizer.kind``: char, or bpe with ``tokenizer.vocab_size`` tokens). The
    last ``data.val_fraction`` of the stream is validation, cut into non-overlapping windows so
    that every validation token is scored once.
    """

    load_tokenizer = staticmethod(load_tokenizer)

    @cached_property
    def text(self) -> str:
        """The corpus, read once."""
        return load_corpus(self.data)

    def tokenizer(self, init_from: Path | None) -> Tokenizer:
        return recipe_tokenizer(self.recipe.tokenizer, init_from, lambda: self.text)

    def facts(self, tokenizer: Tokenizer) -> dict[str, Any]:
        return {"vocab_size": tokenizer.vocab_size}

    def check_sample(self, tokenizer: Tokenizer) -> None:
        tokenizer.encode(self.recipe.sample.prompt, what="sample.prompt")

    def _block_size(self, window: int, most: int | None) -> int:
        block_size = self.data.block_size or window
        if most is not None and block_size > most:
            raise UserError(f"data.block_size ({block_size}) exceeds the model's context ({most})")
        return block_size

    def prepare(self, tokenizer: Tokenizer, window: int, most: int | None) -> Prepared:
        block_size = self._block_size(window, most)
        ids = encode_corpus(tokenizer, self.text)
        if self.data.val_fraction > 0:
            train_ids, val_ids = split_tail(ids, self.data.val_fraction, block_size)
            eval_data = CausalLMDataset(val_ids, block_size, stride=block_size)
        else:
            train_ids, eval_data = ids, None
        return Prepared(
            train_data=CausalLMDataset(train_ids, block_size, stride=self.data.stride),
            eval_data=eval_data,
            summary={"corpus characters": len(self.text), "train tokens": len(train_ids)},
        )

    def scoring_data(
        self, tokenizer: Tokenizer, window: int, most: int | None, path: Path
    ) -> Prepared:
        block_size = self._block_size(window, most)
        text = load_corpus(dataclasses.replace(self.data, path=str(path)))
        windows = CausalLMDataset(encode_corpus(tokenizer, text), block_size, stride=block_size)
        return Prepared(train_data=None, eval_data=windows)

    def vocabulary(self, tokenizer: Tokenizer) -> str:
        return f"{tokenizer.vocab_size} ({_kind(tokenizer)})"

    def card_tags(self, tokenizer: Tokenizer) -> list[str]:
        return ["character-level" if _kind(tokenizer) == "char" else "byte-level-bpe"]


def _kind(tokenizer: Tokenizer) -> str:
    return "char" if isinstance(tokenizer, CharTokenizer) else "bpe"


@dataclasses.dataclass
class PretokenizedSection(DataSection):
    """The ``data`` section of the ``pretokenized`` data module: the text module's fields
    (``data.path`` may also be a glob), plus where and how the token file is made."""

    cache_dir: str | None = None
    """Folder of cached token files and tokenizers (default: $SEQKIT_CACHE/tokens, else
    ~/.cache/seqkit/tokens)."""
    num_proc: int = 1
    """Processes that encode the corpus the first time it is read."""
    tokenizer_sample_chars: int | None = None
    """Train a bpe tokenizer on the corpus's first N characters only (default: all of it). A
    char tokenizer always reads all of it: it must see every character."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_encoding_settings()


class PretokenizedCorpus(TextCorpus):
    """The ``pretokenized`` data module: a text corpus of any size, encoded once into a cached
    token file (:mod:`seqkit.data.token_file`) and read window by window.

    Same windows, split and tokenizer settings as the ``text`` module, so the two give the same
    model; this one keeps memory flat however large ``data.path`` is, and a second run on the
    same files and tokenizer finds both the tokenizer and the ids in the cache.
    """

    Section = PretokenizedSection
    name = "pretokenized"
    """The module's name in messages."""

    @property
    def files(self) -> list[Path]:
        if not self.data.path:
            raise UserError(f"data.module {self.name} reads local text files: set data.path")
        return corpus_files(self.data.path)

    @property
    def cache_root(self) -> Path:
        return (
            Path(self.data.cache_dir).expanduser() if self.data.cache_dir else default_cache_root()
        )

    @property
    def text(self) -> str:
        raise UserError(f"data.module {self.name} never reads the whole corpus into memory")

    def tokenizer(self, init_from: Path | None) -> Tokenizer:
        settings = self.recipe.tokenizer
        if init_from is not None or settings.path:
            return super().tokenizer(init_from)
        if settings.kind == "bpe" and settings.vocab_size is None:
            raise UserError("tokenizer.kind bpe needs tokenizer.vocab_size (e.g. 1024)")
        limit = self.data.tokenizer_sample_chars if settings.kind == "bpe" else None
        key = {**self._corpus_key(), "kind": settings.kind,
               "vocab_size": settings.vocab_size, "sample_chars": limit}  # fmt: skip
        folder = self.cache_root / "tokenizers" / _digest(key)
        if (folder / "tokenizer.json").is_file():
            return load_tokenizer(folder)
        tokenizer = train_tokenizer(
            settings.kind,
            _first_chars(self._corpus_pieces(), limit),
            vocab_size=settings.vocab_size,
        )
        staging = folder.with_name(f".{folder.name}.{os.getpid()}")
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, folder)
        except OSError:  # another run cached the same tokenizer first
            shutil.rmtree(staging, ignore_errors=True)
        return tokenizer

    def _corpus_key(self) -> dict[str, Any]:
        """What identifies the corpus in the tokenizer cache's key."""
        return {"files": files_key(self.files)}

    def _corpus_pieces(self) -> Iterator[str]:
        """The corpus's text, piece by piece, for training a tokenizer on it."""
        return text_pieces(self.files)

    def prepare(self, tokenizer: Tokenizer, window: int, most: int | None) -> Prepared:
        block_size = self._block_size(window, most)
        ids, found = token_file(self.files, tokenizer, self.cache_root, self.data.num_proc)
        n_train = split_point(len(ids), self.data.val_fraction, block_size)
        eval_data = None
        if self.data.val_fraction > 0:
            eval_data = TokenWindows(ids, n_train, len(ids), block_size, stride=block_size)
        return Prepared(
            train_data=TokenWindows(ids, 0, n_train, block_size, stride=self.data.stride),
            eval_data=eval_data,
            summary={
                "corpus files": len(self.files),
                "token file": f"{ids.path} ({'cached' if found else 'written'}, {ids.dtype})",
                "train tokens": n_train,
            },
        )

    def scoring_data(
        self, tokenizer: Tokenizer, window: int, most: int | None, path: Path
    ) -> Prepared:
        block_size = self._block_size(window, most)
        ids, _ = token_file(corpus_files(path), tokenizer, self.cache_root, self.data.num_proc)
        windows = TokenWindows(ids, 0, len(ids), block_size, stride=block_size)
        return Prepared(train_data=None, eval_data=windows)


def _first_chars(pieces: Iterator[str], limit: int | None) -> Iterator[str]:
    """The pieces up to ``limit`` characters in all (all of them when None)."""
    seen = 0
    for piece in pieces:
        if limit is not None and seen + len(piece) >= limit:
            yield piece[: limit - seen]
            return
        seen += len(piece)
        yield piece


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
