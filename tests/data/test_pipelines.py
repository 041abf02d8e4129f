"""datasets-backed pipelines: files -> batched tokenization -> packed blocks or padded batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqkit.data import BPETokenizer, CharTokenizer, load_tokenizer
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


# ----------------------------------------------------------------------------- streaming

# The pieces the GPT-2 pre-tokenizer treats differently, so that every kind of cut is tried.
LAYOUT = st.lists(
    st.sampled_from(["a", "bc", " ", "\n", "\n\n", "  ", "=", "😀", "'s", "\t", "7", "é"]),
    min_size=1,
    max_size=300,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(LAYOUT)
def test_streamed_ids_equal_the_ids_of_the_whole_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("stream") / "text.txt"
    path.write_text(text, encoding="utf-8")
    # 5-byte reads split characters and force a cut (newline or space) almost every read.
    stream = StreamingBlocks([path], TOKENIZER, 1, chunk_bytes=5, max_pending_chars=10**9)
    streamed = [i for block in stream for i in block["input_ids"].tolist()]
    whole = TOKENIZER.encode(text)
    assert streamed == whole[: len(whole) // 2 * 2 : 2]  # blocks of 1 + 1: every other id


def test_streaming_encodes_the_file_a_chunk_at_a_time(tmp_path, monkeypatch):
    """The corpus is never read whole: each piece handed to the tokenizer is about one chunk,
    the first block comes after the first chunk, and text without a line break or space is
    cut at ``max_pending_chars``."""
    text = pydoc_topics()
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    tokenizer = CharTokenizer.train(text)
    pieces: list[int] = []
    encode_array = tokenizer.encode_array

    def recording(piece, **options):
        pieces.append(len(piece))
        return encode_array(piece, **options)

    monkeypatch.setattr(tokenizer, "encode_array", recording)
    chunk = 16_384
    stream = StreamingBlocks([path], tokenizer, 64, chunk_bytes=chunk)
    first = next(iter(stream))
    assert first["input_ids"].tolist() == tokenizer.encode(text[:64])
    assert pieces == [pieces[0]] and pieces[0] <= chunk
    pieces.clear()
    blocks = sum(1 for _ in stream)
    assert blocks == len(text) // 65
    assert sum(pieces) == len(text)
    assert len(pieces) >= len(text.encode()) // (chunk + 4096)
    assert max(pieces) <= chunk + 4096  # one read plus what the last cut left over

    # No line break and no space: cut at max_pending_chars all the same; BPE decodes back.
    solid = tmp_path / "solid.txt"
    solid.write_text("x" * 5_000, encoding="utf-8")
    pieces.clear()
    stream = StreamingBlocks([solid], tokenizer, 1, chunk_bytes=64, max_pending_chars=256)
    assert sum(1 for _ in stream) == 2_500
    assert max(pieces) <= 256 + 64 and sum(pieces) == 5_000
    stream = StreamingBlocks([solid], TOKENIZER, 1, chunk_bytes=64, max_pending_chars=256)
    ids = [i for block in stream for i in (*block["input_ids"], *block["labels"])]
    decoded = TOKENIZER.decode(ids)  # all ids but at most one odd one out
    assert ("x" * 5_000).startswith(decoded) and len(decoded) >= 4_900


def test_dataloader_workers_share_the_files(monkeypatch, tmp_path):
    paths = [tmp_path / f"{name}.txt" for name in "abcde"]
    for path in paths:
        path.write_text("abc\n", encoding="utf-8")
    stream = StreamingBlocks(paths, TOKENIZER, 1)
    assert stream._my_paths() == paths  # not under a DataLoader worker
    seen = []
    for worker in range(2):
        info = type("WorkerInfo", (), {"id": worker, "num_workers": 2})()
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        seen.append(stream._my_paths())
    assert seen == [paths[0::2], paths[1::2]]
    with pytest.raises(UserError, match="no data files"):
        StreamingBlocks([], TOKENIZER, 1)


# ----------------------------------------------------------------------------- the cache


def data_files(cache) -> list[str]:
    """What ``datasets`` keeps in a cache folder, its (empty) lock files aside."""
    return sorted(
        str(p.relative_to(cache))
        for p in cache.rglob("*")
        if not p.name.endswith(".lock") and (p.is_file() or p.name.endswith(".incomplete"))
    )


def test_records_built_in_memory_stay_in_memory(tmp_path):
    """Nothing would ever read a cache of a data set made from Python objects: no temp files."""
    import datasets

    records = datasets.Dataset.from_dict({"text": LINES[:50]})
    tokenized = tokenize(records, TOKENIZER)
    blocks = pack_blocks(tokenized, 8)
    assert tokenized.cache_files == [] and blocks.cache_files == []
    assert tokenized["input_ids"][0] == TOKENIZER.encode(LINES[0])


def test_tokenized_sets_are_reused_until_corpus_or_tokenizer_change(tmp_path):
    cache, corpus = tmp_path / "cache", tmp_path / "corpus.txt"
    corpus.write_text("\n".join(LINES[:50]) + "\n", encoding="utf-8")
    TOKENIZER.save_pretrained(tmp_path / "tokenizer")
    tokenizer = load_tokenizer(tmp_path / "tokenizer")
    first = tokenize(load_records(corpus, cache_dir=cache), tokenizer)
    [entry] = first.cache_files
    written = os.stat(entry["filename"]).st_mtime_ns

    again = tokenize(load_records(corpus, cache_dir=cache), load_tokenizer(tmp_path / "tokenizer"))
    assert again.cache_files == first.cache_files
    assert os.stat(entry["filename"]).st_mtime_ns == written  # read back, not written again
    assert again["input_ids"][:] == first["input_ids"][:]
    # Two worker processes give the same ids (a cache entry of their own: the shards differ).
    parallel = tokenize(load_records(corpus, cache_dir=cache), tokenizer, num_proc=2, batch_size=8)
    assert parallel["input_ids"][:] == first["input_ids"][:]

    # A fresh process (a second run of a recipe) finds the same entry.
    script = (
        "import sys; from seqkit.data import load_tokenizer; "
        "from seqkit.data.pipelines import load_records, tokenize; "
        "records = load_records(sys.argv[1], cache_dir=sys.argv[2]); "
        "print(tokenize(records, load_tokenizer(sys.argv[3])).cache_files[0]['filename'])"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(corpus), str(cache), str(tmp_path / "tokenizer")],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == entry["filename"]
    assert os.stat(entry["filename"]).st_mtime_ns == written

    other = BPETokenizer.train("\n".join(LINES), vocab_size=280)
    changed = tokenize(load_records(corpus, cache_dir=cache), other)
    assert changed.cache_files != first.cache_files
    assert changed[0]["input_ids"] == other.encode(LINES[0])

    corpus.write_text("\n".join(LINES[:50]) + "\nan added line\n", encoding="utf-8")
    edited = tokenize(load_records(corpus, cache_dir=cache), tokenizer)
    assert edited.cache_files != first.cache_files
    assert edited[len(edited) - 1]["input_ids"] == tokenizer.encode("an added line")


def test_bad_input_leaves_nothing_partial_in_the_cache(tmp_path):
    cache = tmp_path / "cache"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abc\ncab\nab!\n", encoding="utf-8")
    records = load_records(corpus, cache_dir=cache)
    before = data_files(cache)
    with pytest.raises(UserError, match=r"'!' \(U\+0021\)"):
        tokenize(records, CharTokenizer.train("abc"))  # fails in the third row
    assert data_files(cache) == before

    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text('text,label\n"never closed,1\n', encoding="utf-8")
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"text": "caf\u00e9"}\n'.encode("latin-1"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text(" \n\n", encoding="utf-8")
    for path, message in (
        (bad_csv, "cannot read .* as csv: .*EOF inside string"),
        (latin1, "not UTF-8 text: byte 0xe9 at offset 13"),
        (empty, "is empty"),
    ):
        with pytest.raises(UserError, match=message):
            load_records(path, cache_dir=cache)
        assert data_files(cache) == before, path


def test_utf8_check_reads_in_chunks_and_names_the_offset(tmp_path):
    from seqkit.data.pipelines import _check_utf8

    path = tmp_path / "text.txt"
    path.write_bytes("é😀 fine\n".encode() * 20)  # characters split across 3-byte reads
    _check_utf8(path, "text", chunk_bytes=3)
    good = "é😀 fine\n".encode() * 5
    path.write_bytes(good + b"\xc3(" + b"more")
    with pytest.raises(UserError, match=f"byte 0xc3 at offset {len(good)} "):
        _check_utf8(path, "text", chunk_bytes=3)
    path.write_bytes(b"  \n" * 10)
    with pytest.raises(UserError, match="is empty"):
        _check_utf8(path, "text", chunk_bytes=4)
