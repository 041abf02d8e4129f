"""Files commands write for the user: checked before the work, never replaced by accident,
written whole or not at all (seqkit/outputs.py), and the same through the CLI."""

from __future__ import annotations

import contextlib
import errno
import io
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.outputs import check_new_file, write_text_atomically


def test_a_new_file_in_a_new_folder_is_fine(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    assert check_new_file(path, overwrite=False, option="--json") == path
    assert not (tmp_path / "a").exists()  # checking makes nothing


def test_an_existing_file_needs_overwrite(tmp_path, caplog):
    path = tmp_path / "out.txt"
    path.write_text("mine")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        check_new_file(path, overwrite=False, option="--output")
    check_new_file(path, overwrite=True, option="--output")
    assert f"note: overwriting {path}" in caplog.messages
    assert path.read_text() == "mine"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder, not a file"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "not a regular file"),
    ],
    ids=["folder", "broken-link"],
)
def test_what_is_not_a_file_is_refused_even_with_overwrite(tmp_path, make, message):
    path = tmp_path / "out.png"
    make(path)
    with pytest.raises(UserError, match=message):
        check_new_file(path, overwrite=True, option="--out")


def test_a_file_under_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_new_file(tmp_path / "notes.txt" / "out.png", overwrite=False, option="--out")


def test_the_file_type_is_checked(tmp_path):
    with pytest.raises(UserError, match=r"--out must name a \.mid or \.midi file"):
        check_new_file(
            tmp_path / "x.wav", overwrite=False, option="--out", suffixes=(".mid", ".midi")
        )


def test_a_full_disk_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("the old translations\n")

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError):
        write_text_atomically(path, "new text\n")
    monkeypatch.undo()
    assert path.read_text() == "the old translations\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left


def test_evaluate_checks_its_json_file_before_measuring(tmp_path):
    taken = tmp_path / "metrics.json"
    taken.write_text("{}")
    err = io.StringIO()
    # The model folder does not exist either: the output is checked first, before any work.
    with contextlib.redirect_stderr(err):
        code = main(["evaluate", str(tmp_path / "missing-run"), "--json", str(taken)])
    assert code == 2
    assert err.getvalue().strip().splitlines() == [
        f"seqkit: error: --json {taken} already exists; pass --overwrite to replace it"
    ]
    assert taken.read_text() == "{}"
