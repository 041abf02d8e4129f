"""datasets-backed pipelines: files -> batched tokenization -> packed blocks or padded batches."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit.data import BPETokenizer, CharTokenizer
from seqkit.data.corpora import pydoc_topics
from seqkit.data.pipelines import (
    ClassificationCollator,
    StreamingBlocks,
    causal_lm_collate,
    load_records,
    masked_lm_collator,
    pack_blocks,
    split_eval,
    tokenize,
)
from seqkit.errors import UserError

LINES = [line for line in pydoc_topics()[:20_000].splitlines() if line.strip()][:200]
TOKENIZER = BPETokenizer.train("\n".join(LINES), vocab_size=300)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def test_text_file_is_tokenized_and_packed_without_padding(text_file):
    records = load_records(path=text_file)
    assert records["text"] == LINES
    tokenized = tokenize(records, TOKENIZER)
    assert tokenized.column_names == ["input_ids"]
    assert tokenized[3]["input_ids"] == TOKENIZER.encode(LINES[3])
    eos = TOKENIZER.eos_token_id
    blocks = pack_blocks(tokenized, block_size=16, eos_token_id=eos)
    stream = [i for line in LINES for i in [*TOKENIZER.encode(line), eos]]
    assert len(blocks) == len(stream) // 17
    batch = causal_lm_collate([blocks[i] for i in range(3)])
    assert batch["input_ids"].shape == batch["labels"].shape == (3, 16)
    assert batch["input_ids"][1].tolist() == stream[17 : 17 + 16]
    assert batch["labels"][1].tolist() == stream[18 : 18 + 16]  # next-token targets
    train, held_out = split_eval(blocks, 0.1, seed=0)
    assert len(train) + len(held_out) == len(blocks) and len(held_out) >= 1


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_classification_rows_are_padded_dynamically(tmp_path, suffix):
    rows = [{"text": "short", "label": 0}, {"text": "a much longer document here", "label": 1}]
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        path.write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenized = tokenize(load_records(path=path), TOKENIZER, keep_columns=["label"])
    collate = ClassificationCollator(TOKENIZER.pad_token_id, num_labels=2)
    batch = collate([tokenized[0], tokenized[1]])
    lengths = [len(TOKENIZER.encode(r["text"])) for r in rows]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == TOKENIZER.pad_token_id).all()
    assert batch["labels"].tolist() == [0, 1]
    with pytest.raises(UserError, match="label 5 is outside the 2 declared classes"):
        collate([{"input_ids": [1, 2], "label": 5}])


def test_masked_lm_collator_uses_the_declared_special_tokens():
    collate = masked_lm_collator(TOKENIZER, generator=torch.Generator().manual_seed(0))
    ids = TOKENIZER.encode(" ".join(LINES[:20]))
    row = [TOKENIZER.cls_token_id, *ids, TOKENIZER.sep_token_id]
    batch = collate([torch.tensor(row), torch.tensor(row[:10])])
    targets = batch["labels"] != -100
    assert targets.any()
    assert not targets[:, 0].any()  # the cls token is never a target
    assert not targets[0, -1]  # nor the sep token
    with pytest.raises(UserError, match="needs a mask token"):
        masked_lm_collator(CharTokenizer.train("abc", ["<pad>"]))


def test_bad_inputs(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    with pytest.raises(UserError, match="not UTF-8 text: byte 0xff at offset 3"):
        load_records(path=bad)
    with pytest.raises(UserError, match="cannot tell the format"):
        (tmp_path / "data.xml").write_text("<a/>")
        load_records(path=tmp_path / "data.xml")
    with pytest.raises(UserError, match="does not exist"):
        load_records(path=tmp_path / "missing.csv")
    short = tmp_path / "short.txt"
    short.write_text("tiny\n")
    with pytest.raises(UserError, match="shorter than one block"):
        pack_blocks(tokenize(load_records(path=short), TOKENIZER), block_size=64)
    with pytest.raises(UserError, match="no column 'body'"):
        tokenize(load_records(path=short), TOKENIZER, text_column="body")


def test_streaming_blocks_equal_the_in_memory_stream(tmp_path):
    text = "\n".join(LINES) + "\n\n  tail 😀\n"
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(text, encoding="utf-8")
    second.write_text(text[:3000], encoding="utf-8")
    eos = TOKENIZER.eos_token_id
    # Tiny chunks force many cuts and multi-byte characters split across reads.
    stream = StreamingBlocks([first, second], TOKENIZER, 8, eos_token_id=eos, chunk_bytes=97)
    blocks = list(stream)
    ids = [*TOKENIZER.encode(text), eos, *TOKENIZER.encode(text[:3000]), eos]
    assert len(blocks) == len(ids) // 9
    for k in (0, 5, len(blocks) - 1):
        assert blocks[k]["input_ids"].tolist() == ids[9 * k : 9 * k + 8]
        assert blocks[k]["labels"].tolist() == ids[9 * k + 1 : 9 * k + 9]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(("x" * 200).encode() + b"\xfe" + b"y" * 50)
    with pytest.raises(UserError, match="byte at offset 200 cannot be decoded"):
        list(StreamingBlocks([bad], TOKENIZER, 8, chunk_bytes=64))
