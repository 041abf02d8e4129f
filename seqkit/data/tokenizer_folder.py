"""One entry point for every tokenizer kind: train one by name, or load whichever a folder holds.

Both kinds save the same two files (``tokenizer.json`` and ``tokenizer_config.json``); the model
type inside ``tokenizer.json`` tells them apart: ``WordLevel`` is a character vocabulary,
``BPE`` a byte-level BPE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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
    """``char`` or ``bpe``: the kind of tokenizer saved in ``directory``."""
    path = tokenizer_file(Path(directory))
    try:
        model_type = json.loads(path.read_text(encoding="utf-8"))["model"]["type"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
    kinds = {"WordLevel": "char", "BPE": "bpe"}
    if not isinstance(model_type, str) or model_type not in kinds:
        raise UserError(f"{path} holds a {model_type} tokenizer, which seqkit cannot load")
    return kinds[model_type]


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The tokenizer saved in ``directory``, as the class that wrote it; a file that does not
    load (damaged, or edited by hand) is a UserError naming it."""
    kind = tokenizer_kind(directory)
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
