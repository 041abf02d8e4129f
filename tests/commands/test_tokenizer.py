"""``seqkit tokenizer train``: one subprocess smoke test, bad input through ``main`` in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.data import BPETokenizer, CharTokenizer, load_tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n😀 漢字\n" * 20


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_cli_trains_a_bpe_folder_that_transformers_loads(corpus, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "tok"
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "tokenizer", "train", str(corpus), "--vocab-size",
         "300", "--out", str(out), "--special-tokens", "pad=<pad>", "eos=<|endoftext|>"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "bpe tokenizer with 300 tokens" in result.stdout
    tokenizer = load_tokenizer(out)
    assert isinstance(tokenizer, BPETokenizer)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1)
    stock = AutoTokenizer.from_pretrained(out)
    assert stock(TEXT)["input_ids"] == tokenizer.encode(TEXT)
    assert stock.eos_token_id == 1


def test_char_kind_with_default_and_no_special_tokens(corpus, tmp_path, capsys):
    assert (
        main(["tokenizer", "train", str(corpus), "--kind", "char", "--out", str(tmp_path / "a")])
        == 0
    )
    assert load_tokenizer(tmp_path / "a") == CharTokenizer.train(TEXT)
    argv = ["tokenizer", "train", str(corpus), "--kind", "char", "--out", str(tmp_path / "b")]
    assert main([*argv, "--special-tokens", "<pad>", "<mask>"]) == 0
    assert load_tokenizer(tmp_path / "b").mask_token_id == len(set(TEXT)) + 1


def run_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), lines
    return lines[0]


def test_bad_input_is_one_line_and_leaves_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    train = ["tokenizer", "train", "--out", str(out)]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9\n".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    text, vocab = str(corpus), ["--vocab-size", "300"]
    cases = {
        "is not UTF-8 text: byte 0xe9 at offset 3": [text, str(bad), *vocab],
        "is empty": [str(empty), *vocab],
        "smaller than the byte alphabet": [text, "--vocab-size", "100"],
        "smaller than the corpus alphabet": [text, "--kind", "char", "--vocab-size", "5"],
        "--vocab-size is required": [text],
        "does not exist": [str(tmp_path / "missing.txt"), *vocab],
        "unknown special-token role": [text, *vocab, "--special-tokens", "padding=<p>"],
    }
    for fragment, argv in cases.items():
        assert fragment in run_error([*train, *argv], capsys)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_refuses_to_overwrite_a_non_empty_folder(corpus, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    message = run_error(
        ["tokenizer", "train", str(corpus), "--vocab-size", "300", "--out", str(out)], capsys
    )
    assert "refusing to overwrite" in message
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert (
        main(["tokenizer", "train", str(corpus), "--vocab-size", "300", "--out", str(empty)]) == 0
    )
    assert (empty / "tokenizer.json").is_file()
