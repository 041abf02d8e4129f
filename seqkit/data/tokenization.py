"""Character-level tokenizer: one token per Unicode character, as in Karpathy's char-rnn and
nanoGPT's ``shakespeare_char`` (vocabulary = the sorted set of characters of the corpus).

Saved folders hold a ``tokenizer.json`` written with the `tokenizers` library (a ``WordLevel``
model over single characters, a pre-tokenizer that isolates every character, a decoder that
fuses tokens back without spaces, no normalizer) and a ``tokenizer_config.json`` naming
``PreTrainedTokenizerFast``. So the folder loads unchanged in stock
``transformers.AutoTokenizer.from_pretrained`` and gives the same ids and the same text back.
seqkit itself reads the vocabulary straight from that JSON and encodes with a dict lookup per
character, which is all a character model needs and stays fast on megabyte corpora.

Special tokens play the roles declared in :mod:`seqkit.data.special_tokens` (``pad_token_id``,
``mask_token_id`` ...). A character vocabulary is closed: a character the corpus did not have is
an error, unless the tokenizer has an ``unk`` token, which then stands for every such character
(as in BERT's WordPiece vocabularies; the saved ``WordLevel`` model names it, so stock
``transformers`` maps the same characters to it). The byte-level BPE tokenizer
(:mod:`seqkit.data.bpe`) has the same interface, and :func:`seqkit.data.load_tokenizer` loads
whichever kind a folder holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import NoReturn

import numpy as np

from seqkit.data.special_tokens import (
    SpecialTokenIds,
    SpecialTokensSpec,
    resolve_special_tokens,
    roles_from_config,
)
from seqkit.errors import UserError

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def flatten_ids(encoded: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, offsets)`` of a list of id lists: every list end to end (int64) and where each
    starts (int64, one more entry than lists), the layout of an Arrow list column."""
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # chain.from_iterable walks the rows in C: half the time of a generator expression.
    ids = np.fromiter(chain.from_iterable(encoded), dtype=np.int64, count=int(offsets[-1]))
    return ids, offsets


def tokenizer_file(directory: Path) -> Path:
    """``directory/tokenizer.json``, once ``directory`` is a folder that holds one."""
    path = directory / TOKENIZER_FILE
    if not directory.is_dir():
        raise UserError(f"tokenizer folder {directory} does not exist")
    if not path.is_file():
        raise UserError(f"{directory} has no {TOKENIZER_FILE}; it is not a tokenizer folder")
    return path


def write_tokenizer_config(directory: Path, special_tokens: dict[str, str]) -> None:
    """The ``tokenizer_config.json`` beside ``tokenizer.json`` that makes a seqkit tokenizer
    folder load in stock ``transformers.AutoTokenizer`` as a ``PreTrainedTokenizerFast``."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        # transformers would otherwise delete spaces before punctuation when decoding.
        "clean_up_tokenization_spaces": False,
        **special_tokens,
    }
    (directory / TOKENIZER_CONFIG_FILE).write_text(
        json.dumps(config, indent=2) + "\n", encoding="utf-8"
    )


class CharTokenizer(SpecialTokenIds):
    """Maps each character to an id and back.

    Ids ``0 .. len(characters) - 1`` are the characters in sorted order, so a corpus gives the
    same ids as nanoGPT's ``stoi``; special tokens (whole strings such as ``<|endoftext|>``), if
    any, take the ids after them and are recognised verbatim inside text. A special token
    spelled like a role's default (``<pad>``, ``<mask>`` ...) plays that role
    (``pad_token_id``), unless ``special_token_roles`` says otherwise. With an ``unk`` role,
    a character outside the vocabulary encodes as that token instead of being an error.
    """

    def __init__(
        self,
        characters: Iterable[str],
        special_tokens: Sequence[str] = (),
        special_token_roles: dict[str, str] | None = None,
    ) -> None:
        characters = list(characters)
        for character in characters:
            if len(character) != 1:
                raise ValueError(
                    f"a character vocabulary holds single characters, got {character!r}"
                )
        if len(set(characters)) != len(characters):
            raise ValueError("the character vocabulary has duplicates")
        special_tokens = list(special_tokens)
        for token in special_tokens:
            if not token or token in characters or special_tokens.count(token) > 1:
                raise UserError(
                    f"special token {token!r} must be a non-empty string, unique, and not one of "
                    "the corpus characters"
                )
        if special_token_roles is None:
            _, special_token_roles = resolve_special_tokens(special_tokens)
        for role, token in special_token_roles.items():
            if token not in special_tokens:
                raise UserError(f"the {role} token {token!r} is not one of the special tokens")
        self.special_token_roles = dict(special_token_roles)
        self._tokens: list[str] = [*characters, *special_tokens]
        self._ids: dict[str, int] = {token: i for i, token in enumerate(self._tokens)}
        self._special_tokens = tuple(special_tokens)
        self._characters = characters
        self._id_table: np.ndarray | None = None  # built by encode_array on first use
        unknown = self.special_token_roles.get("unk")
        self._unk_id: int | None = self._ids[unknown] if unknown is not None else None
        # Longest first, so a special token that is a prefix of another never wins the match.
        self._special_pattern = (
            re.compile(
                "("
                + "|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True))
                + ")"
            )
            if special_tokens
            else None
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def train(
        cls,
        text: str | Iterable[str],
        special_tokens: SpecialTokensSpec = (),
        *,
        vocab_size: int | None = None,
    ) -> CharTokenizer:
        """The vocabulary of ``text`` (a string or an iterable of strings): its unique characters,
        sorted, then ``special_tokens`` (plain tokens, or a ``role -> token`` map).

        ``vocab_size``, if given, is a ceiling: a character vocabulary cannot drop characters,
        so a corpus with more distinct characters (plus special tokens) is an error.
        """
        characters: set[str] = set(text) if isinstance(text, str) else set()
        if not isinstance(text, str):
            for piece in text:
                characters.update(piece)
        if not characters:
            raise UserError("cannot build a character vocabulary from an empty corpus")
        tokens, roles = resolve_special_tokens(special_tokens)
        needed = len(characters) + len(tokens)
        if vocab_size is not None and vocab_size < needed:
            raise UserError(
                f"vocab size {vocab_size} is smaller than the corpus alphabet ({len(characters)} "
                f"characters) plus {len(tokens)} special tokens; use at least {needed}"
            )
        return cls(sorted(characters), tokens, roles)

    # ------------------------------------------------------------------ vocabulary

    @property
    def vocab_size(self) -> int:
        """Number of ids (characters plus special tokens)."""
        return len(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token, indexed by id."""
        return tuple(self._tokens)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens, in id order."""
        return self._special_tokens

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, as ``transformers`` tokenizers spell it."""
        return dict(self._ids)

    def token_to_id(self, token: str) -> int | None:
        """Id of a token string (a vocabulary entry, not text), or None."""
        return self._ids.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokens[token_id] if 0 <= token_id < len(self._tokens) else None

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text."""
        return [self.encode(text) for text in texts]

    def encode_documents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, offsets)``: every text's ids end to end and where each starts (see
        :func:`flatten_ids`), the form the ``datasets`` pipelines store."""
        return flatten_ids(self.encode_batch(texts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CharTokenizer):
            return NotImplemented
        return (
            self._tokens == other._tokens
            and self._special_tokens == other._special_tokens
            and self.special_token_roles == other.special_token_roles
        )

    def __hash__(self) -> int:
        return hash((tuple(self._tokens), self._special_tokens))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, special_tokens={self._special_tokens})"

    # ------------------------------------------------------------------ encode / decode

    def can_encode(self, text: str) -> bool:
        """Whether every character of ``text`` (outside special tokens) is in the vocabulary,
        or has the ``unk`` token to stand for it."""
        return self._unk_id is not None or self._first_unknown(text) is None

    def encode(self, text: str, *, what: str = "text") -> list[int]:
        """Ids of ``text``; ``what`` names the text in the error for an unknown character."""
        if self._special_pattern is None:
            return self._encode_characters(text, text, what)
        ids: list[int] = []
        # re.split with a capturing group alternates plain text (even) and special tokens (odd).
        for index, piece in enumerate(self._special_pattern.split(text)):
            if index % 2:
                ids.append(self._ids[piece])
            else:
                ids.extend(self._encode_characters(piece, text, what))
        return ids

    def _encode_characters(self, piece: str, text: str, what: str) -> list[int]:
        """Ids of ``piece`` (a part of ``text`` without special tokens), one per character."""
        try:
            # A list comprehension of dict lookups: ~50 ms per million characters.
            return [self._ids[c] for c in piece]
        except KeyError:
            if self._unk_id is None:
                self._raise_unknown(text, what)
            return [self._ids.get(c, self._unk_id) for c in piece]

    def encode_array(self, text: str, *, what: str = "text") -> np.ndarray:
        """Ids of ``text`` as an int64 array: the vectorized path for whole corpora.

        Looks every code point up in a dense table indexed by code point (at most 1.1M
        entries, built once), a few milliseconds per million characters. Building a tensor
        from :meth:`encode`'s list instead costs ~0.25 s per million.
        """
        if self._special_pattern is not None or not self._characters:
            return np.array(self.encode(text, what=what), dtype=np.int64)
        try:
            points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        except UnicodeEncodeError:  # lone surrogates (never in text read as strict UTF-8)
            return np.array(self.encode(text, what=what), dtype=np.int64)
        if self._id_table is None:
            # One slot past the largest code point stands for "anything larger": unknown.
            table = np.full(max(map(ord, self._characters)) + 2, -1, dtype=np.int64)
            for i, character in enumerate(self._characters):
                table[ord(character)] = i
            self._id_table = table
        ids = self._id_table[np.minimum(points, len(self._id_table) - 1)]
        if ids.size and ids.min() < 0:
            if self._unk_id is None:
                self._raise_unknown(text, what)
            ids[ids < 0] = self._unk_id
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids`` (a list, or anything iterable over ints such as a 1-D tensor)."""
        ids = [int(i) for i in ids]
        size = len(self._tokens)
        for i in ids:
            # A negative id would silently index from the end of the list.
            if not 0 <= i < size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{size - 1})")
        return "".join([self._tokens[i] for i in ids])

    def _first_unknown(self, text: str) -> int | None:
        """Position of the first character of ``text`` not in the vocabulary, or None."""
        spans = [(0, len(text))]
        if self._special_pattern is not None:
            spans, start = [], 0
            for match in self._special_pattern.finditer(text):
                spans.append((start, match.start()))
                start = match.end()
            spans.append((start, len(text)))
        for start, end in spans:
            for position in range(start, end):
                if text[position] not in self._ids:
                    return position
        return None

    def _raise_unknown(self, text: str, what: str) -> NoReturn:
        position = self._first_unknown(text)
        assert position is not None  # only called after a failed lookup
        character = text[position]
        raise UserError(
            f"{what} contains {character!r} (U+{ord(character):04X}) at position {position}, "
            "which the model's character vocabulary does not have"
        )

    # ------------------------------------------------------------------ save / load

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory``."""
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        unknown = self.special_token_roles.get("unk")
        tokenizer = Tokenizer(models.WordLevel(dict(self._ids), unk_token=unknown))
        # `[\s\S]` rather than `.`: Oniguruma's `.` does not match a newline.
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tokenizer.decoder = decoders.Fuse()  # join tokens as they are: no spaces in between
        tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in self._special_tokens]
        )
        tokenizer.save(str(directory / TOKENIZER_FILE))
        write_tokenizer_config(directory, self.transformers_special_tokens())

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> CharTokenizer:
        """Load a tokenizer written by :meth:`save_pretrained`."""
        directory = Path(directory)
        path = tokenizer_file(directory)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            model = data["model"]
            vocab: dict[str, int] = model["vocab"]
            special = sorted(
                (t["id"], t["content"]) for t in data.get("added_tokens", []) if t.get("special")
            )
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
        if model.get("type") != "WordLevel":
            raise UserError(
                f"{path} holds a {model.get('type')} tokenizer, not a character tokenizer"
            )
        by_id = sorted((i, token) for token, i in vocab.items())
        if [i for i, _ in by_id] != list(range(len(by_id))):
            raise UserError(f"{path}: token ids are not 0..{len(by_id) - 1} without gaps")
        special_tokens = [token for _, token in special]
        characters = [token for _, token in by_id if token not in special_tokens]
        if any(len(c) != 1 for c in characters) or [t for _, t in by_id] != [
            *characters,
            *special_tokens,
        ]:
            raise UserError(f"{path} is not a character tokenizer")
        roles = None  # folders saved before roles existed: infer them from the token names
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except ValueError as error:
                raise UserError(f"{config_path} is not valid JSON ({error})") from None
            if isinstance(config, dict) and any(key.endswith("_token") for key in config):
                roles = roles_from_config(config, special_tokens)
        return cls(characters, special_tokens, roles)
