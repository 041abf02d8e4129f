"""Labelled text for classification: an embedded topic corpus, local files, or a Hub data set.

The embedded default, ``python-docstrings``, is a topic-classification set built from the
docstrings of the Python standard library that every CPython ships: each public function, class
and method of a fixed list of modules is one document, labelled with the area its module belongs
to (text processing, numbers, files, networking, concurrency, data formats, dates and times).
Docstrings shorter than 40 characters are dropped, and so is any docstring that appears under two
different areas (``Return str(self).``) — its label would be a coin toss. It needs no download,
which is what tests and the quickstart need; its exact size depends on the Python version
(~1,750 documents on CPython 3.11). Real data comes from local CSV/JSON/JSONL/Parquet files or a
Hub data set with a text column and a label column.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqkit.errors import UserError

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


EMBEDDED_CLASSIFICATION = {"python-docstrings": python_docstrings}
"""Labelled corpora that need no download: name (as in ``data.embedded``) -> loader."""


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
    """Labelled documents from a local file (CSV/JSON/JSONL/Parquet), a Hub data set, or an
    embedded set — first of those given. ``labels`` declares the classes (in id order); a label
    outside them is an error. Without it the classes are the sorted distinct labels found (a
    Hub ``ClassLabel`` column keeps its own names)."""
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
    """A seeded shuffle, then the last ``val_fraction`` of documents for validation."""
    if len(data) == 0:
        raise UserError("the labelled corpus is empty")
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = round(len(data) * val_fraction)
    if val_fraction > 0 and n_val == 0:
        raise UserError(
            f"data.val_fraction={val_fraction} of {len(data)} documents keeps none for validation"
        )
    if n_val >= len(data):
        raise UserError(f"data.val_fraction={val_fraction} leaves no training documents")
    train = data.subset(order[: len(data) - n_val])
    return train, (data.subset(order[len(data) - n_val :]) if n_val else None)
