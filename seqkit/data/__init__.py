"""Text data: corpora (local files, the Hub, embedded defaults), tokenizers (char and byte-level
BPE, with declared special-token roles), and LM examples. Bag-of-words features, labelled
corpora, the classifiers' token ids and datasets-backed pipelines live in ``seqkit.data.bow``,
``seqkit.data.labelled``, ``seqkit.data.classification`` and ``seqkit.data.pipelines``
(imported on demand: they pull in scipy and datasets)."""

from seqkit.data.bpe import BPETokenizer
from seqkit.data.corpora import (
    EMBEDDED_CORPORA,
    load_corpus,
    load_embedded,
    load_hub_text,
    read_text_file,
)
from seqkit.data.lm import CausalLMDataset, encode_corpus, split_tail
from seqkit.data.special_tokens import DEFAULT_SPECIAL_TOKENS, SPECIAL_TOKEN_ROLES
from seqkit.data.tokenization import CharTokenizer
from seqkit.data.tokenizer_folder import Tokenizer, load_tokenizer, train_tokenizer

__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "EMBEDDED_CORPORA",
    "SPECIAL_TOKEN_ROLES",
    "BPETokenizer",
    "CausalLMDataset",
    "CharTokenizer",
    "Tokenizer",
    "encode_corpus",
    "load_corpus",
    "load_embedded",
    "load_hub_text",
    "load_tokenizer",
    "read_text_file",
    "split_tail",
    "train_tokenizer",
]
