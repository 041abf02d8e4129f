"""CharTokenizer: round trips, unknown characters, save/load, and parity with stock transformers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkit.data import CharTokenizer
from seqkit.errors import UserError

CORPUS = "First Citizen:\n\tBefore we proceed any further, hear me speak.\r\n  Ünïcödé 😀 e\u0301\n"
TOKENIZER = CharTokenizer.train(CORPUS)
SPECIAL = CharTokenizer.train(CORPUS, special_tokens=["<|endoftext|>", "<|end|>"])
over_vocabulary = st.text(alphabet=sorted(set(CORPUS)), max_size=200)


def test_vocabulary_is_the_sorted_unique_characters():
    assert TOKENIZER.tokens == tuple(sorted(set(CORPUS)))
    assert TOKENIZER.vocab_size == len(set(CORPUS)) == len(TOKENIZER)
    assert TOKENIZER.encode("\t") == [0]  # the smallest code point gets id 0, as nanoGPT's stoi


def test_special_tokens_follow_the_characters_and_match_verbatim():
    n = len(set(CORPUS))
    assert SPECIAL.vocab_size == n + 2
    assert SPECIAL.encode("hi<|endoftext|><|end|>")[-2:] == [n, n + 1]
    text = "hear<|end|>me<|endoftext|>"
    assert SPECIAL.decode(SPECIAL.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(over_vocabulary)
def test_round_trip(text):
    ids = TOKENIZER.encode(text)
    assert len(ids) == len(text)
    assert TOKENIZER.decode(ids) == text
    assert TOKENIZER.encode_array(text).tolist() == ids


def test_encode_array_is_int64_and_agrees_with_encode():
    array = TOKENIZER.encode_array(CORPUS * 3)
    assert array.dtype == np.int64
    assert array.tolist() == TOKENIZER.encode(CORPUS * 3)
    assert TOKENIZER.encode_array("").tolist() == []


@pytest.mark.parametrize("method", ["encode", "encode_array"])
def test_unknown_character_names_it_its_code_point_and_position(method):
    with pytest.raises(UserError) as error:
        getattr(TOKENIZER, method)("Fir€st", what="prompt")
    assert str(error.value) == (
        "prompt contains '€' (U+20AC) at position 3, which the model's character vocabulary "
        "does not have"
    )
    # Above the largest code point of the vocabulary (the dense table's edge case).
    with pytest.raises(UserError, match=r"U\+10FFFF\) at position 0"):
        getattr(TOKENIZER, method)("\U0010ffff")
    assert not TOKENIZER.can_encode("Fir€st")
    assert TOKENIZER.can_encode("First")


WITH_UNK = CharTokenizer.train(CORPUS, special_tokens={"pad": "<pad>", "unk": "<unk>"})


@pytest.mark.parametrize("method", ["encode", "encode_array"])
def test_an_unk_token_stands_for_characters_outside_the_vocabulary(method):
    unk = WITH_UNK.token_to_id("<unk>")
    ids = list(getattr(WITH_UNK, method)("Fir€st\U0010ffff"))
    assert ids == [*WITH_UNK.encode("Fir"), unk, *WITH_UNK.encode("st"), unk]
    assert WITH_UNK.can_encode("Fir€st") and not TOKENIZER.can_encode("Fir€st")
    # Between special tokens too, which encode as themselves.
    assert WITH_UNK.encode("€<pad>F") == [unk, WITH_UNK.token_to_id("<pad>"), *WITH_UNK.encode("F")]


def test_the_unk_token_is_saved_so_stock_transformers_maps_the_same_characters(tmp_path):
    from transformers import AutoTokenizer

    WITH_UNK.save_pretrained(tmp_path)
    stock = AutoTokenizer.from_pretrained(tmp_path)
    text = "Before € we 中 proceed"
    assert stock(text)["input_ids"] == WITH_UNK.encode(text)
    assert stock.unk_token_id == WITH_UNK.token_to_id("<unk>")
    assert CharTokenizer.from_pretrained(tmp_path).encode(text) == WITH_UNK.encode(text)


def test_unknown_character_position_counts_special_tokens_as_text():
    with pytest.raises(UserError, match=r"'~' .* at position 14"):
        SPECIAL.encode("<|endoftext|>F~")


def test_decode_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match="-1"):
        TOKENIZER.decode([0, -1])
    with pytest.raises(ValueError):
        TOKENIZER.decode([TOKENIZER.vocab_size])


def test_empty_corpus_is_a_user_error():
    with pytest.raises(UserError, match="empty"):
        CharTokenizer.train("")


@pytest.mark.parametrize("tokenizer", [TOKENIZER, SPECIAL], ids=["plain", "special"])
def test_save_and_load_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = CharTokenizer.from_pretrained(tmp_path)
    assert loaded == tokenizer
    assert loaded.special_tokens == tokenizer.special_tokens
    assert loaded.encode(CORPUS) == tokenizer.encode(CORPUS)


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        CharTokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(UserError, match=r"no tokenizer\.json"):
        CharTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid tokenizer file"):
        CharTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(UserError, match="BPE"):
        CharTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("tokenizer", [TOKENIZER, SPECIAL], ids=["plain", "special"])
def test_stock_auto_tokenizer_gives_the_same_ids_and_text(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    stock = AutoTokenizer.from_pretrained(tmp_path)
    text = CORPUS + "  hear  me , speak .\n\n"
    if tokenizer.special_tokens:
        text += "<|endoftext|>First"
    ids = tokenizer.encode(text)
    assert stock(text)["input_ids"] == ids  # no BOS/EOS added
    assert stock.decode(ids) == text  # whitespace kept exactly, nothing cleaned up
    assert len(stock) == tokenizer.vocab_size
