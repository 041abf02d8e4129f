"""Corpora: local files and folders, the embedded default, the Hub (offline), and dispatch."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from seqkit.data import EMBEDDED_CORPORA, load_corpus, load_embedded, load_hub_text, read_text_file
from seqkit.data import corpora as corpora_module
from seqkit.errors import UserError
from seqkit.recipes import DataSection


def test_reads_a_file_exactly(tmp_path):
    text = "line one\r\n\tline two  \n€ and 😀\n"
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode())
    assert read_text_file(path) == text
    assert read_text_file(str(path)) == text


def test_drops_a_utf8_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello")
    assert read_text_file(path) == "hello"


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(UserError, match=r"missing\.txt does not exist"):
        read_text_file(tmp_path / "missing.txt")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_not_utf8_names_the_file_and_byte_offset(tmp_path, bom):
    path = tmp_path / "latin1.txt"
    path.write_bytes(bom + b"caf" + "é".encode("latin-1") + b" and more")
    with pytest.raises(UserError) as error:
        read_text_file(path)
    message = str(error.value)
    assert str(path) in message
    assert f"0xe9 at offset {len(bom) + 3}" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_file_is_an_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(UserError) as error:
        read_text_file(path)
    assert str(path) in str(error.value)
    assert "empty" in str(error.value)


def test_folder_reads_txt_files_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "c.md").write_text("ignored")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.txt").write_text("not recursive")
    assert read_text_file(tmp_path) == "first\nsecond"


def test_folder_without_txt_files_is_an_error(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(UserError, match=r"no \*\.txt files"):
        read_text_file(tmp_path)


def test_folder_with_only_empty_files_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        read_text_file(tmp_path)


def test_pydoc_topics_is_embedded_and_sizeable():
    from pydoc_data.topics import topics

    text = load_embedded("pydoc-topics")
    assert "pydoc-topics" in EMBEDDED_CORPORA
    assert len(text) > 100_000
    first = sorted(topics)[0]
    assert text.startswith(topics[first])
    assert text == "\n\n".join(topics[key] for key in sorted(topics))


def test_unknown_embedded_corpus_lists_the_available_ones():
    with pytest.raises(UserError, match="pydoc-topics"):
        load_embedded("shakespeare")


@pytest.fixture
def offline(monkeypatch):
    # huggingface_hub and datasets read HF_HUB_OFFLINE when imported, so set the flag
    # datasets consults at call time as well as the environment variable.
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def test_hub_data_set_offline_is_one_line_user_error(offline):
    with pytest.raises(UserError) as error:
        load_hub_text("karpathy/tiny_shakespeare")
    message = str(error.value)
    assert "'karpathy/tiny_shakespeare'" in message
    assert "--set data.path=FILE" in message
    assert "\n" not in message


def test_unreachable_hub_fails_fast_without_offline_mode(monkeypatch):
    """With no offline flag, a failed connection probe stops before any retrying request."""
    import datasets

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    def must_not_be_called(*args, **kwargs):
        raise AssertionError("load_dataset should not be tried when the Hub is unreachable")

    for variable in corpora_module.PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(datasets, "load_dataset", must_not_be_called)
    with pytest.raises(UserError, match=r"not reachable.*--set data\.path=FILE"):
        load_hub_text("karpathy/tiny_shakespeare")


class FakeDataset:
    def __init__(self, columns: dict[str, list]):
        self.columns = columns
        self.column_names = list(columns)

    def __getitem__(self, column: str) -> list:
        return self.columns[column]


def test_hub_rows_are_joined_by_newlines(monkeypatch, offline):
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, *, split, **options):
        calls.append((name, split))
        return FakeDataset({"text": ["row one", "row two"], "label": [0, 1]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert load_hub_text("someone/set", split="validation") == "row one\nrow two"
    assert calls == [("someone/set", "validation")]
    with pytest.raises(UserError, match=r"no column 'content'.*text, label"):
        load_hub_text("someone/set", text_column="content")
    with pytest.raises(UserError, match="not text"):
        load_hub_text("someone/set", text_column="label")


def test_load_corpus_prefers_path_then_hub_then_embedded(tmp_path, monkeypatch):
    path = tmp_path / "corpus.txt"
    path.write_text("local text")
    monkeypatch.setattr(corpora_module, "load_hub_rows", lambda name, **options: [name])
    everything = DataSection(path=str(path), hub="some/set", embedded="pydoc-topics")
    assert load_corpus(everything) == "local text"
    assert load_corpus(DataSection(hub="some/set", embedded="pydoc-topics")) == "some/set"
    assert load_corpus(DataSection(embedded="pydoc-topics")) == load_embedded("pydoc-topics")
    with pytest.raises(UserError, match=r"data\.path, data\.hub or data\.embedded"):
        load_corpus(DataSection())


def test_documents_are_table_rows_or_else_non_blank_lines(tmp_path):
    import datasets

    from seqkit.data.corpora import load_documents

    reviews = ["first review,\nwith a line break", "  ", "third"]
    csv = tmp_path / "reviews.csv"
    datasets.Dataset.from_dict({"review": reviews, "label": [1, 0, 1]}).to_csv(csv)
    # Every row, blank ones and line breaks included: row i is the i-th labelled document.
    assert load_documents(DataSection(path=str(csv), text_column="review")) == reviews
    tsv = tmp_path / "phrases.tsv"
    tsv.write_text("label\tsentence\n1\ta fine film\n\n0\tdull\n", encoding="utf-8")
    assert load_documents(DataSection(path=str(tsv), text_column="sentence")) == [
        "a fine film",
        "dull",
    ]
    text = tmp_path / "plain.txt"
    text.write_text("one\n\n  \ntwo\tcolumns\n", encoding="utf-8")
    assert load_documents(DataSection(path=str(text))) == ["one", "two\tcolumns"]
    blank = tmp_path / "blank.jsonl"
    datasets.Dataset.from_dict({"text": [" ", "\n"]}).to_json(blank)
    with pytest.raises(UserError, match=r"blank\.jsonl has no text"):
        load_documents(DataSection(path=str(blank)))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_record_files_give_their_text_column_joined_by_newlines(tmp_path, suffix):
    import datasets

    rows = {"body": ["Thou art", 'more lovely, and more "temperate"'], "score": [1, 2]}
    path = tmp_path / f"corpus{suffix}"
    table = datasets.Dataset.from_dict(rows)
    {".jsonl": table.to_json, ".csv": table.to_csv, ".parquet": table.to_parquet}[suffix](path)
    text = "\n".join(rows["body"])
    assert load_corpus(DataSection(path=str(path), text_column="body")) == text
    with pytest.raises(UserError, match=r"has no column 'text' \(columns: body, score\)"):
        load_corpus(DataSection(path=str(path)))
    with pytest.raises(UserError, match=r"'score' of .* is not text"):
        load_corpus(DataSection(path=str(path), text_column="score"))


def test_a_tab_separated_file_with_a_header_gives_its_text_column(tmp_path):
    # SST-2's layout: pretraining on it must not read the labels as words.
    path = tmp_path / "labelled.tsv"
    path.write_text("label\tsentence\n0\tdull and slow\n\n1\ta warm , funny film\n")
    assert load_corpus(DataSection(path=str(path), text_column="sentence")) == (
        "dull and slow\na warm , funny film"
    )
    # A header without the column (or no header) is plain text, as a .txt file would be.
    assert load_corpus(DataSection(path=str(path))) == path.read_text()


def test_a_gpt_recipe_trains_on_a_jsonl_corpus(tmp_path):
    from seqkit.cli import main

    path = tmp_path / "poems.jsonl"
    path.write_text("".join(f'{{"text": "line {i} of the poem"}}\n' for i in range(200)), "utf-8")
    run = tmp_path / "run"
    tiny = ["model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.block_size=16"]
    settings = [*tiny, f"data.path={path}", "trainer.max_steps=2", "sample.prompt=line"]
    args = ["train", "gpt/shakespeare-char", "--output-dir", str(run)]
    assert main([*args, *(f"--set={s}" for s in settings)]) == 0
    assert (run / "final" / "model.safetensors").is_file()


@pytest.fixture
def local_hub_set(tmp_path) -> Path:
    """A data set laid out like a Hub repository (two splits of CSV), built here: nothing is
    downloaded, and ``datasets`` reads it by its folder name as it reads a Hub name."""
    folder = tmp_path / "reviews"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text("text,label\ngood,1\nbad,0\n", encoding="utf-8")
    (folder / "data" / "test.csv").write_text("text,label\nfine,1\n", encoding="utf-8")
    return folder


def test_a_hub_set_is_named_with_config_split_and_files(local_hub_set, offline):
    assert load_hub_text(str(local_hub_set), split="test") == "fine"
    assert load_hub_text(str(local_hub_set), data_files=["data/train.csv"]) == "good\nbad"
    data = DataSection(hub=str(local_hub_set), hub_split="test", text_column="text")
    assert load_corpus(data) == "fine"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"split": "validation"}, r"no such split 'validation'; it has \['train', 'test'\]"),
        ({"config": "sst2"}, r"no such config 'sst2'; it has \['default'\]; set data\.hub_config"),
        ({"text_column": "body"}, r"has no column 'body' \(columns: text, label\)"),
    ],
)
def test_each_failure_names_what_did_not_resolve(local_hub_set, offline, options, words):
    with pytest.raises(UserError, match=words) as error:
        load_hub_text(str(local_hub_set), **options)
    assert "\n" not in str(error.value)


def test_an_unknown_set_offline_says_the_hub_is_not_reachable(offline):
    with pytest.raises(UserError, match=r"'no-one/nothing'.*not reachable \(offline"):
        load_hub_text("no-one/nothing")
