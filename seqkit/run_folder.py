"""Run folders: the mark that says seqkit made a folder, the lock held while it trains, and
replacing an old run so that a failed command never costs the user the old one.

DESIGN.md: "seqkit deletes or overwrites only folders it made itself, and only after the new work
has passed every check; a folder being trained is locked." Three pieces keep that promise:

- **The marker** ``.seqkit-run.json``: written when seqkit creates a run folder, it is the only
  proof that a folder is a seqkit run. A ``recipe.yaml`` is not: a user's project folder may
  hold one, and ``--overwrite`` must never empty that folder.
- **The lock** ``.seqkit-lock``: an exclusive ``flock`` held by the process that trains the run.
  The operating system drops it when that process exits, however it dies (``kill -9``
  included), so a crashed run never stays locked; a second ``train``, ``--overwrite`` or
  ``--resume`` on a locked folder is refused with a line naming the holder.
- **Replacing**: ``--overwrite`` first checks everything about the new run (the caller does that
  before calling :meth:`RunFolder.claim`), then *renames* the old run aside, creates
  the new one, and deletes the old one only once the new run has finished its first optimizer
  step (:meth:`RunFolder.started`). If the new run fails before that, the new folder is removed
  and the old run is renamed back, byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.outputs import check_creatable

MARKER = ".seqkit-run.json"
"""File that marks a folder as a seqkit run (JSON: format, seqkit version, creation time and,
once training ends, the step it ended at)."""
LOCK = ".seqkit-lock"
"""File whose ``flock`` is held while the run trains; it names the holder."""
FORMAT = 1

try:  # POSIX; on other systems runs are not locked (documented in the README)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


def is_run(folder: Path) -> bool:
    """True when seqkit made ``folder`` (it holds the marker)."""
    return (Path(folder) / MARKER).is_file()


def is_legacy_run(folder: Path) -> bool:
    """A run written before runs were marked: a ``recipe.yaml`` *and* seqkit's checkpoints.

    Such a run may be resumed, evaluated and exported, but never deleted by ``--overwrite``:
    without the marker seqkit cannot tell it from a user's folder that happens to look alike.
    """
    folder = Path(folder)
    return (folder / "recipe.yaml").is_file() and (folder / "checkpoints").is_dir()


def read_marker(folder: Path) -> dict[str, Any]:
    """The marker's contents ({} for a legacy run or an unreadable marker)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_marker(folder: Path, data: dict[str, Any]) -> None:
    # Written to a temporary name and renamed, so a crash never leaves half a marker.
    temporary = folder / f"{MARKER}.tmp"
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, folder / MARKER)


def _holder_line() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(["seqkit", *sys.argv[1:]])[:120],
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _describe_holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return (
            f"process {holder['pid']} on {holder['host']} "
            f"({holder['command']!r}, since {holder['since']})"
        )
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another process"


class RunLock:
    """An exclusive lock on a run folder, released by the OS when the holding process exits."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self._handle = None
        self._announced = False

    def acquire(self) -> None:
        """Take the lock or raise a UserError that names the process holding it. Taking it
        changes no byte of the folder; :meth:`announce` then names this process."""
        if fcntl is None or self._handle is not None:
            return
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _describe_holder(handle.read(2000))
            handle.close()
            raise UserError(
                f"run {self.path.parent} is in use by {holder}; wait for it to finish or stop "
                "it, then try again"
            ) from None
        self._handle = handle

    def announce(self) -> None:
        """Write who holds the lock into the lock file, for the message another command shows."""
        if self._handle is None:
            return
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(_holder_line()))
        self._handle.flush()
        self._announced = True

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is None:
            return
        if self._announced:
            with contextlib.suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
        self._handle.close()  # closing the file drops the flock
        self._handle = None
        self._announced = False


class RunFolder:
    """One run directory and what seqkit may do to it.

    Use: :meth:`check_new` / :meth:`check_resume` before any expensive work (they only read and,
    for an existing run, take its lock); then, after every other check has passed,
    :meth:`claim` (a new run, or ``--overwrite``'s replacement) or nothing (resume);
    :meth:`started` after the first optimizer step; :meth:`finished` at the end, or
    :meth:`abandon` if the new run failed before it started.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock = RunLock(self.path)
        self._aside: Path | None = None
        self._created = False
        self._was_empty_dir = False
        self._started = False

    # ------------------------------------------------------------ checks (read only + lock)

    def check_new(self, *, overwrite: bool) -> None:
        """Refuse a path that holds anything but an empty folder, unless ``overwrite`` and it
        is a seqkit run nobody is training; then lock that old run until it is replaced."""
        path = self.path
        if path.is_symlink() and not path.exists():
            raise UserError(f"--output-dir {path} is a broken symbolic link")
        if path.exists() and not path.is_dir():
            raise UserError(f"--output-dir {path} is a file, not a folder")
        check_creatable(path, "--output-dir")
        if not path.is_dir() or not any(path.iterdir()):
            return
        if not overwrite:
            raise UserError(
                f"run directory {path} already exists; pass --resume to continue it, "
                "--overwrite to replace it, or --output-dir for a new one"
            )
        if path.is_symlink():
            # Replacing would rename the link, not the run it points to: name the run itself.
            raise UserError(
                f"--overwrite: {path} is a symbolic link; give the run folder it points to "
                f"({path.resolve()})"
            )
        if not is_run(path):
            why = (
                "it was written before seqkit marked its runs"
                if is_legacy_run(path)
                else "it is not a seqkit run folder"
            )
            raise UserError(
                f"--overwrite: {why} ({path} has no {MARKER}); seqkit deletes only folders it "
                "made — delete it yourself or choose another --output-dir"
            )
        if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
            raise UserError(f"--overwrite: {path} cannot be replaced (no write permission)")
        self.lock.acquire()  # refuses a run that is training now

    def check_resume(self) -> None:
        """Refuse a path that is not a run with a checkpoint; lock it for this process."""
        path = self.path
        if not path.is_dir():
            raise UserError(f"--resume: {path} does not exist (nothing to resume)")
        if not (is_run(path) or is_legacy_run(path)):
            raise UserError(f"--resume: {path} is not a seqkit run (no {MARKER})")
        if not os.access(path, os.W_OK):
            raise UserError(f"--resume: {path} is not writable")
        self.lock.acquire()

    # ------------------------------------------------------------ changes (all checks passed)

    def claim(self) -> None:
        """Make this command's run folder: replace the old run that :meth:`check_new` locked
        (``--overwrite``), or create a new one. Call only after every other check passed."""
        if self.lock.held:
            self._replace_with_new()
        else:
            self._create()

    def _create(self) -> None:
        """Make the (missing or empty) run folder, lock it and mark it."""
        existed = self.path.is_dir()
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.path)
        self.lock.acquire()  # a second command racing for the same new folder stops here
        if any(entry.name != LOCK for entry in self.path.iterdir()):
            self.lock.release()
            raise UserError(
                f"run directory {self.path} was filled by another command while this one was "
                "getting ready; choose another --output-dir"
            )
        self._created, self._was_empty_dir = True, existed
        self.lock.announce()
        _write_marker(
            self.path,
            {"format": FORMAT, "seqkit_version": _version(), "created": _now()},
        )

    def _replace_with_new(self) -> None:
        """Rename the old run aside (still locked by us), then create the new one."""
        aside = self.path.parent / f".{self.path.name}.replaced-{os.getpid()}"
        os.replace(self.path, aside)
        self._aside = aside
        old_lock = self.lock
        try:
            self._create()
        except BaseException:
            self.abandon()
            raise
        finally:
            old_lock.release()

    def started(self) -> None:
        """The new run has trained its first step: the run it replaced can go now."""
        if self._started:
            return
        self._started = True
        if self._aside is not None:
            shutil.rmtree(self._aside, ignore_errors=True)
            self._aside = None

    def abandon(self) -> None:
        """The new run failed before its first step: remove what this command made and put the
        replaced run back where it was."""
        if self._started:
            return
        if self._created:
            self.lock.release()
            if self._was_empty_dir:
                for entry in self.path.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            else:
                shutil.rmtree(self.path, ignore_errors=True)
            self._created = False
        if self._aside is not None:
            os.replace(self._aside, self.path)
            self._aside = None

    def finished(self, step: int) -> None:
        """Record the step training ended at (``--resume`` of a finished run does nothing)."""
        if is_run(self.path):
            data = read_marker(self.path)
            data["finished_step"] = int(step)
            _write_marker(self.path, data)
        self.lock.release()

    def finished_step(self) -> int | None:
        """The step a finished run ended at, or None while it has not finished."""
        value = read_marker(self.path).get("finished_step")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None


def _version() -> str:
    from seqkit import __version__

    return __version__


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
