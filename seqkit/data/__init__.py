"""Text data: corpora (local files, the Hub, embedded defaults), tokenizers, and LM examples."""

from seqkit.data.corpora import (
    EMBEDDED_CORPORA,
    load_corpus,
    load_embedded,
    load_hub_text,
    read_text_file,
)
from seqkit.data.lm import CausalLMDataset, encode_corpus, split_tail
from seqkit.data.tokenization import CharTokenizer

__all__ = [
    "EMBEDDED_CORPORA",
    "CausalLMDataset",
    "CharTokenizer",
    "encode_corpus",
    "load_corpus",
    "load_embedded",
    "load_hub_text",
    "read_text_file",
    "split_tail",
]
