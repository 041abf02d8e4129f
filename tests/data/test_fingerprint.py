"""RUN/data.json: the inputs a run read, and --resume refusing a run whose data changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seqkit.data.fingerprint import FILE_NAME, check_unchanged, fingerprint, write_fingerprint
from seqkit.errors import UserError
from seqkit.recipes import recipe_from_dict

from ..cli.test_cli import QUICKSTART, TINY, assert_user_error, seqkit


def recipe_for(data: dict, tokenizer: dict | None = None):
    return recipe_from_dict({"task": "gpt", "data": data, "tokenizer": tokenizer or {}})


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("first part\n" * 50)
    (folder / "b.txt").write_text("second part\n" * 50)
    return folder


def test_the_record_names_each_file_with_size_and_hash(corpus):
    record = fingerprint(recipe_for({"path": str(corpus)}))
    files = record["data.path"]["files"]
    assert sorted(files) == ["a.txt", "b.txt"]
    assert files["a.txt"]["size"] == len("first part\n" * 50)
    assert len(files["a.txt"]["sha256"]) == 64


def test_unchanged_and_merely_touched_data_pass(corpus, tmp_path):
    recipe = recipe_for({"path": str(corpus)})
    write_fingerprint(recipe, tmp_path)
    check_unchanged(recipe, tmp_path)
    os.utime(corpus / "a.txt", ns=(1, 1))  # same bytes, other time: hashed again, still equal
    check_unchanged(recipe, tmp_path)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: (c / "a.txt").write_text("first PART\n" * 50), "a.txt has other contents"),
        (lambda c: (c / "b.txt").write_text("short\n"), "b.txt has 6 bytes, was 600"),
        (lambda c: (c / "b.txt").unlink(), "b.txt is gone"),
        (lambda c: (c / "c.txt").write_text("more\n"), "c.txt is new"),
    ],
    ids=["contents", "size", "gone", "new"],
)
def test_changed_data_is_refused_naming_the_change(corpus, tmp_path, change, words):
    recipe = recipe_for({"path": str(corpus)})
    run = tmp_path / "run"
    run.mkdir()
    write_fingerprint(recipe, run)
    change(corpus)
    with pytest.raises(UserError, match=words):
        check_unchanged(recipe, run)


def test_a_changed_tokenizer_folder_is_refused(corpus, tmp_path):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    recipe = recipe_for({"path": str(corpus)}, {"path": str(tokenizer)})
    run = tmp_path / "run"
    run.mkdir()
    write_fingerprint(recipe, run)
    (tokenizer / "tokenizer.json").write_text('{"x": 1}')
    with pytest.raises(UserError, match=r"tokenizer\.json has 8 bytes, was 2"):
        check_unchanged(recipe, run)


def test_a_hub_data_set_is_recorded_by_name_and_split(tmp_path):
    recipe = recipe_for({"hub": "karpathy/tiny_shakespeare", "hub_split": "train"})
    write_fingerprint(recipe, tmp_path)
    record = json.loads((tmp_path / FILE_NAME).read_text())
    assert record["data.hub"] == {
        "hub": "karpathy/tiny_shakespeare",
        "hub_split": "train",
        "text_column": "text",
    }
    check_unchanged(recipe, tmp_path)
    other = recipe_for({"hub": "karpathy/tiny_shakespeare", "hub_split": "test"})
    with pytest.raises(UserError, match="the Hub data set was"):
        check_unchanged(other, tmp_path)


def test_a_run_without_a_record_is_not_checked(tmp_path):
    check_unchanged(recipe_for({"path": "nowhere.txt"}), tmp_path)


def test_resume_after_the_corpus_changed_is_refused_through_the_cli(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text('The "quick" fox, to be, or not to be.\n' * 40)
    run = tmp_path / "run"
    result = seqkit("train", QUICKSTART, *TINY, "--set", f"data.path={corpus}",
                    "--output-dir", str(run))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run / FILE_NAME).read_text())["data.path"]["files"]["corpus.txt"]
    corpus.write_text('The "slow" fox, and longer than before it was.\n' * 40)
    result = seqkit("train", "--resume", str(run), "--set", "trainer.max_steps=6")
    assert_user_error(result, "the data changed since", "corpus.txt has")


def test_a_glob_records_its_matches_and_a_new_match_is_a_change(tmp_path):
    (tmp_path / "shards").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "shards" / name).write_text(f"{name} text\n" * 5, encoding="utf-8")
    recipe = recipe_from_dict({"task": "gpt", "data": {"path": str(tmp_path / "shards/*.txt")}})
    record = fingerprint(recipe)["data.path"]
    assert sorted(record["files"]) == ["a.txt", "b.txt"]
    write_fingerprint(recipe, tmp_path)
    check_unchanged(recipe, tmp_path)
    (tmp_path / "shards" / "c.txt").write_text("another shard\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"c\.txt is new"):
        check_unchanged(recipe, tmp_path)


def test_a_large_file_is_hashed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    """The next run on the same multi-GB corpus must not hash it again before its first step;
    a changed file (new size or time) is hashed afresh, and a damaged cache entry is ignored."""
    import hashlib

    from seqkit.data import fingerprint as module

    monkeypatch.setenv("SEQKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(module, "_CACHED_FROM_BYTES", 1000)
    big = tmp_path / "big.txt"
    big.write_text("x" * 5000, encoding="utf-8")
    hashed = []
    real = module._hash_file
    monkeypatch.setattr(module, "_hash_file", lambda path: hashed.append(path) or real(path))

    expected = hashlib.sha256(big.read_bytes()).hexdigest()
    assert module._sha256(big) == expected and len(hashed) == 1
    assert module._sha256(big) == expected and len(hashed) == 1  # from the cache
    entries = list((tmp_path / "cache" / "hashes").glob("*.json"))
    assert len(entries) == 1
    entries[0].write_text("not json", encoding="utf-8")
    assert module._sha256(big) == expected and len(hashed) == 2  # damaged: hashed again
    big.write_text("y" * 5001, encoding="utf-8")
    assert module._sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert len(hashed) == 3
    small = tmp_path / "small.txt"
    small.write_text("z" * 10, encoding="utf-8")
    module._sha256(small)
    assert len(list((tmp_path / "cache" / "hashes").glob("*.json"))) == 2  # small: no entry
