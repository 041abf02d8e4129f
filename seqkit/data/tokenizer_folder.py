"""One entry point for every tokenizer kind: train one by name, or load whichever a folder holds.

Both kinds save the same two files (``tokenizer.json`` and ``tokenizer_config.json``); the model
type inside ``tokenizer.json`` tells them apart: ``WordLevel`` is a character vocabulary,
``BPE`` a byte-level BPE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from seqkit.data.bpe import BPETokenizer
from seqkit.data.special_tokens import SpecialTokensSpec
from seqkit.data.tokenization import CharTokenizer, tokenizer_file
from seqkit.errors import UserError
from seqkit.folders import loading

Tokenizer = CharTokenizer | BPETokenizer
"""Any seqkit tokenizer: both share train/encode/decode/vocab_size/save_pretrained/roles."""

TOKENIZER_KINDS = {"char": CharTokenizer, "bpe": BPETokenizer}
"""``tokenizer.kind`` -> class."""
STOCK_MODELS = ("WordPiece", "BPE")
"""``tokenizer.json`` models of stock folders that load as a
:class:`~seqkit.data.stock_tokenizer.StockTokenizer`: BERT's WordPiece, and a BPE without GPT-2's
byte-level pre-tokenizer (Llama's SentencePiece-style one)."""


def train_tokenizer(
    kind: str,
    texts: str | Iterable[str],
    *,
    vocab_size: int | None = None,
    special_tokens: SpecialTokensSpec | None = None,
) -> Tokenizer:
    """A ``kind`` tokenizer (``char`` or ``bpe``) trained on ``texts``.

    ``bpe`` needs ``vocab_size`` and defaults to the seven role tokens; ``char`` treats
    ``vocab_size`` as a ceiling and defaults to no special tokens.
    """
    if kind == "char":
        return CharTokenizer.train(texts, special_tokens or (), vocab_size=vocab_size)
    if kind == "bpe":
        if vocab_size is None:
            raise UserError("a bpe tokenizer needs a vocab size (tokenizer.vocab_size)")
        return BPETokenizer.train(texts, vocab_size, special_tokens)
    raise UserError(f"tokenizer kind must be one of {', '.join(TOKENIZER_KINDS)}, got {kind!r}")


def tokenizer_kind(directory: str | Path) -> str:
    """``char`` or ``bpe`` (the kinds seqkit trains), or ``stock`` (another model a stock
    folder's ``tokenizer.json`` holds): the kind of tokenizer saved in ``directory``."""
    path = tokenizer_file(Path(directory))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model_type = data["model"]["type"]
        pre_tokenizer = (data.get("pre_tokenizer") or {}).get("type")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
    if model_type == "BPE" and pre_tokenizer == "ByteLevel":
        return "bpe"
    if model_type == "WordLevel":
        return "char"
    if not isinstance(model_type, str) or model_type not in STOCK_MODELS:
        raise UserError(f"{path} holds a {model_type} tokenizer, which seqkit cannot load")
    return "stock"


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The tokenizer saved in ``directory``, as the class that wrote it (a stock folder's
    WordPiece or SentencePiece-style one as a ``StockTokenizer``); a file that does not load
    (damaged, or edited by hand) is a UserError naming it."""
    kind = tokenizer_kind(directory)
    if kind == "stock":
        from seqkit.data.stock_tokenizer import StockTokenizer

        return StockTokenizer.from_pretrained(directory)
    with loading(f"the tokenizer in {directory}"):
        return TOKENIZER_KINDS[kind].from_pretrained(directory)


def recipe_tokenizer(
    settings: Any,
    init_from: Path | None,
    texts: Callable[[], str | Iterable[str]],
    special_tokens: SpecialTokensSpec | None = None,
) -> Tokenizer:
    """A run's tokenizer as its recipe asks: the ``init_from`` model's own, else the saved
    folder ``tokenizer.path`` (which says its kind), else one of ``tokenizer.kind`` trained on
    ``texts()`` (called only then, so a corpus is read only to train)."""
    if init_from is not None:
        return load_tokenizer(init_from)
    if settings.path:
        return load_tokenizer(Path(settings.path))
    if settings.kind == "bpe" and settings.vocab_size is None:
        raise UserError("tokenizer.kind bpe needs tokenizer.vocab_size (e.g. 1024)")
    return train_tokenizer(
        settings.kind, texts(), vocab_size=settings.vocab_size, special_tokens=special_tokens
    )


def first_chars(texts: Iterable[str], limit: int | None) -> Iterator[str]:
    """The texts up to ``limit`` characters in all (every one when None), as a stream: the
    budget a tokenizer is trained on when a corpus is too large to read whole
    (``data.tokenizer_sample_chars``)."""
    seen = 0
    for text in texts:
        if limit is not None and seen + len(text) >= limit:
            yield text[: limit - seen]
            return
        seen += len(text)
        yield text
