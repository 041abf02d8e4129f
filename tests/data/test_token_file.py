"""Pre-tokenized corpora: the token file equals the in-memory encoding, is cached by corpus and
tokenizer, reads windows in flat memory; the `pretokenized` data module trains the same model as
the `text` module; epochs too large to materialize are shuffled in constant memory."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seqkit.data import BPETokenizer, CausalLMDataset, CharTokenizer, encode_corpus
from seqkit.data.token_file import (
    TokenWindows,
    corpus_files,
    smallest_dtype,
    text_pieces,
    token_file,
)
from seqkit.errors import UserError
from seqkit.trainer import sampling
from seqkit.trainer.sampling import KeyedPermutation, ShardedBatchSampler

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 60


def test_pieces_cut_only_where_ids_do_not_change(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "b.txt").write_text("Second file.\n" + TEXT, encoding="utf-8-sig")  # a BOM
    files = corpus_files(tmp_path)
    whole = TEXT + "\n" + "Second file.\n" + TEXT
    pieces = list(text_pieces(files, piece_chars=100))
    assert "".join(pieces) == whole and len(pieces) > 10
    bpe = BPETokenizer.train(whole, 300)
    split = np.concatenate([bpe.encode_array(p) for p in pieces])
    assert split.tolist() == bpe.encode(whole)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_the_token_file_holds_the_corpus_ids_and_is_cached(tmp_path, num_proc):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    tokenizer = CharTokenizer.train(TEXT)
    files = corpus_files(tmp_path / "corpus.txt")
    ids, found = token_file(files, tokenizer, tmp_path / "cache", num_proc=num_proc)
    assert not found and ids.dtype == np.uint8 and len(ids) == len(TEXT)
    assert ids.read(0, len(ids)).tolist() == tokenizer.encode(TEXT)
    again, found = token_file(files, tokenizer, tmp_path / "cache")
    assert found and again.folder == ids.folder
    (tmp_path / "corpus.txt").write_text(TEXT + "more", encoding="utf-8")  # changed: re-encoded
    _, found = token_file(corpus_files(tmp_path / "corpus.txt"), tokenizer, tmp_path / "cache")
    assert not found
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_windows_equal_the_in_memory_windows(tmp_path):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    tokenizer = CharTokenizer.train(TEXT)
    ids, _ = token_file(corpus_files(tmp_path / "corpus.txt"), tokenizer, tmp_path / "cache")
    ours = TokenWindows(ids, 10, 500, block_size=16, stride=3)
    reference = CausalLMDataset(encode_corpus(tokenizer, TEXT)[10:500], 16, stride=3)
    assert len(ours) == len(reference)
    for i in (0, 1, len(ours) - 1):
        assert torch.equal(ours[i]["input_ids"], reference[i]["input_ids"])
        assert torch.equal(ours[i]["labels"], reference[i]["labels"])
    with pytest.raises(IndexError):
        ours[len(ours)]


def test_smallest_dtype_and_bad_paths(tmp_path):
    assert smallest_dtype(256) == np.uint8 and smallest_dtype(257) == np.uint16
    assert smallest_dtype(50257) == np.uint16 and smallest_dtype(70000) == np.uint32
    with pytest.raises(UserError, match="matches no file"):
        corpus_files(tmp_path / "*.txt")
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8 text near byte 3"):
        list(text_pieces([tmp_path / "bad.txt"]))


def test_the_pretokenized_module_trains_the_text_modules_model(tmp_path):
    """Same windows, same order, same weights: only where the ids live differs."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEQKIT_CACHE": str(tmp_path / "cache")}
    common = [
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "trainer.max_steps=4", "trainer.batch_size=4", "trainer.eval_every=2",
        "trainer.save_every=4", "trainer.progress_bar=false", "sample.prompt=First",
        f"data.path={corpus}",
    ]  # fmt: skip
    for module in ("text", "pretokenized"):
        sets = [a for s in [*common, f"data.module={module}"] for a in ("--set", s)]
        result = subprocess.run(
            [sys.executable, "-m", "seqkit", "train", "gpt/quickstart-pydoc-char", *sets,
             "--output-dir", str(tmp_path / module)],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    text = load_file(tmp_path / "text" / "final" / "model.safetensors")
    pretokenized = load_file(tmp_path / "pretokenized" / "final" / "model.safetensors")
    assert all(torch.equal(text[name], pretokenized[name]) for name in text)
    assert any((tmp_path / "cache" / "tokens").iterdir())


# ----------------------------------------------------------------------------- large epochs


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4099])
def test_the_keyed_permutation_is_a_seeded_bijection(n):
    order = KeyedPermutation(n, torch.Generator().manual_seed(3))(torch.arange(n))
    assert sorted(order.tolist()) == list(range(n))
    again = KeyedPermutation(n, torch.Generator().manual_seed(3))(torch.arange(n))
    assert torch.equal(order, again)
    if n >= 64:
        other = KeyedPermutation(n, torch.Generator().manual_seed(4))(torch.arange(n))
        assert not torch.equal(order, other) and not torch.equal(order, torch.arange(n))


def test_a_large_epoch_gives_each_window_to_one_process_once_and_resumes(monkeypatch):
    monkeypatch.setattr(sampling, "MATERIALIZED_LIMIT", 100)
    size, batch = 1000, 8

    def batches(process: int, start: tuple[int, int] = (0, 0)) -> list[list[int]]:
        sampler = ShardedBatchSampler(size, batch, seed=5, num_processes=2, process_index=process)
        sampler.set_position(*start)
        return list(sampler)

    first, second = batches(0), batches(1)
    seen = [i for b in first + second for i in b]
    assert len(seen) == len(set(seen)) == (size // (2 * batch)) * 2 * batch
    assert batches(0, (0, 7)) == first[7:]  # resume mid-epoch: the same batches follow
    assert batches(0, (1, 0)) != first  # the next epoch is shuffled anew


def test_a_billion_windows_cost_no_memory():
    sampler = ShardedBatchSampler(10**9, 4, seed=0)
    first = next(iter(sampler))  # a materialized permutation would need 8 GB
    assert len(first) == 4 and all(0 <= i < 10**9 for i in first)
