"""What a run was trained on, recorded at step 0 so that a resumed run is known to read the same.

A run folder stands alone (DESIGN.md): ``RUN/data.json`` names every input the recipe read from
outside — the corpus under ``data.path`` and ``data.eval_path`` (each file's size, modification
time and SHA-256), a Hub data set (name, config, split and revision as the recipe gave them), an
embedded corpus (with the version of the package that ships it), and a tokenizer folder under
``tokenizer.path``. ``--resume`` compares the inputs with the record and refuses a run whose data
changed, naming what changed: resuming on other data would silently train a different model under
the same name.

Comparing is cheap when nothing changed: a file whose size and modification time match the record
is taken as unchanged (as ``make`` and ``rsync`` do); only a file whose size or time differs is
hashed again, so a file that was merely touched still passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.folders import cache_dir
from seqkit.outputs import write_text_atomically

FILE_NAME = "data.json"
FORMAT = 1
_CHUNK = 1 << 20
_CACHED_FROM_BYTES = 64 << 20
"""Files from this size on have their digest cached (hashing 64 MB takes about 0.1 s)."""


def _sha256(path: Path) -> str:
    """The file's SHA-256. A large file's digest is kept in seqkit's cache under its identity
    (absolute path, device, inode, size, modification time), so the next run on the same
    corpus does not read gigabytes again before its first step; any change to the file changes
    its identity, and a damaged or foreign cache entry is simply recomputed."""
    stat = path.stat()
    if stat.st_size < _CACHED_FROM_BYTES:
        return _hash_file(path)
    identity = [str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns]
    entry = cache_dir("hashes") / (
        hashlib.sha1(json.dumps(identity).encode()).hexdigest() + ".json"
    )
    try:
        cached = json.loads(entry.read_text(encoding="utf-8"))
        if cached["identity"] == identity and len(cached["sha256"]) == 64:
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = _hash_file(path)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next run the hashing
        write_text_atomically(entry, json.dumps({"identity": identity, "sha256": digest}))
    return digest


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_glob(path: Path) -> bool:
    return any(ch in str(path) for ch in "*?[")


def _root(path: Path) -> Path:
    """The folder file names are recorded relative to: the path's folder part before any glob
    character (``corpus/*.txt`` -> ``corpus``)."""
    if _is_glob(path):
        parts = []
        for part in path.parts:
            if _is_glob(Path(part)):
                break
            parts.append(part)
        return Path(*parts) if parts else Path(".")
    return path if path.is_dir() else path.parent


def _files_under(path: Path) -> list[Path]:
    if _is_glob(path):  # a glob pattern (the pretokenized module reads those): its matches
        root = _root(path)
        pattern = str(path.relative_to(root)) if path.is_absolute() else str(path)
        base = root if path.is_absolute() else Path(".")
        return sorted(p for p in base.glob(pattern) if p.is_file())
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [path] if path.is_file() else []


def _describe_files(path: Path) -> dict[str, Any]:
    root = _root(path)
    files = {}
    for file in _files_under(path):
        stat = file.stat()
        files[file.relative_to(root).as_posix()] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": _sha256(file),
        }
    return {"path": str(path), "files": files}


def fingerprint(recipe: Any) -> dict[str, Any]:
    """The record of everything ``recipe`` reads from outside seqkit (see the module docstring).

    Fields a family does not have are skipped, so every family's recipe can be fingerprinted.
    """
    data = recipe.data
    record: dict[str, Any] = {"format": FORMAT}
    if getattr(data, "path", None):
        record["data.path"] = _describe_files(Path(data.path).expanduser())
    elif getattr(data, "hub", None):
        record["data.hub"] = {
            key: getattr(data, key)
            for key in (
                "hub",
                "hub_config",
                "hub_split",
                "hub_revision",
                "hub_data_files",
                "text_column",
            )
            if getattr(data, key, None) is not None
        }
    elif getattr(data, "embedded", None):
        record["data.embedded"] = {"name": data.embedded, "python": sys.version.split()[0]}
    for field in ("eval_path", "val_path"):  # held-out files of their own
        held_out = getattr(data, field, None)
        if held_out:
            record[f"data.{field}"] = _describe_files(Path(held_out).expanduser())
    tokenizer_path = getattr(recipe.tokenizer, "path", None)
    if tokenizer_path:
        record["tokenizer.path"] = _describe_files(Path(tokenizer_path).expanduser())
    return record


def write_fingerprint(recipe: Any, run_dir: Path) -> None:
    """Record the recipe's inputs in ``run_dir/data.json`` (at step 0)."""
    text = json.dumps(fingerprint(recipe), indent=2, sort_keys=True) + "\n"
    temporary = Path(run_dir) / f".{FILE_NAME}.tmp"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, Path(run_dir) / FILE_NAME)


def check_unchanged(recipe: Any, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` when the recipe's inputs differ from its record.

    A run written before runs recorded their data has no record and is not checked.
    """
    record_path = Path(run_dir) / FILE_NAME
    if not record_path.is_file():
        return
    try:
        recorded = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"--resume: {record_path} is damaged ({error}); seqkit wrote it") from None
    if not isinstance(recorded, dict):
        raise UserError(f"--resume: {record_path} is damaged (not a JSON object)")
    changes = _changes(recorded, recipe)
    if changes:
        shown = "; ".join(changes[:3]) + (
            f"; and {len(changes) - 3} more" if len(changes) > 3 else ""
        )
        raise UserError(
            f"--resume: the data changed since {run_dir} started ({shown}); resuming would train "
            "on other data — restore it, or start a new run"
        )


def _changes(recorded: dict[str, Any], recipe: Any) -> list[str]:
    """What differs between the record and the recipe's inputs now, in words."""
    changes = []
    given = {
        "data.path": getattr(recipe.data, "path", None),
        "data.eval_path": getattr(recipe.data, "eval_path", None),
        "data.val_path": getattr(recipe.data, "val_path", None),
        "tokenizer.path": getattr(recipe.tokenizer, "path", None),
    }
    for key, path in given.items():
        if key not in recorded:
            continue
        if not path:
            changes.append(f"{key} is no longer set")
            continue
        changes += _file_changes(recorded[key].get("files", {}), Path(path).expanduser())
    if "data.hub" in recorded:
        now = fingerprint(recipe).get("data.hub")
        if now != recorded["data.hub"]:
            changes.append(f"the Hub data set was {recorded['data.hub']}, now {now}")
    return changes


def _file_changes(recorded: dict[str, Any], path: Path) -> list[str]:
    root = _root(path)
    now = {file.relative_to(root).as_posix(): file for file in _files_under(path)}
    changes = [f"{name} is gone" for name in sorted(set(recorded) - set(now))]
    changes += [f"{name} is new" for name in sorted(set(now) - set(recorded))]
    for name in sorted(set(recorded) & set(now)):
        entry, stat = recorded[name], now[name].stat()
        if stat.st_size == entry.get("size") and stat.st_mtime_ns == entry.get("mtime_ns"):
            continue  # untouched
        if stat.st_size != entry.get("size"):
            changes.append(f"{name} has {stat.st_size} bytes, was {entry.get('size')}")
        elif _sha256(now[name]) != entry.get("sha256"):
            changes.append(f"{name} has other contents")
    return changes
