"""Byte-level byte-pair encoding, the tokenizer of GPT-2 (Radford et al., 2019, "Language Models
are Unsupervised Multitask Learners", section 2.2), built on the `tokenizers` library.

Byte-pair encoding (Sennrich et al., 2016, "Neural Machine Translation of Rare Words with
Subword Units") starts from an alphabet and repeatedly merges the most frequent adjacent pair
into a new token until the vocabulary reaches its size. GPT-2's twist is the alphabet: the 256
*bytes* of UTF-8, each written as a printable character. Every string is a byte string, so no
text is ever out of vocabulary — emoji, CJK and control characters included — and decoding the
bytes back gives the exact input. A regular expression first cuts text into words, numbers,
punctuation runs and whitespace runs ("pre-tokens"); merges never cross those cuts.

Training, encoding and decoding run in the `tokenizers` Rust core; this module only chooses the
pieces (no normalizer, ByteLevel pre-tokenizer and decoder, special tokens first) and gives the
result the same interface as :class:`~seqkit.data.tokenization.CharTokenizer`. Saved folders are
a ``tokenizer.json`` plus a ``tokenizer_config.json`` that stock
``transformers.AutoTokenizer.from_pretrained`` reads with identical ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from seqkit.checks import MAX_VOCAB
from seqkit.data.special_tokens import (
    SpecialTokenIds,
    SpecialTokensSpec,
    resolve_special_tokens,
    roles_from_config,
)
from seqkit.data.tokenization import (
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    flatten_ids,
    tokenizer_file,
    write_tokenizer_config,
)
from seqkit.errors import UserError

BYTE_ALPHABET_SIZE = 256
"""Every byte value is a token of its own before any merge."""

# SAFE_CUT: where a corpus may be cut without changing its ids: after a lone newline between two
# non-space characters. The GPT-2 pattern joins whitespace to what follows only as a single
# leading space, and splits a whitespace run before a non-space character differently from one
# at the end of the text ("\n\n" + "=" is two pre-tokens, a final "\n\n" one), so only a run of
# one newline with text on both sides is a boundary that looks the same from either piece.
SAFE_CUT = re.compile(r"(?<=\S\n)(?=\S)")
# Pieces handed to encode_batch: many small ones keep every core busy to the end, and are still
# long enough to amortise the per-item work. On tiny Shakespeare (2 cores, medians of 7) pieces
# of 2,048 characters encoded the corpus in 421 ms and its lines as documents in 396 ms; pieces
# of 65,536 took 486 ms and 573 ms.
_CHUNK_CHARS = 1 << 11


class BPETokenizer(SpecialTokenIds):
    """A byte-level BPE vocabulary: ``train`` it on text, ``encode`` text to ids, ``decode`` back.

    Special tokens take the first ids (``<pad>`` is 0 with the defaults) and are matched
    verbatim inside text; everything else is byte-level BPE, so encoding never fails.
    """

    def __init__(self, tokenizer, special_token_roles: dict[str, str] | None = None) -> None:
        """Wrap a ``tokenizers.Tokenizer`` with a ByteLevel pre-tokenizer and decoder."""
        self._tokenizer = tokenizer
        self.special_token_roles = dict(special_token_roles or {})

    # ------------------------------------------------------------------ construction

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        special_tokens: SpecialTokensSpec | None = None,
        *,
        min_frequency: int = 2,
    ) -> BPETokenizer:
        """Learn merges from ``texts`` (one string, or an iterable of strings such as lines).

        ``special_tokens`` defaults to :data:`~seqkit.data.special_tokens.DEFAULT_SPECIAL_TOKENS`;
        pass ``()`` for none. ``vocab_size`` counts the 256 bytes, the special tokens and the
        merges; a pair must occur ``min_frequency`` times to be merged.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokens, roles = resolve_special_tokens(special_tokens)
        smallest = BYTE_ALPHABET_SIZE + len(tokens)
        if vocab_size < smallest:
            raise UserError(
                f"vocab size {vocab_size} is smaller than the byte alphabet ({BYTE_ALPHABET_SIZE})"
                f" plus {len(tokens)} special tokens; use at least {smallest}"
            )
        # The trainer sizes its tables by vocab_size before it reads a byte: a billion aborts
        # the whole process (a failed allocation in Rust), far past any corpus's merges.
        if vocab_size > MAX_VOCAB:
            raise UserError(f"vocab size {vocab_size} is larger than seqkit allows ({MAX_VOCAB})")
        if min_frequency < 1:
            raise UserError(f"min_frequency must be at least 1, got {min_frequency}")
        pieces, seen_text = _nonempty(texts)
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=tokens,
            # All 256 bytes, not only those the corpus happens to use: any text stays encodable.
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(pieces, trainer=trainer)
        if not seen_text():
            raise UserError("cannot train a tokenizer on an empty corpus")
        return cls(tokenizer, roles)

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        """Number of ids (bytes, merges and special tokens)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens, in id order."""
        added = self._tokenizer.get_added_tokens_decoder()
        return tuple(added[i].content for i in sorted(added) if added[i].special)

    def token_to_id(self, token: str) -> int | None:
        """Id of a token string (a vocabulary entry, not text), or None."""
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, as ``transformers`` tokenizers spell it."""
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def backend(self):
        """The underlying ``tokenizers.Tokenizer`` (for batch APIs this class does not wrap)."""
        return self._tokenizer

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BPETokenizer):
            return NotImplemented
        return (
            self._tokenizer.to_str() == other._tokenizer.to_str()
            and self.special_token_roles == other.special_token_roles
        )

    __hash__ = None  # mutable backend: equal tokenizers need not stay equal

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"

    # ------------------------------------------------------------------ encode / decode

    def can_encode(self, text: str) -> bool:
        """Always true: every string is a sequence of bytes."""
        return True

    def encode(self, text: str, *, what: str = "text") -> list[int]:
        """Ids of ``text`` (no BOS/EOS added). ``what`` is accepted for interface parity with
        :class:`CharTokenizer`; byte-level BPE has no unknown characters to report."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, encoded in parallel by the Rust core."""
        return [e.ids for e in self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)]

    def encode_documents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, offsets)``: every text's ids end to end and where each starts (see
        :func:`~seqkit.data.tokenization.flatten_ids`), equal to encoding each text alone.

        Documents are often short (a line of a text file), and one ``encode_batch`` item per
        line spends much of its time on per-item work. So the texts go to the Rust core joined
        into pieces of about ``_CHUNK_CHARS`` characters, with a special token after each text:
        the tokenizer cuts its input at special tokens before anything else, so every text is
        pre-tokenized and merged exactly as if alone, and the separator's ids mark where each
        text ends. On tiny Shakespeare's 40,000 lines this took 427 ms against 828 ms for a batch
        of lines (medians of 9, 2 cores). A text that itself contains the separator's string
        would add ids that are no boundary; then the count of separators is off and the batch is
        encoded line by line.
        """
        separator = self._document_separator()
        if separator is None or len(texts) < 2:
            return flatten_ids(self.encode_batch(texts))
        token, token_id = separator
        pieces, piece, size = [], [], 0
        for text in texts:
            piece.append(text)
            size += len(text) + len(token)
            if size >= _CHUNK_CHARS:
                pieces.append(token.join(piece) + token)
                piece, size = [], 0
        if piece:
            pieces.append(token.join(piece) + token)
        flat, _ = flatten_ids(self.encode_batch(pieces))
        ends = np.flatnonzero(flat == token_id)  # one separator after every text
        if len(ends) != len(texts):
            return flatten_ids(self.encode_batch(texts))
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        offsets[1:] = ends - np.arange(len(texts))  # each end, less the separators before it
        return np.delete(flat, ends), offsets

    def _document_separator(self) -> tuple[str, int] | None:
        """A special token that cuts text cleanly, as ``(string, id)``: matched verbatim and
        taking no whitespace from its neighbours (no ``lstrip``/``rstrip``/``single_word``,
        not normalised), so the pieces between two of them encode as if alone. None if the
        vocabulary has none."""
        for token_id, added in sorted(self._tokenizer.get_added_tokens_decoder().items()):
            if added.special and not (
                added.lstrip or added.rstrip or added.single_word or added.normalized
            ):
                return added.content, token_id
        return None

    def encode_array(self, text: str, *, what: str = "text") -> np.ndarray:
        """Ids of a whole corpus as an int64 array, equal to ``encode(text)``.

        One multi-megabyte string would be encoded on one thread; cutting it at lines (where a
        cut never changes the pre-tokens) lets ``encode_batch`` use every core.
        """
        chunks = list(_chunks(text))
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        return flatten_ids(self.encode_batch(chunks))[0]

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """The text of ``ids`` (a list, or anything iterable over ints such as a 1-D tensor)."""
        ids = [int(i) for i in ids]
        size = self.vocab_size
        for i in ids:
            if not 0 <= i < size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{size - 1})")
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------------ save / load

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._tokenizer.save(str(directory / TOKENIZER_FILE))
        write_tokenizer_config(directory, self.transformers_special_tokens())

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BPETokenizer:
        """Load a folder written by :meth:`save_pretrained` (or any byte-level BPE folder)."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = tokenizer_file(directory)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text)
            kind = data["model"]["type"]
            pre_tokenizer = (data.get("pre_tokenizer") or {}).get("type")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
        if kind != "BPE" or pre_tokenizer != "ByteLevel":
            raise UserError(
                f"{path} holds a {kind} tokenizer with a {pre_tokenizer} pre-tokenizer, not a "
                "byte-level BPE tokenizer"
            )
        try:
            tokenizer = Tokenizer.from_str(text)
        except Exception as error:  # the Rust core raises a bare Exception on bad JSON fields
            raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
        config_path = directory / TOKENIZER_CONFIG_FILE
        config = {}
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise UserError(f"{config_path} is not valid JSON ({error})") from None
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        return cls(tokenizer, roles_from_config(config if isinstance(config, dict) else {}, vocab))


def _nonempty(texts: str | Iterable[str]) -> tuple[Iterator[str], Callable[[], bool]]:
    """``(pieces, seen_text)``: the texts as an iterator, and whether any had a character."""
    if isinstance(texts, str):
        texts = [texts]
    seen = [False]

    def pieces() -> Iterator[str]:
        for text in texts:
            for chunk in _chunks(text):  # whole files become pieces the trainer can share out
                seen[0] = True
                yield chunk

    return pieces(), lambda: seen[0]


def _chunks(text: str) -> Iterator[str]:
    """``text`` in pieces of about ``_CHUNK_CHARS`` characters, cut only at safe boundaries."""
    start = 0
    while start < len(text):
        end = start + _CHUNK_CHARS
        if end >= len(text):
            yield text[start:]
            return
        cut = SAFE_CUT.search(text, end)
        if cut is None:
            yield text[start:]
            return
        yield text[start : cut.start()]
        start = cut.start()
