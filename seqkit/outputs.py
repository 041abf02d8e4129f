"""Files a command writes for the user (``--out``, ``--output``, ``--json``, ``--video`` ...).

Every such file is checked *before* the long work starts — it is not a folder, it does not
exist unless ``--overwrite`` says to replace it, and its folder can be written — so that an hour
of translation never ends in "permission denied", and nothing the user has is replaced by
accident. Text files are written under a temporary name and renamed, so a full disk leaves the
old file (or none), never half of one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from seqkit.errors import UserError

logger = logging.getLogger(__name__)


def nearest_existing_folder(path: Path) -> Path:
    """The closest ancestor of ``path`` that exists (where its missing folders would be made)."""
    parent = Path(path).absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def check_creatable(path: Path, option: str) -> None:
    """Refuse ``path`` when it could not be created: an ancestor is a file or not writable."""
    ancestor = nearest_existing_folder(path)
    if not ancestor.is_dir():
        raise UserError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write there ({ancestor} is not writable)")


def check_new_file(
    path: str | Path, *, overwrite: bool, option: str, suffixes: tuple[str, ...] = ()
) -> Path:
    """``path`` checked as a file this command may write; see the module docstring.

    ``suffixes`` (lower case, with the dot) limit the file types, e.g. ``(".png",)``.
    """
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{option} must name a {' or '.join(suffixes)} file, got {path}")
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder, not a file")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise UserError(f"{option} {path} exists and is not a regular file")
        if not overwrite:
            raise UserError(f"{option} {path} already exists; pass --overwrite to replace it")
        if not os.access(path, os.W_OK):
            raise UserError(f"{option} {path} is read-only")
        logger.warning("note: overwriting %s", path)
    check_creatable(path, option)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
