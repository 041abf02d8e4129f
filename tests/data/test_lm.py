"""Causal-LM examples: window count, label alignment, strides, tail split and its errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from seqkit.data import CausalLMDataset, CharTokenizer, encode_corpus, split_tail
from seqkit.errors import UserError

STREAM = torch.arange(100, dtype=torch.long)


@pytest.mark.parametrize(
    ("length", "block_size", "stride", "expected"),
    [
        (100, 8, 1, 92),  # every start 0..91 leaves room for block + 1 target
        (100, 8, 8, 12),  # packed blocks: starts 0, 8, ..., 88
        (100, 8, 3, 31),  # starts 0, 3, ..., 90
        (9, 8, 1, 1),  # exactly one window
        (9, 8, 8, 1),
    ],
)
def test_length_is_exact(length, block_size, stride, expected):
    dataset = CausalLMDataset(STREAM[:length], block_size, stride)
    assert len(dataset) == expected
    last = dataset[len(dataset) - 1]
    assert last["labels"][-1] < length  # the last window fits
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_labels_are_inputs_shifted_by_one():
    dataset = CausalLMDataset(STREAM, block_size=8, stride=1)
    for index in (0, 1, 50, len(dataset) - 1):
        item = dataset[index]
        assert item["input_ids"].tolist() == list(range(index, index + 8))
        assert torch.equal(item["labels"][:-1], item["input_ids"][1:])
        assert item["labels"][-1] == index + 8
        assert item["input_ids"].dtype == item["labels"].dtype == torch.long


def test_stride_sets_window_starts():
    packed = CausalLMDataset(STREAM, block_size=8, stride=8)
    starts = [packed[i]["input_ids"][0].item() for i in range(len(packed))]
    assert starts == list(range(0, 89, 8))
    # Packed windows score every token once (up to the dropped partial block).
    scored = torch.cat([packed[i]["labels"] for i in range(len(packed))])
    assert scored.tolist() == list(range(1, 97))
    assert CausalLMDataset(STREAM, 8, stride=3)[2]["input_ids"][0] == 6


def test_negative_index_counts_from_the_end():
    dataset = CausalLMDataset(STREAM, 8)
    assert torch.equal(dataset[-1]["input_ids"], dataset[len(dataset) - 1]["input_ids"])


def test_items_are_views_of_the_stream():
    dataset = CausalLMDataset(STREAM, 8)
    item = dataset[5]
    assert item["input_ids"].untyped_storage().data_ptr() == STREAM.untyped_storage().data_ptr()
    assert item["labels"].untyped_storage().data_ptr() == STREAM.untyped_storage().data_ptr()


def test_default_collate_stacks_batches():
    loader = DataLoader(CausalLMDataset(STREAM, 8, stride=8), batch_size=4)
    batch = next(iter(loader))
    assert batch["input_ids"].shape == batch["labels"].shape == (4, 8)
    assert torch.equal(batch["labels"][:, :-1], batch["input_ids"][:, 1:])


def test_int32_stream_is_converted_once():
    dataset = CausalLMDataset(STREAM.int(), 8)
    assert dataset[0]["input_ids"].dtype == torch.long


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ids": STREAM, "block_size": 8, "stride": 0}, "stride"),
        ({"ids": STREAM, "block_size": 0, "stride": 1}, "block_size"),
        ({"ids": STREAM[:8], "block_size": 8, "stride": 1}, "8 tokens"),
    ],
)
def test_dataset_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        CausalLMDataset(**kwargs)


def test_dataset_rejects_non_integer_or_2d_streams():
    with pytest.raises(ValueError, match="1-D"):
        CausalLMDataset(STREAM.view(10, 10), 4)
    with pytest.raises(ValueError, match="integers"):
        CausalLMDataset(STREAM.float(), 4)


def test_split_tail_holds_out_the_last_fraction():
    train, val = split_tail(STREAM, 0.1, block_size=8)
    assert len(train) == 90 and len(val) == 10
    assert torch.equal(torch.cat([train, val]), STREAM)
    assert val[0] == 90  # the tail, not a random sample
    train, val = split_tail(STREAM, 0.0, block_size=8)
    assert len(train) == 100 and len(val) == 0


def test_split_tail_rounds_like_nanogpt():
    n = 1_115_394  # tiny Shakespeare's characters
    train, val = split_tail(torch.zeros(n, dtype=torch.long), 0.1, block_size=64)
    assert len(train) == int(n * 0.9) == 1_003_854
    assert len(val) == n - 1_003_854


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_tail_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(UserError, match="val_fraction"):
        split_tail(STREAM, fraction, block_size=8)


def test_split_tail_names_the_sizes_of_a_too_small_split():
    with pytest.raises(UserError, match=r"validation split .* 5 tokens .* block_size \+ 1 = 9"):
        split_tail(STREAM, 0.05, block_size=8)
    with pytest.raises(UserError, match=r"training split has 10 tokens .* = 51"):
        split_tail(STREAM, 0.9, block_size=50)


def test_encode_corpus_gives_an_int64_stream():
    text = "hello world\n"
    tokenizer = CharTokenizer.train(text)
    ids = encode_corpus(tokenizer, text)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert ids.tolist() == tokenizer.encode(text)
    with pytest.raises(UserError, match="corpus contains '!'"):
        encode_corpus(tokenizer, "hello!")


def test_encode_corpus_with_any_tokenizer_that_has_encode():
    class Bytes:
        def encode(self, text: str) -> list[int]:
            return list(text.encode())

    assert encode_corpus(Bytes(), "hé").tolist() == [104, 195, 169]
