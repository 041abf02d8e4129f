"""Where training text comes from: a local file or folder, a Hub data set, or an embedded corpus.

The embedded default is CPython's ``pydoc_data.topics``: the text of the language reference
topics that ``help()`` shows (~465k characters of English prose and code). Every CPython ships
it, so the quickstart and the tests have a real, sizeable corpus with nothing to download — no
machine here reaches the Hub, and a test must never depend on the network.
"""

from __future__ import annotations

import codecs
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from seqkit.checks import check_path
from seqkit.errors import UserError

if TYPE_CHECKING:
    from seqkit.recipes import DataSection

# How long to wait for a TCP connection to the Hub before calling it unreachable. Without this
# check an offline machine spends ~25 s in huggingface_hub's retries before failing.
HUB_PROBE_TIMEOUT_S = 3.0
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


# ---------------------------------------------------------------------------- local files


def read_text_file(path: str | Path) -> str:
    """The UTF-8 text of a file, or of every ``*.txt`` file of a folder (sorted, joined by "\\n").

    Text is returned exactly as stored (line endings included), except that a leading UTF-8
    byte-order mark is dropped: it is an encoding artefact, not a character of the corpus.
    """
    path = Path(path).expanduser()
    check_path("corpus file", path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.txt") if p.is_file())
        if not files:
            raise UserError(f"corpus folder {path} has no *.txt files")
        text = "\n".join(_read_utf8(p) for p in files)
        if not text.strip():
            raise UserError(f"corpus folder {path} holds only empty *.txt files")
        return text
    if not path.exists():
        raise UserError(f"corpus file {path} does not exist")
    text = _read_utf8(path)
    if not text.strip():
        raise UserError(f"corpus file {path} is empty")
    return text


def _read_utf8(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read corpus file {path}: {error.strerror or error}") from None
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = skip + error.start
        raise UserError(
            f"corpus file {path} is not UTF-8 text: byte 0x{data[offset]:02x} at offset {offset} "
            "cannot be decoded; convert the file to UTF-8"
        ) from None


# ---------------------------------------------------------------------------- embedded


def pydoc_topics() -> str:
    """CPython's ``help()`` topics, joined in sorted-key order by blank lines."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some Linux distributions split pydoc_data into its own package
        raise UserError(
            "this Python has no pydoc_data module; use a local file with --set data.path=FILE"
        ) from None
    return "\n\n".join(topics[key] for key in sorted(topics))


EMBEDDED_CORPORA: dict[str, Callable[[], str]] = {"pydoc-topics": pydoc_topics}
"""Corpora that need no download: name (as in ``data.embedded``) -> loader."""


def load_embedded(name: str) -> str:
    """The text of an embedded corpus by name."""
    if name not in EMBEDDED_CORPORA:
        raise UserError(
            f"unknown embedded corpus {name!r}; available: {', '.join(sorted(EMBEDDED_CORPORA))}"
        )
    return EMBEDDED_CORPORA[name]()


# ---------------------------------------------------------------------------- Hub


def load_hub_text(
    name: str, split: str = "train", text_column: str = "text", **options: str | list[str] | None
) -> str:
    """The ``text_column`` of a Hub data set's ``split``, rows joined by "\n"; ``options`` are
    :func:`load_hub_rows`'s (``config``, ``revision``, ``data_files``)."""
    return "\n".join(load_hub_rows(name, split, text_column, **options))


def load_hub_rows(
    name: str,
    split: str = "train",
    text_column: str = "text",
    *,
    config: str | None = None,
    revision: str | None = None,
    data_files: list[str] | None = None,
) -> list[str]:
    """The ``text_column`` of a Hub data set's ``split`` (of ``config``, at ``revision``), one
    string a row. A failure says which part of the name did not resolve
    (:mod:`seqkit.data.hub`)."""
    from seqkit.data.hub import describe, load_hub_dataset

    dataset = load_hub_dataset(
        name, config=config, split=split, revision=revision, data_files=data_files
    )
    return records_rows(dataset, text_column, describe(name, config, split))


def records_rows(records, text_column: str, where: str) -> list[str]:
    """The ``text_column`` of a ``datasets.Dataset``, one string a row, every row kept (so that
    row i is the i-th document a labelled reader of the same file sees). ``where`` names the
    data in the errors (a file, or a Hub data set and split). tiny_shakespeare, for one, stores
    each split as a single row; most sets have many."""
    from seqkit.data.hub import check_column

    check_column(records, text_column, where)
    rows = records[text_column]
    if not all(isinstance(row, str) for row in rows):
        raise UserError(f"column {text_column!r} of {where} is not text (or has empty cells)")
    if not any(row.strip() for row in rows):
        raise UserError(f"{where} has no text")
    return rows


def hub_reachable() -> bool:
    """Whether a TCP connection to the Hub endpoint opens within a few seconds."""
    if any(os.environ.get(variable) for variable in PROXY_VARIABLES):
        return True  # only the proxy can tell; let the real request decide
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- dispatch


def tsv_rows(text: str, text_column: str) -> list[str] | None:
    """The ``text_column`` field of every row of tab-separated ``text`` whose header row names
    it (SST-2's ``label<TAB>sentence``), blank lines skipped; None when the header does not name
    it (the text is not such a table). Without this a language model pretrained on a labelled
    file would read its labels as words."""
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    if text_column not in header:
        return None
    at = header.index(text_column)
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    return [fields[at] for fields in rows if len(fields) > at]


def load_corpus(data: DataSection) -> str:
    """The text a recipe's ``data`` section names: ``path``, else ``hub``, else ``embedded``;
    the rows of a table's text column joined by "\\n"."""
    corpus = _read_corpus(data)
    return corpus if isinstance(corpus, str) else "\n".join(corpus)


def load_documents(data: DataSection) -> list[str]:
    """The corpus a recipe's ``data`` section names as documents: each row of a table's text
    column (a JSON lines, CSV or Parquet file, a Hub data set, a TSV whose header names the
    column), every row kept, or else each non-blank line of the text."""
    corpus = _read_corpus(data)
    if isinstance(corpus, str):
        return [line for line in corpus.splitlines() if line.strip()]
    return corpus


def _read_corpus(data: DataSection) -> str | list[str]:
    """The corpus as text, or as the rows of a table's text column."""
    if data.path:
        from seqkit.data.pipelines import load_records, names_records

        path = Path(data.path).expanduser()
        if names_records(data.path):
            # JSON lines, CSV or Parquet rows (a file, a folder or a glob of them): read by
            # ``datasets`` (and cached as Arrow).
            return records_rows(load_records(path=data.path), data.text_column, str(data.path))
        if any(ch in str(data.path) for ch in "*?["):  # a glob of text files
            from seqkit.data.token_file import corpus_files

            return "\n".join(read_text_file(file) for file in corpus_files(data.path))
        text = read_text_file(data.path)
        rows = tsv_rows(text, data.text_column) if path.suffix.lower() == ".tsv" else None
        return text if rows is None else rows
    if data.hub:
        return load_hub_rows(
            data.hub,
            split=data.hub_split,
            text_column=data.text_column,
            config=data.hub_config,
            revision=data.hub_revision,
            data_files=data.hub_data_files,
        )
    if data.embedded:
        return load_embedded(data.embedded)
    raise UserError("the recipe names no corpus: set data.path, data.hub or data.embedded")
