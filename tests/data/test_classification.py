"""The one reader of labelled text: SST-2-style TSV with a header, headerless LABEL<TAB>TEXT,
ChnSentiCorp-style CSV, validation files, and the seeded split every classifier family shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqkit.data.labelled import (
    LabelledDataSection,
    has_validation,
    labelled_splits,
    load_labelled,
    pydoc_prose_or_code,
    split_labelled,
)
from seqkit.errors import UserError
from seqkit.recipes import parse_section


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def section(**values) -> LabelledDataSection:
    return parse_section(LabelledDataSection, values, "data")


def test_tsv_with_a_header_row_like_sst2(tmp_path):
    path = write(
        tmp_path / "train.tsv",
        "label\tsentence\n0\tdull , lifeless film\n1\ta joy to watch\n\n1\tgood fun\n",
    )
    data = load_labelled(path=path, text_column="sentence")
    assert data.texts == ["dull , lifeless film", "a joy to watch", "good fun"]
    assert data.labels.tolist() == [0, 1, 1] and data.label_names == ["0", "1"]
    # The header names the columns; the default text column is not among them.
    with pytest.raises(UserError, match=r"train.tsv:1: the header row has no column 'text'"):
        load_labelled(path=path)
    bad = write(tmp_path / "bad.tsv", "label\tsentence\n1\ttoo\tmany\n")
    with pytest.raises(UserError, match=r"bad.tsv:2: expected 2 tab-separated fields"):
        load_labelled(path=bad, text_column="sentence")


def test_tsv_without_a_header_is_label_tab_text(tmp_path):
    path = write(tmp_path / "data.txt", "pos\tgreat\tfun\nneg\t awful \n")
    data = load_labelled(path=path)
    assert data.texts == ["great\tfun", "awful"]  # the text is everything after the first tab
    assert data.label_names == ["neg", "pos"] and data.labels.tolist() == [1, 0]
    empty = write(tmp_path / "empty.tsv", "pos\tfine\nneg\t \n")
    with pytest.raises(UserError, match=r"empty.tsv:2: empty label or text"):
        load_labelled(path=empty)


def test_csv_like_chnsenticorp(tmp_path):
    path = write(
        tmp_path / "train.csv",
        'label,review\n0,"房间太小,隔音差"\n1,服务很好，下次还来\n1,不错\n',
    )
    data = load_labelled(path=path, text_column="review")
    assert data.texts == ["房间太小,隔音差", "服务很好，下次还来", "不错"]
    assert data.labels.tolist() == [0, 1, 1] and data.label_names == ["0", "1"]


def test_split_is_seeded_and_drawn_by_torch(tmp_path):
    data = load_labelled(
        path=write(tmp_path / "d.tsv", "".join(f"{i % 3}\ttext {i}\n" for i in range(30)))
    )
    train, val = split_labelled(data, 0.1, seed=7)
    # The first 10% of torch.randperm validates: the split the README's classifier results used.
    order = torch.randperm(30, generator=torch.Generator().manual_seed(7)).tolist()
    assert val.texts == [f"text {i}" for i in order[:3]]
    assert train.texts == [f"text {i}" for i in order[3:]]
    assert split_labelled(data, 0.1, seed=7)[1].texts == val.texts
    assert split_labelled(data, 0.1, seed=8)[1].texts != val.texts
    np.testing.assert_array_equal(val.labels, [i % 3 for i in order[:3]])
    assert split_labelled(data, 0.0, seed=7)[1] is None
    with pytest.raises(UserError, match="keeps none for validation"):
        split_labelled(data, 0.01, seed=0)


def test_validation_file_replaces_the_split(tmp_path):
    train_path = write(tmp_path / "train.tsv", "label\tsentence\n0\tbad\n1\tgood\n1\tfine\n")
    dev_path = write(tmp_path / "dev.tsv", "label\tsentence\n1\tlovely\n0\tawful\n")
    data = section(path=train_path, val_path=dev_path, text_column="sentence", val_fraction=0.5)
    train, val = labelled_splits(data, seed=0)
    assert train.texts == ["bad", "good", "fine"]  # every training document trains
    assert val.texts == ["lovely", "awful"] and val.labels.tolist() == [1, 0]
    assert has_validation(data)
    assert not has_validation(section(path=train_path, val_fraction=0.0))
    # A validation label the training data never had is named, not silently given an id.
    odd = write(tmp_path / "odd.tsv", "label\tsentence\n2\tmeh\n")
    with pytest.raises(UserError, match=r"odd.tsv: row 0 has label '2'"):
        labelled_splits(section(path=train_path, val_path=odd, text_column="sentence"), seed=0)


def test_embedded_sets_and_the_default():
    data = pydoc_prose_or_code()
    assert data.label_names == ["code", "prose"] and len(data) > 1000
    train, val = labelled_splits(section(val_fraction=0.1), 0, "pydoc-prose-or-code")
    assert len(train) + len(val) == len(data)
    with pytest.raises(UserError, match="the recipe names no data"):
        labelled_splits(section(), 0)
