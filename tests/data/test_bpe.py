"""Byte-level BPE: exact round trips on any Unicode, special-token roles, folders that stock
transformers loads with the same ids, and load_tokenizer picking the right class."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkit.data import (
    DEFAULT_SPECIAL_TOKENS,
    BPETokenizer,
    CharTokenizer,
    load_tokenizer,
    train_tokenizer,
)
from seqkit.data.corpora import pydoc_topics
from seqkit.errors import UserError

CORPUS = pydoc_topics()[:60_000]
TOKENIZER = BPETokenizer.train(CORPUS, vocab_size=600)
SAMPLES = [
    "",
    "Hello, world!",
    "emoji 😀👍🏽 and a family 👨‍👩‍👧",
    "漢字かなカナ한국어",
    "control \x00\x01\x1f\x7f\r\n\t chars",
    "e\u0301 combining, \u200b zero width, \ufeff BOM",
    "  leading and trailing spaces \n\n\n",
]
# Any Unicode scalar value (hypothesis leaves out surrogates, which UTF-8 cannot carry).
any_text = st.text(max_size=120)
# Text made of the pieces the GPT-2 pre-tokenizer treats differently: runs of newlines and
# spaces next to words, so corpus-chunk boundaries are exercised.
layout_text = st.lists(st.sampled_from(["a", "bc", " ", "\n", "\n\n", "  ", "=", "😀"])).map(
    "".join
)


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip_samples(text):
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_round_trip_any_unicode(text):
    ids = TOKENIZER.encode(text)
    assert all(0 <= i < TOKENIZER.vocab_size for i in ids)
    assert TOKENIZER.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(layout_text, min_size=1, max_size=400).map("".join))
def test_encode_array_equals_encode_of_the_whole_text(text):
    import seqkit.data.bpe as bpe

    original = bpe._CHUNK_CHARS
    bpe._CHUNK_CHARS = 8  # force many cuts on small text
    try:
        assert TOKENIZER.encode_array(text).tolist() == TOKENIZER.encode(text)
    finally:
        bpe._CHUNK_CHARS = original


def test_special_tokens_take_the_first_ids_and_are_declared_once():
    assert TOKENIZER.special_tokens == tuple(DEFAULT_SPECIAL_TOKENS.values())
    assert TOKENIZER.pad_token_id == 0
    assert TOKENIZER.mask_token_id == TOKENIZER.token_to_id("<mask>") == 4
    assert TOKENIZER.all_special_ids == list(range(7))
    assert TOKENIZER.encode("a <mask> b").count(TOKENIZER.mask_token_id) == 1
    assert TOKENIZER.vocab_size == 600


# Documents as a text file's lines give them: any text, special-token strings, empty lines.
document = st.one_of(any_text, layout_text, st.sampled_from(["<pad>", "a<eos>b", "", " <unk> "]))


@settings(max_examples=150, deadline=None)
@given(st.lists(document, max_size=30), st.integers(1, 64))
def test_encode_documents_equals_encoding_each_document_alone(texts, chunk_chars):
    import seqkit.data.bpe as bpe

    original = bpe._CHUNK_CHARS
    bpe._CHUNK_CHARS = chunk_chars  # pieces of one to many documents
    try:
        ids, offsets = TOKENIZER.encode_documents(texts)
    finally:
        bpe._CHUNK_CHARS = original
    alone = [TOKENIZER.encode(text) for text in texts]
    assert offsets.tolist() == [0, *itertools.accumulate(map(len, alone))]
    assert ids.tolist() == [i for row in alone for i in row]


def test_encode_documents_without_special_tokens_encodes_each_document():
    bare = BPETokenizer.train(CORPUS[:5000], 300, ())
    texts = ["a line", "", "another line\n"]
    ids, offsets = bare.encode_documents(texts)
    assert offsets.tolist() == [0, *itertools.accumulate(len(bare.encode(t)) for t in texts)]
    assert ids.tolist() == [i for t in texts for i in bare.encode(t)]


def test_custom_roles_and_no_special_tokens():
    custom = BPETokenizer.train(CORPUS[:5000], 300, {"pad": "[PAD]", "eos": "<|endoftext|>"})
    assert (custom.pad_token_id, custom.eos_token_id, custom.mask_token_id) == (0, 1, None)
    with pytest.raises(UserError, match="needs a mask token"):
        custom.require_special_token_id("mask", "masked-LM collator")
    bare = BPETokenizer.train(CORPUS[:5000], 300, ())
    assert bare.special_tokens == () and bare.pad_token_id is None


def test_folder_loads_in_stock_transformers_with_identical_ids(tmp_path):
    from transformers import AutoTokenizer

    TOKENIZER.save_pretrained(tmp_path)
    stock = AutoTokenizer.from_pretrained(tmp_path)
    assert len(stock) == TOKENIZER.vocab_size
    for text in [*SAMPLES, CORPUS[:2000], "a <mask> b <pad>"]:
        ids = TOKENIZER.encode(text)
        assert stock(text)["input_ids"] == ids
        assert stock.decode(ids) == TOKENIZER.decode(ids)
    for role in DEFAULT_SPECIAL_TOKENS:
        assert getattr(stock, f"{role}_token_id") == getattr(TOKENIZER, f"{role}_token_id")


def test_save_load_round_trip_and_kind_dispatch(tmp_path):
    TOKENIZER.save_pretrained(tmp_path / "bpe")
    loaded = load_tokenizer(tmp_path / "bpe")
    assert isinstance(loaded, BPETokenizer) and loaded == TOKENIZER
    assert loaded.special_token_roles == TOKENIZER.special_token_roles
    char = CharTokenizer.train("abc", special_tokens=["<pad>", "<|x|>"])
    char.save_pretrained(tmp_path / "char")
    loaded_char = load_tokenizer(tmp_path / "char")
    assert isinstance(loaded_char, CharTokenizer) and loaded_char == char
    assert loaded_char.pad_token_id == 3 and loaded_char.eos_token_id is None


def test_char_tokenizer_roles_reach_transformers(tmp_path):
    from transformers import AutoTokenizer

    char = CharTokenizer.train("hello", special_tokens=dict(DEFAULT_SPECIAL_TOKENS))
    char.save_pretrained(tmp_path)
    stock = AutoTokenizer.from_pretrained(tmp_path)
    assert stock.mask_token_id == char.mask_token_id == len(set("hello")) + 4
    assert stock("he<mask>")["input_ids"] == char.encode("he<mask>")


def test_train_from_an_iterable_of_lines():
    lines = CORPUS.splitlines(keepends=True)
    assert BPETokenizer.train(iter(lines), 400).vocab_size == 400


@pytest.mark.parametrize(
    ("kind", "vocab_size", "message"),
    [
        ("bpe", 100, "smaller than the byte alphabet \\(256\\) plus 7 special tokens"),
        ("char", 3, "smaller than the corpus alphabet"),
        ("bpe", None, "needs a vocab size"),
        ("wordpiece", 100, "kind must be one of"),
    ],
)
def test_bad_vocab_sizes_and_kinds(kind, vocab_size, message):
    with pytest.raises(UserError, match=message):
        train_tokenizer(kind, "hello world", vocab_size=vocab_size)


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_empty_corpus_is_refused(kind):
    with pytest.raises(UserError, match="empty corpus"):
        train_tokenizer(kind, ["", ""], vocab_size=400)


def test_bad_special_tokens_are_refused():
    with pytest.raises(UserError, match="given twice"):
        BPETokenizer.train(CORPUS, 400, ["<a>", "<a>"])
    with pytest.raises(UserError, match="unknown special-token role"):
        BPETokenizer.train(CORPUS, 400, {"padding": "<pad>"})


def test_load_refuses_what_is_not_a_tokenizer_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(UserError, match=r"no tokenizer\.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not a valid tokenizer file"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram"}}))
    with pytest.raises(UserError, match="Unigram tokenizer, which seqkit cannot load"):
        load_tokenizer(tmp_path)


def test_decode_refuses_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        TOKENIZER.decode([TOKENIZER.vocab_size])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        TOKENIZER.decode([-1])
