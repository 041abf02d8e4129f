"""Labelled text, read and split: the corpora every family that classifies text reads
(``bow-classifier``, ``rnn-classifier``, ``bert-classifier``), the ``data`` fields they share
(:class:`LabelledDataSection`), and the seeded train/validation split.

The embedded default, ``python-docstrings``, is a topic-classification set built from the
docstrings of the Python standard library that every CPython ships: each public function, class
and method of a fixed list of modules is one document, labelled with the area its module belongs
to (text processing, numbers, files, networking, concurrency, data formats, dates and times).
Docstrings shorter than 40 characters are dropped, and so is any docstring that appears under two
different areas (``Return str(self).``) — its label would be a coin toss. It needs no download,
which is what tests and the quickstart need; its exact size depends on the Python version
(~1,750 documents on CPython 3.11). The second embedded set, ``pydoc-prose-or-code``, labels
the lines of CPython's pydoc topics as prose or code (:func:`prose_or_code_lines`).

Real data comes from a local file or a Hub data set with a text column and a label column:

* CSV, JSON, JSONL or Parquet (read by ``datasets``), e.g. ChnSentiCorp's ``label,review`` CSV;
* any other file is tab-separated: either with a header row that names the columns (GLUE's
  SST-2 ``label<TAB>sentence``), or without one, each line ``LABEL<TAB>TEXT``.

Validation data is a second file of the same format (``data.val_path``, e.g. SST-2's dev set) or
a seeded random share of the documents (``data.val_fraction``).

Files and Hub data sets are never read into lists: a file becomes cached Arrow rows (a
tab-separated one a line at a time), the texts stay there as a :class:`TextColumn` and only the
labels (one integer a text) are held. The embedded sets are small and made in memory. How the
models that read tokens encode these texts is :mod:`seqkit.data.classification`'s; the
bag-of-words vectorizers are :mod:`seqkit.data.bow`'s.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqkit.data.arrow_rows import row_position
from seqkit.errors import UserError
from seqkit.recipes import DataSection

DOCSTRING_TOPICS: dict[str, tuple[str, ...]] = {
    "text": ("string", "re", "textwrap", "difflib", "unicodedata", "html", "html.parser",
             "codecs", "locale", "gettext"),
    "numbers": ("math", "cmath", "statistics", "decimal", "fractions", "random", "numbers"),
    "files": ("os", "os.path", "shutil", "pathlib", "glob", "fnmatch", "tempfile", "io",
              "zipfile", "tarfile", "filecmp", "stat"),
    "network": ("socket", "ssl", "http.client", "http.server", "urllib.request",
                "urllib.parse", "email.message", "smtplib", "ftplib", "ipaddress"),
    "concurrency": ("threading", "multiprocessing", "asyncio", "concurrent.futures", "queue",
                    "subprocess", "sched", "selectors"),
    "data-formats": ("json", "csv", "pickle", "sqlite3", "configparser",
                     "xml.etree.ElementTree", "base64", "struct", "plistlib"),
    "dates": ("datetime", "time", "calendar", "zoneinfo"),
}  # fmt: skip
"""Label -> standard-library modules whose docstrings carry that label."""
MIN_DOCSTRING_CHARS = 40


@dataclass
class LabelledTexts:
    """Documents, their integer labels, and the class names the integers index.

    ``texts`` is a list (the embedded sets, made in memory) or a :class:`TextColumn` (files
    and Hub data sets: the texts stay in Arrow, read as they are needed)."""

    texts: Sequence[str]
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabelledTexts:
        if isinstance(self.texts, TextColumn):
            texts: Sequence[str] = self.texts.subset(indices)
        else:
            texts = [self.texts[i] for i in indices]
        return LabelledTexts(
            texts, self.labels[np.asarray(indices, dtype=np.int64)], self.label_names
        )


class TextColumn(Sequence[str]):
    """One text column of Arrow rows (a ``datasets.Dataset``), all of its rows or the rows
    ``rows`` (indices, in that order): a sequence of strings like a list, without the list.

    Indexing reads one row through the memory map; :meth:`stream` reads the selected texts in
    storage order as a stream of record batches (:func:`seqkit.data.arrow_rows.record_batches`),
    which is how a tokenizer learns from a corpus of any size with flat memory (neither the
    character nor the BPE vocabulary depends on the order of the texts it learns from).
    """

    def __init__(self, records: Any, column: str, rows: np.ndarray | None = None) -> None:
        self.records, self.column, self.rows = records, column, rows

    def __len__(self) -> int:
        return len(self.records) if self.rows is None else len(self.rows)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextColumn:
        """The texts at ``indices`` of this column, in that order."""
        picked = np.asarray(indices, dtype=np.int64)
        return TextColumn(
            self.records, self.column, picked if self.rows is None else self.rows[picked]
        )

    def row_numbers(self) -> np.ndarray:
        """The rows of the data set these texts are, in order."""
        return np.arange(len(self.records)) if self.rows is None else self.rows

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = row_position(index, len(self), "text")
        row = index if self.rows is None else int(self.rows[index])
        return self.records[row][self.column]

    def __iter__(self) -> Iterator[str]:
        if self.rows is None:
            yield from self.stream()
            return
        for start in range(0, len(self.rows), 1000):
            yield from self.records[self.rows[start : start + 1000].tolist()][self.column]

    def stream(self) -> Iterator[str]:
        """The texts in storage order (not the order of ``rows``), read batch by batch."""
        from seqkit.data.arrow_rows import record_batches

        chosen = None
        if self.rows is not None:
            chosen = np.zeros(len(self.records), dtype=bool)
            chosen[self.rows] = True
        at = 0
        for batch in record_batches(self.records):
            texts = batch.column(self.column).to_pylist()
            if chosen is not None:
                keep = chosen[at : at + len(texts)]
                texts = [text for text, kept in zip(texts, keep, strict=True) if kept]
            at += batch.num_rows
            yield from texts

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same texts (a list, say)."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def python_docstrings() -> LabelledTexts:
    """The embedded topic set (see the module docstring); deterministic for a Python version."""
    areas_of: dict[str, set[str]] = {}
    for label, modules in DOCSTRING_TOPICS.items():
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # a Python built without ssl or sqlite3: skip the module
                continue
            for doc in _docstrings_of(module):
                areas_of.setdefault(doc, set()).add(label)
    names = list(DOCSTRING_TOPICS)
    pairs = sorted(
        (names.index(next(iter(areas))), doc) for doc, areas in areas_of.items() if len(areas) == 1
    )
    return LabelledTexts(
        [doc for _, doc in pairs], np.array([label for label, _ in pairs], dtype=np.int64), names
    )


def _docstrings_of(module) -> list[str]:
    """Docstrings of a module's public functions and classes and of those classes' methods."""
    found = []
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        members = [obj]
        if inspect.isclass(obj):
            members += [
                value
                for key, value in sorted(vars(obj).items())
                if not key.startswith("_") and inspect.isroutine(value)
            ]
        for member in members:
            doc = inspect.getdoc(member)
            if doc and len(doc) >= MIN_DOCSTRING_CHARS:
                found.append(doc)
    return found


def prose_or_code_lines() -> list[tuple[str, str]]:
    """The ``pydoc-prose-or-code`` rows ``(label, line)``: lines of CPython's pydoc topics
    (shipped with every Python), labelled ``code`` for literal blocks (example code, grammar
    rules, tracebacks, tables: the indented block after a line that ends with a colon, and
    doctest lines) and ``prose`` for unindented text. Indentation is stripped, so a model must
    tell them apart by what the line says."""
    from pydoc_data.topics import topics

    rows = []
    for name in sorted(topics):
        in_block = False
        for line in topics[name].splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if not line.startswith(" "):
                in_block = stripped.endswith(":")
                if len(stripped) >= 20 and not in_block:
                    rows.append(("prose", stripped))
            elif (in_block or stripped.startswith((">>> ", "... "))) and len(stripped) >= 8:
                rows.append(("code", stripped))
    return rows


def pydoc_prose_or_code() -> LabelledTexts:
    """:func:`prose_or_code_lines` as labelled texts (classes sorted: code, prose)."""
    rows = prose_or_code_lines()
    return _encode_labels([text for _, text in rows], [label for label, _ in rows], None, "")


EMBEDDED_CLASSIFICATION = {
    "python-docstrings": python_docstrings,
    "pydoc-prose-or-code": pydoc_prose_or_code,
}
"""Labelled corpora that need no download: name (as in ``data.embedded``) -> loader."""
RECORD_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")
"""Files read as records by ``datasets``; any other file is read as tab-separated text."""


@dataclass
class LabelledDataSection(DataSection):
    """The ``data`` fields every text-classification family reads (on top of the common ones:
    ``path``, ``hub``, ``embedded``, ``text_column``, ``val_fraction``)."""

    label_column: str = "label"
    """Column of a file or Hub data set that holds each document's class."""
    labels: list[str] | None = None
    """The classes, in id order; a label outside them is an error (default: those found,
    sorted)."""
    val_path: str | None = None
    """A labelled file of the same format held out for validation (e.g. SST-2's dev.tsv);
    when set, data.val_fraction is not used and every document of data.path trains."""
    cache_dir: str | None = None
    """Folder of the cached Arrow rows of data.path files and of their encodings (default:
    $SEQKIT_CACHE/rows, else ~/.cache/seqkit/rows)."""

    def __post_init__(self) -> None:
        from seqkit.checks import check_path, show

        super().__post_init__()
        if self.val_path:
            check_path("data.val_path", self.val_path)
        self.check_encoding_settings()
        if self.labels is not None:
            if len(self.labels) < 2:
                raise UserError(
                    f"data.labels must name at least 2 classes, got {show(self.labels)}"
                )
            if len(set(self.labels)) != len(self.labels):
                raise UserError(f"data.labels must not repeat a class, got {show(self.labels)}")


def load_labelled(
    *,
    path: str | None = None,
    hub: str | None = None,
    embedded: str | None = None,
    split: str = "train",
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
    hub_config: str | None = None,
    hub_revision: str | None = None,
    hub_data_files: list[str] | None = None,
    cache_dir: str | None = None,
) -> LabelledTexts:
    """Labelled documents from local files (see the module docstring for the formats), a Hub
    data set (by name, ``hub_config``, ``split``, ``hub_revision`` and ``hub_data_files``), or
    an embedded set — first of those given. ``labels`` declares the classes (in id order); a
    label outside them is an error. Without it the classes are the sorted distinct labels
    found (a Hub ``ClassLabel`` column keeps its own names). Files and Hub sets stay in Arrow
    (``cache_dir``, default seqkit's cache): the texts are a :class:`TextColumn`."""
    from seqkit.data.pipelines import names_records

    if path and not names_records(path):
        return read_tab_separated(path, text_column, label_column, labels, cache_dir=cache_dir)
    if path or hub:
        from seqkit.data.pipelines import load_records

        records = load_records(
            path=path,
            hub=hub,
            split=split,
            cache_dir=None if hub else _files_cache(cache_dir),
            config=hub_config,
            revision=hub_revision,
            data_files=hub_data_files,
        )
        where = str(path or hub)
        for column in (text_column, label_column):
            if column not in records.column_names:
                raise UserError(
                    f"{where} has no column {column!r} (columns: "
                    f"{', '.join(records.column_names)}); set data.text_column / data.label_column"
                )
        _check_all_text(records, text_column, where)
        texts = TextColumn(records, text_column)
        feature = records.features[label_column]
        if hasattr(feature, "names") and labels is None:  # a datasets ClassLabel
            from seqkit.data.arrow_rows import encoded_column

            ids = encoded_column(records, label_column).astype(np.int64)
            return LabelledTexts(texts, ids, list(feature.names))
        return _label_rows(texts, records, label_column, labels, where)
    if embedded:
        if embedded not in EMBEDDED_CLASSIFICATION:
            raise UserError(
                f"unknown embedded labelled corpus {embedded!r}; available: "
                f"{', '.join(sorted(EMBEDDED_CLASSIFICATION))}"
            )
        data = EMBEDDED_CLASSIFICATION[embedded]()
        if labels is not None and list(labels) != data.label_names:
            raise UserError(
                f"data.labels {list(labels)} differ from {embedded}'s classes {data.label_names}"
            )
        return data
    raise UserError("the recipe names no data: set data.path, data.hub or data.embedded")


def _files_cache(cache_dir: str | None) -> Path:
    from seqkit.data.arrow_rows import rows_cache_root

    return rows_cache_root(cache_dir) / "files"


def _tab_rows(path: str, text_column: str, label_column: str) -> Iterator[dict[str, str]]:
    """Rows ``{"text", "label"}`` of a tab-separated file (see :func:`read_tab_separated`),
    read a line at a time: the generator :func:`read_tab_separated` writes into Arrow."""
    file = Path(path)
    header: list[str] | None = None
    has_header = False
    text_at = label_at = 0
    with file.open(encoding="utf-8-sig") as handle:
        number = 0
        for physical in handle:
            for line in physical.splitlines():
                number += 1
                if not line.strip():
                    continue
                if header is None:
                    header = line.split("\t")
                    # A first line that names either column is a header: then it must name both.
                    has_header = label_column in header or text_column in header
                    if has_header:
                        for column in (text_column, label_column):
                            if column not in header:
                                raise UserError(
                                    f"{file}:{number}: the header row has no column {column!r} "
                                    f"(columns: {', '.join(header)}); set data.text_column / "
                                    "data.label_column"
                                )
                        text_at, label_at = header.index(text_column), header.index(label_column)
                        continue
                if has_header:
                    fields = line.split("\t")
                    if len(fields) != len(header):
                        raise UserError(
                            f"{file}:{number}: expected {len(header)} tab-separated fields like "
                            f"the header, got {len(fields)}"
                        )
                    label, text = fields[label_at].strip(), fields[text_at].strip()
                else:
                    label, tab, text = line.partition("\t")
                    label, text = label.strip(), text.strip()
                    if not tab:
                        raise UserError(
                            f"{file}:{number}: expected LABEL<TAB>TEXT, got {line[:60]!r} (no tab)"
                        )
                if not label or not text:
                    raise UserError(f"{file}:{number}: empty label or text in {line[:60]!r}")
                yield {"text": text, "label": label}


def read_tab_separated(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
    *,
    cache_dir: str | None = None,
) -> LabelledTexts:
    """A UTF-8 tab-separated file: with a header row naming ``text_column`` and
    ``label_column`` among its fields (SST-2's ``label<TAB>sentence``), or without a header,
    ``LABEL<TAB>TEXT`` on every line. Blank lines are skipped; labels and texts are stripped.

    The file is read a line at a time into Arrow rows, cached (under ``cache_dir``, default
    seqkit's cache) by its path, size and modification time and the two column names: the
    texts are a :class:`TextColumn`, not a list."""
    import datasets

    from seqkit.checks import check_path
    from seqkit.data.arrow_rows import rows_cache_root, rows_from_generator
    from seqkit.data.pipelines import _check_utf8
    from seqkit.data.token_file import files_key

    path = Path(path).expanduser()
    check_path("corpus file", path)
    if path.is_dir():
        raise UserError(
            f"{path} is a folder: name a tab-separated file, or a folder of JSON lines, CSV or "
            "Parquet files"
        )
    if not path.exists():
        raise UserError(f"corpus file {path} does not exist")
    try:
        _check_utf8(path, "text")
    except UserError as error:  # the corpus readers' wording for the same two mistakes
        raise UserError(str(error).replace("data file", "corpus file", 1)) from None
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.Value("string")}
    )
    records = rows_from_generator(
        _tab_rows,
        {"path": str(path), "text_column": text_column, "label_column": label_column},
        {"files": files_key([path]), "columns": [text_column, label_column]},
        features,
        rows_cache_root(cache_dir),
    )
    return _label_rows(TextColumn(records, "text"), records, "label", labels, str(path))


def _check_all_text(records: Any, column: str, where: str) -> None:
    """Refuse a text column that holds anything but strings (numbers, empty cells)."""
    import pyarrow as pa

    from seqkit.data.arrow_rows import record_batches

    for batch in record_batches(records):
        values = batch.column(column)
        text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        if not text or values.null_count:
            raise UserError(f"column {column!r} of {where} is not all text")


def _label_rows(
    texts: TextColumn, records: Any, column: str, declared: Sequence[str] | None, where: str
) -> LabelledTexts:
    """:func:`_encode_labels` of a label column read batch by batch: only the labels (one
    integer a row) are held, never the texts."""
    from seqkit.data.arrow_rows import record_batches

    classes = list(declared) if declared is not None else None
    index: dict[str, int] = {name: i for i, name in enumerate(classes or [])}
    parts, row = [], 0
    for batch in record_batches(records):
        names = [str(label) for label in batch.column(column).to_pylist()]
        ids = np.empty(len(names), dtype=np.int64)
        for i, name in enumerate(names):
            found = index.get(name)
            if found is None:
                if classes is not None:
                    raise UserError(
                        f"{where}: row {row + i} has label {name!r}, which is not one of the "
                        f"declared classes ({', '.join(classes)}); fix the row or data.labels"
                    )
                found = index[name] = len(index)
            ids[i] = found
        parts.append(ids)
        row += len(names)
    ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if classes is None:  # the classes found, sorted; ids in order of first sight until now
        classes = sorted(index)
        order = np.array([classes.index(name) for name in index], dtype=np.int64)
        ids = order[ids] if len(ids) else ids
    if len(classes) < 2:
        raise UserError(f"{where}: classification needs at least 2 classes, found {classes}")
    return LabelledTexts(texts, ids, classes)


def _encode_labels(
    texts: list[str], raw: list, declared: Sequence[str] | None, where: str
) -> LabelledTexts:
    """Labels as ids into the declared (or discovered) class names."""
    names = [str(label) for label in raw]
    classes = list(declared) if declared is not None else sorted(set(names))
    index = {name: i for i, name in enumerate(classes)}
    for row, name in enumerate(names):
        if name not in index:
            raise UserError(
                f"{where}: row {row} has label {name!r}, which is not one of the declared "
                f"classes ({', '.join(classes)}); fix the row or data.labels"
            )
    if len(classes) < 2:
        raise UserError(f"{where}: classification needs at least 2 classes, found {classes}")
    return LabelledTexts(texts, np.array([index[n] for n in names], dtype=np.int64), classes)


def split_labelled(
    data: LabelledTexts, val_fraction: float, seed: int
) -> tuple[LabelledTexts, LabelledTexts | None]:
    """A seeded shuffle, then the first ``val_fraction`` of documents for validation and the
    rest for training (:func:`seeded_split`)."""
    if len(data) == 0:
        raise UserError("the labelled corpus is empty")
    train, val = seeded_split(len(data), val_fraction, seed)
    return data.subset(train), (data.subset(val) if len(val) else None)


def seeded_split(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(training, validation)`` positions of ``count`` documents: a seeded shuffle
    (``torch.randperm``), its first ``val_fraction`` validating. The same seed gives the same
    split on any machine, and every reader of the same documents draws the same one: a
    masked-LM pretraining on a file (``data.val_split: seeded``) holds out exactly the
    documents its classifier validates on. (torch's generator, not numpy's, so the splits
    behind the README's recurrent and BERT classifier results are the ones drawn here.)"""
    import torch

    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).numpy()
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, which must give 3.
    n_val = math.floor(round(count * val_fraction, 6))
    if val_fraction > 0 and n_val == 0:
        raise UserError(
            f"data.val_fraction={val_fraction} of {count} documents keeps none for validation"
        )
    if n_val >= count:
        raise UserError(f"data.val_fraction={val_fraction} leaves no training documents")
    return order[n_val:], order[:n_val]


def labelled_splits(
    data: LabelledDataSection, seed: int, default_embedded: str | None = None
) -> tuple[LabelledTexts, LabelledTexts | None]:
    """The training and validation documents a recipe's ``data`` section names: ``val_path``
    when it is set (its labels must be among the training classes), else a seeded
    ``val_fraction`` split. ``default_embedded`` is the embedded set read when the recipe names
    no data."""
    documents = load_labelled(
        path=data.path,
        hub=data.hub,
        embedded=data.embedded or (None if data.path or data.hub else default_embedded),
        split=data.hub_split,
        text_column=data.text_column,
        label_column=data.label_column,
        labels=data.labels,
        hub_config=data.hub_config,
        hub_revision=data.hub_revision,
        hub_data_files=data.hub_data_files,
        cache_dir=data.cache_dir,
    )
    if not data.val_path:
        return split_labelled(documents, data.val_fraction, seed)
    if len(documents) == 0:
        raise UserError("the labelled corpus is empty")
    val = load_labelled(
        path=data.val_path,
        text_column=data.text_column,
        label_column=data.label_column,
        labels=documents.label_names,
        cache_dir=data.cache_dir,
    )
    return documents, val


def has_validation(data: LabelledDataSection) -> bool:
    """Whether the recipe holds documents out for validation (a file or a fraction)."""
    return bool(data.val_path) or data.val_fraction > 0


# ----------------------------------------------------------------------------- labelled-text
