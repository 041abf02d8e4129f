"""Hub data sets as users name them, and one line for each way loading them can fail.

A recipe names a data set the way ``datasets.load_dataset`` takes it: ``data.hub`` (a Hub name
such as ``wikitext``, or a local folder laid out like a Hub repository), ``data.hub_config``
(the subset: ``wikitext-103-raw-v1``, a GLUE task), ``data.hub_split``, ``data.hub_revision``
(a branch, tag or commit, for a run that must read the same data again) and
``data.hub_data_files`` (which files of the repository to read). Every reader of Hub data goes
through :func:`load_hub_dataset`, so every failure says which of these it is:

- the Hub is not reachable (no network, or ``HF_HUB_OFFLINE=1`` and no cached copy);
- there is no such data set (on the Hub, or no such local folder);
- the files ``data.hub_data_files`` names are not there;
- the data set has no such config (the message lists the ones it has);
- it has no such split (likewise);
- a column the recipe names is not there (:func:`check_column`, listing the columns).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seqkit.checks import cut
from seqkit.errors import UserError

LOCAL_HINT = "use a local file with --set data.path=FILE"


def describe(name: str, config: str | None = None, split: str | None = None) -> str:
    """``Hub data set 'glue' (config 'sst2', split 'train')`` for messages."""
    details = [f"config {config!r}" if config else "", f"split {split!r}" if split else ""]
    shown = ", ".join(d for d in details if d)
    return f"Hub data set {name!r}" + (f" ({shown})" if shown else "")


def load_hub_dataset(
    name: str,
    *,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    data_files: list[str] | None = None,
    cache_dir: str | Path | None = None,
    streaming: bool = False,
) -> Any:
    """``datasets.load_dataset(name, config, split=..., ...)``, its failures as one UserError."""
    import datasets

    from seqkit.data.corpora import hub_reachable

    where = describe(name, config, split)
    local = Path(name).expanduser().is_dir()
    if not local and looks_local(name):
        raise UserError(
            f"cannot load {where}: no such data set (no folder {name}); name "
            "a folder laid out like a Hub repository, or a Hub name such as owner/name"
        )
    if local and revision:  # datasets would read the folder as it is, whatever was asked
        raise UserError(
            f"cannot load {where} at revision {revision!r}: a local folder has no revisions; "
            "unset data.hub_revision"
        )
    if not local and not datasets.config.HF_HUB_OFFLINE and not hub_reachable():
        raise UserError(
            f"cannot load {where}: the Hub is not reachable (offline?); {LOCAL_HINT} (or set "
            "HF_HUB_OFFLINE=1 to use a cached copy)"
        )
    try:
        with quiet_hub_logs():
            return datasets.load_dataset(
                str(Path(name).expanduser()) if local else name,
                config,
                split=split,
                revision=revision,
                data_files=data_files,
                cache_dir=None if cache_dir is None else str(cache_dir),
                streaming=streaming,
            )
    except ConnectionError:
        raise UserError(
            f"cannot load {where}: the Hub is not reachable (offline, and no cached copy); "
            f"{LOCAL_HINT}"
        ) from None
    except Exception as error:  # datasets raises many types; each is named below
        raise UserError(_why(error, name, config, split)) from None


def looks_local(name: str) -> bool:
    """Whether ``data.hub`` spells a local folder rather than a Hub name: an absolute path, or
    one starting with ``./``, ``../`` or ``~`` (a Hub name is ``name`` or ``owner/name``)."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or Path(name).is_absolute()


def _why(error: BaseException, name: str, config: str | None, split: str) -> str:
    """One line saying which part of the data set's name did not resolve."""
    text = str(error)
    kind = type(error).__name__
    where = describe(name, config, split)
    available = re.search(r"(?:Available(?: splits)?|Should be one of):? *(\[[^\]]*\])", text)
    listed = f"; it has {cut(available.group(1), 200)}" if available else ""
    if kind == "DatasetNotFoundError" or (kind == "FileNotFoundError" and "doesn't exist" in text):
        return f"cannot load {where}: no such data set on the Hub; {LOCAL_HINT}"
    if "Unable to find" in text or "Couldn't find any data file" in text:
        return f"cannot load {where}: no such data files; set data.hub_data_files"
    if "BuilderConfig" in text or "Config name is missing" in text:
        return f"cannot load {where}: no such config {config!r}{listed}; set data.hub_config"
    if (
        "Unknown split" in text
        or "Bad split" in text
        or ("split" in text.lower() and "not" in text.lower())
    ):
        return f"cannot load {where}: no such split {split!r}{listed}; set data.hub_split"
    if kind == "RevisionNotFoundError" or "revision" in text.lower():
        return f"cannot load {where}: no such revision; set data.hub_revision"
    first = text.strip().splitlines()[0] if text.strip() else kind
    return f"cannot load {where}: {cut(first, 200)}"


def check_column(records: Any, column: str, where: str, field: str = "data.text_column") -> None:
    """Refuse a data set without ``column``, listing the columns it has."""
    names = list(records.column_names or [])
    if column not in names:
        raise UserError(
            f"{where} has no column {column!r} (columns: {', '.join(names)}); set {field}"
        )


@contextmanager
def quiet_hub_logs() -> Iterator[None]:
    """Silence retry warnings: a failure is reported once, as a UserError, by the caller."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "datasets")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
