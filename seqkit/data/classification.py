"""Labelled text for classification, the one home of every family that classifies text
(``bow-classifier``, ``rnn-classifier``, ``bert-classifier``): the ``data`` fields they share,
the readers, and the seeded train/validation split.

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
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    """Documents, their integer labels, and the class names the integers index."""

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabelledTexts:
        return LabelledTexts(
            [self.texts[i] for i in indices], self.labels[np.asarray(indices)], self.label_names
        )


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

    def __post_init__(self) -> None:
        from seqkit.checks import check_path, show

        super().__post_init__()
        if self.val_path:
            check_path("data.val_path", self.val_path)
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
) -> LabelledTexts:
    """Labelled documents from a local file (see the module docstring for the formats), a Hub
    data set, or an embedded set — first of those given. ``labels`` declares the classes (in
    id order); a label outside them is an error. Without it the classes are the sorted distinct
    labels found (a Hub ``ClassLabel`` column keeps its own names)."""
    if path and Path(path).suffix.lower() not in RECORD_SUFFIXES:
        return read_tab_separated(path, text_column, label_column, labels)
    if path or hub:
        from seqkit.data.pipelines import load_records

        records = load_records(path=path, hub=hub, split=split)
        for column in (text_column, label_column):
            if column not in records.column_names:
                raise UserError(
                    f"{path or hub} has no column {column!r} (columns: "
                    f"{', '.join(records.column_names)}); set data.text_column / data.label_column"
                )
        texts = records[text_column]
        if not all(isinstance(text, str) for text in texts):
            raise UserError(f"column {text_column!r} of {path or hub} is not all text")
        feature = records.features[label_column]
        raw = records[label_column]
        if hasattr(feature, "names") and labels is None:  # a datasets ClassLabel
            return LabelledTexts(texts, np.asarray(raw, dtype=np.int64), list(feature.names))
        return _encode_labels(texts, raw, labels, where=str(path or hub))
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


def read_tab_separated(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    labels: Sequence[str] | None = None,
) -> LabelledTexts:
    """A UTF-8 tab-separated file: with a header row naming ``text_column`` and
    ``label_column`` among its fields (SST-2's ``label<TAB>sentence``), or without a header,
    ``LABEL<TAB>TEXT`` on every line. Blank lines are skipped; labels and texts are stripped."""
    from seqkit.data import read_text_file

    path = Path(path).expanduser()
    lines = [
        (number, line)
        for number, line in enumerate(read_text_file(path).splitlines(), start=1)
        if line.strip()
    ]
    header = lines[0][1].split("\t") if lines else []
    # A first line that names either column is a header: then it must name both.
    has_header = label_column in header or text_column in header
    if has_header:
        for column in (text_column, label_column):
            if column not in header:
                raise UserError(
                    f"{path}:{lines[0][0]}: the header row has no column {column!r} (columns: "
                    f"{', '.join(header)}); set data.text_column / data.label_column"
                )
        text_at, label_at = header.index(text_column), header.index(label_column)
        lines = lines[1:]
    texts, raw = [], []
    for number, line in lines:
        if has_header:
            fields = line.split("\t")
            if len(fields) != len(header):
                raise UserError(
                    f"{path}:{number}: expected {len(header)} tab-separated fields like the "
                    f"header, got {len(fields)}"
                )
            label, text = fields[label_at].strip(), fields[text_at].strip()
        else:
            label, tab, text = line.partition("\t")
            label, text = label.strip(), text.strip()
            if not tab:
                raise UserError(
                    f"{path}:{number}: expected LABEL<TAB>TEXT, got {line[:60]!r} (no tab)"
                )
        if not label or not text:
            raise UserError(f"{path}:{number}: empty label or text in {line[:60]!r}")
        texts.append(text)
        raw.append(label)
    return _encode_labels(texts, raw, labels, where=str(path))


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
    """A seeded shuffle (``torch.randperm``), then the first ``val_fraction`` of documents for
    validation and the rest for training: the same seed gives the same split on any machine.
    (torch's generator, not numpy's, so the splits behind the README's recurrent and BERT
    classifier results are the ones drawn here.)"""
    import torch

    if len(data) == 0:
        raise UserError("the labelled corpus is empty")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).numpy()
    # round() first: 0.1 * 30 is 3.0000000000000004 in floating point, which must give 3.
    n_val = math.floor(round(len(data) * val_fraction, 6))
    if val_fraction > 0 and n_val == 0:
        raise UserError(
            f"data.val_fraction={val_fraction} of {len(data)} documents keeps none for validation"
        )
    if n_val >= len(data):
        raise UserError(f"data.val_fraction={val_fraction} leaves no training documents")
    return data.subset(order[n_val:]), (data.subset(order[:n_val]) if n_val else None)


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
    )
    return documents, val


def has_validation(data: LabelledDataSection) -> bool:
    """Whether the recipe holds documents out for validation (a file or a fraction)."""
    return bool(data.val_path) or data.val_fraction > 0
