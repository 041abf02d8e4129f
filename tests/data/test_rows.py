"""Translation and classification corpora kept in Arrow (seqkit.data.arrow_rows): the rows read
once and cached, encoded once and cached, the same examples as the in-memory readers, Hub data
sets named as users write them, and local files, folders and globs of every format. Nothing is
downloaded: Hub sets are folders laid out like Hub repositories, built here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.data import arrow_rows
from seqkit.data.classification import LabelledText
from seqkit.data.corpora import load_corpus
from seqkit.data.hub import load_hub_dataset
from seqkit.data.labelled import (
    TextColumn,
    _encode_labels,
    labelled_splits,
    load_labelled,
    split_labelled,
)
from seqkit.data.seq2seq import (
    EncodedPairs,
    PairsSection,
    TranslationDataset,
    TranslationTokenizer,
    build_vocab,
    example_lengths,
    generated_pairs,
    load_pairs,
    read_parallel_folder,
)
from seqkit.errors import UserError
from seqkit.parts import resolve
from seqkit.recipes import RECIPES_DIR, DataSection

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def offline(monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def write_parallel(folder: Path, pairs, name: str = "train") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.de").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (folder / f"{name}.en").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")


# ----------------------------------------------------------------------------- arrow_rows


def test_rows_are_read_in_batches_between_any_two_rows(tmp_path):
    pairs = generated_pairs(2500)
    write_parallel(tmp_path / "corpus", pairs)
    rows = read_parallel_folder(tmp_path / "corpus", "de", "en", tmp_path / "cache")[0]
    assert len(rows.records.cache_files) == 1 and len(rows) == 2500  # written, then mapped
    assert list(rows) == pairs and rows[-1] == pairs[-1] and rows[10:12] == pairs[10:12]
    with pytest.raises(IndexError, match="pair 2500 out of range for 2500 pairs"):
        rows[2500]
    part = rows.rows(999, 2001)  # across the 1,000-row batches of the Arrow file
    assert list(part) == pairs[999:2001] and list(part.side(1)) == [t for _, t in pairs[999:2001]]
    again = read_parallel_folder(tmp_path / "corpus", "de", "en", tmp_path / "cache")[0]
    assert again.records.cache_files == rows.records.cache_files  # the cached rows


def test_a_reader_error_is_its_own_line_and_leaves_no_cache(tmp_path):
    write_parallel(tmp_path / "corpus", [("a", "b"), ("c", "d")])
    (tmp_path / "corpus" / "train.en").write_bytes(b"b\n\xff\n")
    with pytest.raises(UserError, match=r"train\.de / .*train\.en: not UTF-8 text"):
        read_parallel_folder(tmp_path / "corpus", "de", "en", tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.arrow"))


def check_encoded_pairs(tmp_path: Path, kinds: tuple[str, ...], num_proc: int) -> None:
    pairs = [*generated_pairs(300), ("", "empty source"), ("leer", "")]
    write_parallel(tmp_path / "corpus", pairs)
    rows, _ = read_parallel_folder(tmp_path / "corpus", "de", "en", tmp_path / "cache")
    for kind in kinds:
        vocab = build_vocab(rows.side(0), kind, vocab_size=300, min_freq=3)
        target = build_vocab(rows.side(1), kind, vocab_size=300, min_freq=3)
        tokenizer = TranslationTokenizer(vocab, target)
        expected = TranslationDataset(pairs, tokenizer, 6, 7)
        root = tmp_path / f"cache-{kind}"
        encoded = EncodedPairs(rows, tokenizer, 6, 7, root=root, num_proc=num_proc)
        assert [encoded[i] for i in range(len(encoded))] == [
            expected[i] for i in range(len(expected))
        ]
        counts = (encoded.unknown, encoded.truncated, encoded.skipped)
        assert counts == (expected.unknown, expected.truncated, expected.skipped)
        assert list(example_lengths(encoded)) == example_lengths(expected)
        assert encoded.pairs == pairs and not encoded.found
        assert EncodedPairs(rows, tokenizer, 6, 7, root=root).found


def test_encoded_pairs_are_the_in_memory_examples_and_come_from_the_cache(tmp_path):
    check_encoded_pairs(tmp_path, ("word", "bpe"), num_proc=1)


@pytest.mark.slow
def test_encoded_pairs_by_two_processes_are_the_same(tmp_path):
    check_encoded_pairs(tmp_path, ("word",), num_proc=2)


def test_encode_rows_reads_nothing_on_a_cache_hit(tmp_path):
    import pyarrow as pa

    def encoder(batch):
        return pa.table({"n": pa.array([len(t) for t in batch.column("t").to_pylist()])}), {
            "rows": batch.num_rows
        }

    batches = [pa.record_batch({"t": ["ab", "c"]}), pa.record_batch({"t": ["def"]})]
    rows, facts, found = arrow_rows.encode_rows(batches, encoder, {"k": 1}, tmp_path)
    assert rows["n"][:] == [2, 1, 3] and facts == {"rows": 3} and not found

    def nothing():
        raise AssertionError("a cache hit read the corpus")
        yield

    rows, facts, found = arrow_rows.encode_rows(nothing(), encoder, {"k": 1}, tmp_path)
    assert found and facts == {"rows": 3} and len(rows) == 3


# ----------------------------------------------------------------------------- translation


def translation_data(**fields) -> PairsSection:
    return PairsSection(**{"hub": None, **fields})


def test_translation_rows_from_a_translation_column_or_two_columns_in_any_format(tmp_path):
    import pandas as pd

    pairs = generated_pairs(40)
    frame = pd.DataFrame({"de": [s for s, _ in pairs], "en": [t for _, t in pairs]})
    frame.iloc[:20].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[20:].to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "parquet").mkdir()
    frame.to_parquet(tmp_path / "parquet" / "pairs.parquet")
    with (tmp_path / "pairs.jsonl").open("w", encoding="utf-8") as out:
        for s, t in pairs:
            out.write(json.dumps({"translation": {"de": s, "en": t}}) + "\n")
    cache = str(tmp_path / "cache")
    for path in (tmp_path / "pairs.jsonl", tmp_path / "*.csv", tmp_path / "parquet"):
        data = translation_data(path=str(path), val_fraction=0.25, cache_dir=cache)
        train, val = load_pairs(data)
        assert list(train) == pairs[:30] and list(val) == pairs[30:], path
    with pytest.raises(UserError, match=r"translation column has no 'fr' / 'en'.*set data\.source"):
        load_pairs(translation_data(path=str(tmp_path / "pairs.jsonl"), source_lang="fr"))
    with pytest.raises(UserError, match=r"no column 'fr' and no translation column \(columns: de"):
        load_pairs(translation_data(path=str(tmp_path / "*.csv"), source_lang="fr"))


@pytest.fixture
def hub_pairs(tmp_path) -> Path:
    """A Hub-like repository of sentence pairs with two configs (README.md ``configs``), each
    with train and validation splits, one as a translation column and one as two columns."""
    folder = tmp_path / "pairs-hub"
    pairs = generated_pairs(30)
    for config in ("dict", "columns"):
        (folder / config).mkdir(parents=True)
        for split, rows in (("train", pairs[:24]), ("validation", pairs[24:])):
            with (folder / config / f"{split}.jsonl").open("w", encoding="utf-8") as out:
                for s, t in rows:
                    row = {"translation": {"de": s, "en": t}} if config == "dict" else {"de": s}
                    if config == "columns":
                        row["en"] = t
                    out.write(json.dumps(row) + "\n")
    configs = "".join(
        f"- config_name: {c}\n  data_files:\n  - split: train\n    path: {c}/train.jsonl\n"
        f"  - split: validation\n    path: {c}/validation.jsonl\n"
        for c in ("dict", "columns")
    )
    (folder / "README.md").write_text(f"---\nconfigs:\n{configs}---\n", encoding="utf-8")
    return folder


def test_translation_from_a_hub_set_by_config_split_and_files(hub_pairs, offline):
    pairs = generated_pairs(30)
    for config in ("dict", "columns"):
        train, val = load_pairs(translation_data(hub=str(hub_pairs), hub_config=config))
        assert list(train) == pairs[:24] and list(val) == pairs[24:]
    data = translation_data(
        hub=str(hub_pairs), hub_data_files=["columns/validation.jsonl"], hub_val_split="train"
    )
    assert list(load_pairs(data)[0]) == pairs[24:]
    with pytest.raises(UserError, match=r"no such config 'other'; it has \['dict', 'columns'\]"):
        load_pairs(translation_data(hub=str(hub_pairs), hub_config="other"))
    data = translation_data(hub=str(hub_pairs), hub_config="dict", hub_val_split="test")
    with pytest.raises(UserError, match=r"no such split 'test'; it has \['train', 'validation'\]"):
        load_pairs(data)


TRANSLATION = RECIPES_DIR / "seq2seq" / "generated-attention.yaml"


def test_a_translation_run_on_files_resumes_to_the_same_weights(tmp_path, capsys):
    """Killed after its step-2 checkpoint, a run on a parallel folder resumes to the weights of
    the uninterrupted run; the second run reads its rows and encodings from the cache."""
    pairs = generated_pairs(80)
    write_parallel(tmp_path / "corpus", pairs[:64])
    write_parallel(tmp_path / "corpus", pairs[64:], "val")
    settings = [
        "model.embedding_dim=8", "model.hidden_size=8", f"data.path={tmp_path / 'corpus'}",
        "data.source_lang=de", "data.target_lang=en",
        f"data.cache_dir={tmp_path / 'cache'}", "trainer.max_steps=4", "trainer.batch_size=8",
        "trainer.eval_every=4", "trainer.save_every=2", "trainer.progress_bar=false",
        "trainer.report_to=[]",
    ]  # fmt: skip
    args = [f"--set={s}" for s in settings]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", str(TRANSLATION), "--output-dir", str(whole), *args]) == 0
    told = capsys.readouterr()
    assert "pairs (train / validation): 64 / 16" in told.out + told.err
    shutil.copytree(whole, cut)
    shutil.rmtree(cut / "final")
    shutil.rmtree(cut / "checkpoints" / "step-4")
    assert main(["train", str(TRANSLATION), "--output-dir", str(cut), "--resume", *args]) == 0
    for name in ("model.safetensors",):
        assert (cut / "final" / name).read_bytes() == (whole / "final" / name).read_bytes()


# ----------------------------------------------------------------------------- classification


def write_tsv(path: Path, rows, header: str | None = "label\tsentence") -> None:
    lines = ([header] if header else []) + [f"{label}\t{text}" for label, text in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


ROWS = [("pos" if i % 3 else "neg", f"text number {i} " + "word " * (i % 7)) for i in range(60)]


def test_a_tab_separated_file_becomes_a_text_column_with_the_in_memory_labels(tmp_path):
    write_tsv(tmp_path / "train.tsv", ROWS)
    data = load_labelled(path=str(tmp_path / "train.tsv"), text_column="sentence")
    expected = _encode_labels([t.strip() for _, t in ROWS], [lab for lab, _ in ROWS], None, "")
    assert isinstance(data.texts, TextColumn) and data.texts == expected.texts
    assert data.label_names == expected.label_names and (data.labels == expected.labels).all()
    train, val = split_labelled(data, 0.2, seed=3)
    in_memory = split_labelled(expected, 0.2, seed=3)
    assert train.texts == in_memory[0].texts and val.texts == in_memory[1].texts
    assert val.texts[-1] == in_memory[1].texts[-1] and val.texts[-12] == in_memory[1].texts[0]
    with pytest.raises(IndexError, match="text -13 out of range for 12 texts"):
        val.texts[-13]
    assert sorted(train.texts.stream()) == sorted(in_memory[0].texts)  # storage order


def test_labelled_rows_from_folders_and_globs_of_records(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"review": [t for _, t in ROWS], "label": [lab for lab, _ in ROWS]})
    (tmp_path / "csv").mkdir()
    frame.iloc[:30].to_csv(tmp_path / "csv" / "a.csv", index=False)
    frame.iloc[30:].to_csv(tmp_path / "csv" / "b.csv", index=False)
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "rows.parquet")
    for path in (tmp_path / "csv", tmp_path / "*.jsonl", tmp_path / "rows.parquet"):
        data = load_labelled(path=str(path), text_column="review", cache_dir=str(tmp_path / "c"))
        assert list(data.texts) == [t for _, t in ROWS], path
        assert data.label_names == ["neg", "pos"] and data.labels[:3].tolist() == [0, 1, 1]
    (tmp_path / "csv" / "c.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"several formats \(\.csv, \.jsonl\)"):
        load_labelled(path=str(tmp_path / "csv"), text_column="review")


@pytest.fixture
def hub_labels(tmp_path) -> Path:
    """A Hub-like repository: configs ``sst2`` and ``cola`` of Parquet splits with a
    ``ClassLabel`` label column, as GLUE is laid out."""
    import datasets

    folder = tmp_path / "glue"
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])}
    )
    for config in ("sst2", "cola"):
        (folder / config).mkdir(parents=True)
        for split, count in (("train", 20), ("validation", 6)):
            rows = {"sentence": [f"{config} {split} {i}" for i in range(count)]}
            rows["label"] = [i % 2 for i in range(count)]
            frame = datasets.Dataset.from_dict(rows, features=features)
            frame.to_parquet(str(folder / config / f"{split}.parquet"))
    configs = "".join(
        f"- config_name: {c}\n  data_files:\n  - split: train\n    path: {c}/train.parquet\n"
        f"  - split: validation\n    path: {c}/validation.parquet\n"
        for c in ("sst2", "cola")
    )
    (folder / "README.md").write_text(f"---\nconfigs:\n{configs}---\n", encoding="utf-8")
    return folder


def test_classification_from_a_hub_set_by_config_split_and_files(hub_labels, offline):
    from seqkit.data.classification import LabelledTextSection

    data = LabelledTextSection(
        hub=str(hub_labels),
        hub_config="cola",
        hub_split="validation",
        text_column="sentence",
        val_fraction=0.5,
    )
    train, val = labelled_splits(data, seed=0)
    assert len(train) + len(val) == 6 and train.label_names == ["no", "yes"]
    assert all(text.startswith("cola validation") for text in train.texts)
    data.hub_data_files, data.hub_config, data.hub_split = ["sst2/train.parquet"], None, "train"
    train, val = labelled_splits(data, seed=0)
    assert len(train) + len(val) == 20 and train.texts[0].startswith("sst2 train")
    data.hub_data_files, data.label_column = None, "stars"
    data.hub_config = "sst2"
    with pytest.raises(UserError, match=r"has no column 'stars' \(columns: sentence, label\)"):
        labelled_splits(data, seed=0)


def test_a_classifier_on_a_large_corpus_reads_a_stream_and_caches_its_encoding(tmp_path):
    write_tsv(tmp_path / "train.tsv", ROWS)
    recipe = resolve.load_recipe(
        RECIPES_DIR / "rnn" / "sst2-lstm-classifier.yaml",
        [
            f"data.path={tmp_path / 'train.tsv'}", "data.val_path=null", "data.val_fraction=0.2",
            f"data.cache_dir={tmp_path / 'cache'}", "tokenizer.vocab_size=300",
            "data.tokenizer_sample_chars=200", "model.max_length=5",
        ],
    )  # fmt: skip
    module = LabelledText(recipe)
    module.builder = None
    tokenizer = module.tokenizer(None)
    assert tokenizer.vocab_size < 300  # 200 characters teach few merges
    prepared = module.prepare(tokenizer, 5, None)
    train, val, _ = module.splits()
    row = prepared.train_data[0]
    assert row["input_ids"].tolist() == tokenizer.encode(train.texts[0])[:5]
    assert row["labels"] == train.labels[0] and len(prepared.eval_data) == len(val) == 12
    hits = sorted((tmp_path / "cache" / "encoded").iterdir())
    module.prepare(tokenizer, 5, None)  # the same rows and tokenizer: from the cache
    assert sorted((tmp_path / "cache" / "encoded").iterdir()) == hits and len(hits) == 2


# ----------------------------------------------------------------------------- hub and paths


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("no-one/nothing", {}, r"'no-one/nothing'.*the Hub is not reachable \(offline"),
        ("./no/such/folder", {}, r"no such data set \(no folder \./no/such/folder\)"),
        ("{repo}", {"data_files": ["data/nope.csv"]}, r"no such data files; set data\.hub_data"),
        ("{repo}", {"config": "sst2"}, r"no such config 'sst2'; it has \['default'\]"),
        ("{repo}", {"split": "dev"}, r"no such split 'dev'; it has \['train'\]"),
        ("{repo}", {"revision": "v1"}, r"revision 'v1': a local folder has no revisions"),
    ],
)
def test_each_hub_failure_is_one_line_that_names_it(tmp_path, offline, name, options, words):
    (tmp_path / "repo" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "data" / "train.csv").write_text("text,label\ngood,1\n")
    with pytest.raises(UserError, match=words) as error:
        load_hub_dataset(name.format(repo=tmp_path / "repo"), **options)
    assert "\n" not in str(error.value)


def test_a_set_missing_from_a_reachable_hub_is_no_such_data_set(monkeypatch):
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    def missing(*args, **kwargs):
        raise DatasetNotFoundError("Dataset 'no-one/nothing' doesn't exist on the Hub")

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("seqkit.data.corpora.hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", missing)
    with pytest.raises(UserError, match=r"'no-one/nothing'.*no such data set on the Hub"):
        load_hub_dataset("no-one/nothing")


def test_a_language_model_reads_globs_and_folders_of_records_and_text(tmp_path):
    import pandas as pd

    (tmp_path / "rows").mkdir()
    pd.DataFrame({"text": ["one", "two"]}).to_parquet(tmp_path / "rows" / "a.parquet")
    pd.DataFrame({"text": ["three"]}).to_parquet(tmp_path / "rows" / "b.parquet")
    (tmp_path / "t1.txt").write_text("first", encoding="utf-8")
    (tmp_path / "t2.txt").write_text("second", encoding="utf-8")
    assert load_corpus(DataSection(path=str(tmp_path / "rows"))) == "one\ntwo\nthree"
    assert load_corpus(DataSection(path=str(tmp_path / "rows" / "*.parquet"))) == (
        "one\ntwo\nthree"
    )
    assert load_corpus(DataSection(path=str(tmp_path / "t*.txt"))) == "first\nsecond"
    with pytest.raises(UserError, match="matches no file"):
        load_corpus(DataSection(path=str(tmp_path / "*.csv")))
