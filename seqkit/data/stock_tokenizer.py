"""The tokenizer of a stock ``transformers`` model folder that seqkit did not train: BERT's
WordPiece (Devlin et al. 2019; Wu et al. 2016) or a SentencePiece-style BPE (Llama, Touvron et
al. 2023), as its ``tokenizer.json`` describes it, run by the `tokenizers` library as it is.

seqkit's own tokenizers are the character vocabulary and GPT-2's byte-level BPE (a stock GPT-2
folder loads as :class:`~seqkit.data.bpe.BPETokenizer`). Any other fast-tokenizer folder loads
as :class:`StockTokenizer`: the same interface (encode, decode, special-token roles,
``save_pretrained``), inherited from the BPE wrapper, whose methods only delegate to the
``tokenizers.Tokenizer`` it holds — so the data modules read a WordPiece vocabulary exactly as
they read a trained one. Encoding never adds the folder's own framing (``[CLS] … [SEP]``): the
data modules frame examples themselves.

Stock folders often name their special tokens nowhere but in ``tokenizer.json`` (the Hub's
``bert-base-uncased`` has a ``tokenizer_config.json`` of two lines; GPT-2's names none), so the
roles come from, in order: ``tokenizer_config.json``, ``special_tokens_map.json``, the model's
``config.json`` ids (``bos_token_id``...), and the spellings ``transformers``' tokenizer classes
default to (``[CLS]``, ``[MASK]``, ``<s>``...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from seqkit.data.bpe import BPETokenizer
from seqkit.data.special_tokens import SPECIAL_TOKEN_ROLES, roles_from_config
from seqkit.data.tokenization import TOKENIZER_CONFIG_FILE, flatten_ids, tokenizer_file
from seqkit.errors import UserError

CONVENTIONAL_TOKENS: dict[str, tuple[str, ...]] = {
    "pad": ("[PAD]", "<pad>", "<|pad|>"),
    "bos": ("<s>", "<|begin_of_text|>", "<|endoftext|>"),
    "eos": ("</s>", "<|end_of_text|>", "<|endoftext|>"),
    "unk": ("[UNK]", "<unk>", "<|endoftext|>"),
    "mask": ("[MASK]", "<mask>"),
    "sep": ("[SEP]", "</s>"),
    "cls": ("[CLS]", "<s>"),
}
"""Role -> the spellings stock tokenizers give it, most specific first (BERT's defaults, then
RoBERTa/Llama's, then GPT-2's one ``<|endoftext|>``); used only for roles a folder names
nowhere, and only for tokens the vocabulary has."""

_CONFIG_IDS = {"pad": "pad_token_id", "bos": "bos_token_id", "eos": "eos_token_id"}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise UserError(f"{path} is not valid JSON ({error})") from None
    return value if isinstance(value, dict) else {}


def stock_roles(folder: Path, tokenizer: Any) -> dict[str, str]:
    """``role -> token`` of the tokenizer in ``folder`` (a ``tokenizers.Tokenizer``), from
    whichever of the files above names it (see the module docstring)."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    roles = roles_from_config(_read_json(folder / TOKENIZER_CONFIG_FILE), vocab)
    for role, token in roles_from_config(
        _read_json(folder / "special_tokens_map.json"), vocab
    ).items():
        roles.setdefault(role, token)
    model_config = _read_json(folder / "config.json")
    for role, field in _CONFIG_IDS.items():
        token_id = model_config.get(field)
        if role not in roles and isinstance(token_id, int) and not isinstance(token_id, bool):
            token = tokenizer.id_to_token(token_id)
            if token is not None:
                roles[role] = token
    for role in SPECIAL_TOKEN_ROLES:
        if role not in roles:
            found = next((t for t in CONVENTIONAL_TOKENS[role] if t in vocab), None)
            if found is not None:
                roles[role] = found
    return roles


class StockTokenizer(BPETokenizer):
    """A stock ``tokenizer.json`` (WordPiece, or BPE without byte-level pre-tokens),
    with the :class:`BPETokenizer` interface; see the module docstring."""

    def can_encode(self, text: str) -> bool:
        """Always true: what the vocabulary lacks becomes its unknown token (or bytes)."""
        return True

    def encode_array(self, text: str, *, what: str = "text") -> np.ndarray:
        """Ids of a whole corpus, encoded in one piece: a stock normalizer may treat the start
        of its input specially (SentencePiece's leading ``▁``), so cutting the text at lines
        could change the ids."""
        return np.asarray(self.encode(text), dtype=np.int64)

    def encode_documents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, offsets)`` of each text encoded alone (no separator trick, for the reason
        :meth:`encode_array` gives)."""
        return flatten_ids(self.encode_batch(texts))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> StockTokenizer:
        """The tokenizer of a stock folder (its ``tokenizer.json``), roles found as the module
        docstring says."""
        from tokenizers import Tokenizer

        directory = Path(directory)
        path = tokenizer_file(directory)
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # the Rust core raises a bare Exception on bad JSON fields
            raise UserError(f"{path} is not a valid tokenizer file ({error})") from None
        return cls(tokenizer, stock_roles(directory, tokenizer))

    def __repr__(self) -> str:
        return f"StockTokenizer(vocab_size={self.vocab_size}, roles={self.special_token_roles})"
