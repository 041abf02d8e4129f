"""Run folders through the real CLI: seqkit replaces only runs it made, only after the new run
has passed every check, never while another process trains them, and a failed command leaves
every byte of the old run as it was (seqkit/run_folder.py)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.run_folder import LOCK, MARKER

from .test_cli import QUICKSTART, TINY, assert_user_error, seqkit

LONG = [*TINY, "--set", "trainer.max_steps=100000", "--set", "trainer.eval_every=0"]


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its bytes' hash and its modification time."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "old"
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture
def old_run(finished_run, tmp_path) -> Path:
    """A private copy of a finished run (metadata kept, so mtimes can be compared)."""
    run = tmp_path / "old"
    shutil.copytree(finished_run, run)
    return run


def run_in_process(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


def test_a_run_folder_carries_seqkits_marker(finished_run):
    marker = json.loads((finished_run / MARKER).read_text())
    assert marker["format"] == 1
    assert marker["finished_step"] == 4


@pytest.mark.parametrize(
    "mistake",
    [
        ["--set", "data.path=no/such/corpus.txt"],  # found while reading the data
        ["--set", "trainer.batch_size=1000000000"],  # found by the Trainer (more than the data)
        ["--set", "model.init_from=no/such/folder"],  # found while building the model
        ["--set", "sample.prompt=\u2603"],  # found after the tokenizer is trained
    ],
    ids=["data", "trainer", "init_from", "prompt"],
)
def test_overwrite_with_a_later_mistake_leaves_the_old_run_byte_for_byte(old_run, mistake):
    before = tree(old_run)
    result = seqkit("train", QUICKSTART, *TINY, *mistake, "--output-dir", str(old_run),
                    "--overwrite")  # fmt: skip
    assert_user_error(result)
    assert tree(old_run) == before
    assert sorted(p.name for p in old_run.parent.iterdir()) == ["old"]  # nothing set aside


def test_overwrite_replaces_a_seqkit_run_and_leaves_nothing_aside(old_run):
    (old_run / "stale.txt").write_text("written by the old run")
    result = seqkit("train", QUICKSTART, *TINY, "--set", "trainer.max_steps=2",
                    "--output-dir", str(old_run), "--overwrite")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (old_run / "stale.txt").exists()
    assert json.loads((old_run / MARKER).read_text())["finished_step"] == 2
    assert sorted(p.name for p in old_run.parent.iterdir()) == ["old"]


def test_a_project_folder_with_a_recipe_yaml_is_not_a_run(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(Path(__file__).parents[2] / "recipes" / f"{QUICKSTART}.yaml",
                project / "recipe.yaml")  # fmt: skip
    (project / "thesis.tex").write_text("years of work")
    before = tree(project)
    result = seqkit("train", str(project / "recipe.yaml"), *TINY, "--output-dir", str(project),
                    "--overwrite")  # fmt: skip
    assert_user_error(result, "not a seqkit run folder", MARKER)
    assert tree(project) == before


def test_a_failed_check_leaves_no_run_folder_behind(tmp_path):
    run = tmp_path / "new" / "run"
    result = seqkit("train", QUICKSTART, *TINY, "--set", "trainer.batch_size=1000000000",
                    "--output-dir", str(run))  # fmt: skip
    assert_user_error(result, "batch")
    assert not (tmp_path / "new").exists()
    # ... so the corrected command just works, with no --overwrite.
    code, err = run_in_process("train", QUICKSTART, *TINY, "--output-dir", str(run))
    assert code == 0, err


def test_resume_of_a_finished_run_changes_nothing(old_run):
    before = tree(old_run)
    result = seqkit("train", "--resume", str(old_run))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing to do" in result.stdout
    assert tree(old_run) == before


def test_resume_with_the_run_folder_alone_uses_its_own_recipe(old_run):
    # The run was trained with many --set overrides; none needs retyping.
    result = seqkit("train", "--resume", str(old_run), "--set", "trainer.max_steps=6")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step 6" in result.stdout
    assert (old_run / "checkpoints" / "step-6").is_dir()


@pytest.mark.slow  # a 40–80 s training killed mid-way; runs in the slow suite (CI)
def test_a_run_being_trained_is_locked_and_a_killed_one_is_not(tmp_path):
    run = tmp_path / "live"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    live = subprocess.Popen(
        [sys.executable, "-m", "seqkit", "train", QUICKSTART, *LONG, "--output-dir", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not list((run / "checkpoints").glob("step-*")):
            assert live.poll() is None, "the training ended early"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.5)
        holder = f"in use by process {live.pid}"
        assert_user_error(seqkit("train", "--resume", str(run)), holder)
        before_overwrite = (run / MARKER).read_bytes()
        result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(run), "--overwrite")
        assert_user_error(result, holder)
        assert (run / MARKER).read_bytes() == before_overwrite
        assert_user_error(seqkit("train", QUICKSTART, *LONG, "--output-dir", str(run)),
                          "already exists")  # fmt: skip
        assert live.poll() is None  # the live run never noticed
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait(timeout=60)
    # kill -9 releases the lock with the process: the run can be replaced (or resumed) now.
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(run), "--overwrite")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / LOCK).read_text() == ""  # released at the end


def test_a_new_run_that_fails_before_its_first_step_puts_the_old_run_back(old_run, monkeypatch):
    from seqkit.trainer.trainer import Trainer

    def broken_step(self, micro_batches):
        raise RuntimeError("simulated crash in the first step")

    before = tree(old_run)
    monkeypatch.setattr(Trainer, "_optimizer_step", broken_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_in_process("train", QUICKSTART, *TINY, "--output-dir", str(old_run), "--overwrite")
    assert tree(old_run) == before
    assert sorted(p.name for p in old_run.parent.iterdir()) == ["old"]


def test_a_full_disk_while_making_the_run_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import seqkit.recipes

    def full_disk(recipe, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(seqkit.recipes, "save_recipe", full_disk)
    run = tmp_path / "run"
    code, err = run_in_process("train", QUICKSTART, *TINY, "--output-dir", str(run))
    assert code == 2
    # The lines before it are the run's summary, printed once every check has passed.
    assert err.strip().splitlines()[-1] == (
        f"seqkit: error: No space left on device ({run}/recipe.yaml)"
    )
    assert "Traceback" not in err
    assert not run.exists()


def test_a_run_from_before_the_marker_resumes_but_is_never_deleted(old_run):
    (old_run / MARKER).unlink()
    before = tree(old_run)
    result = seqkit("train", QUICKSTART, *TINY, "--output-dir", str(old_run), "--overwrite")
    assert_user_error(result, "written before seqkit marked its runs")
    assert tree(old_run) == before
    result = seqkit("train", "--resume", str(old_run))  # finished: nothing to do
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing to do" in result.stdout


def test_a_disk_that_fills_during_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import seqkit.trainer.checkpoint

    def full_disk(*args, **kwargs):
        # What safetensors raises on a full disk: its own error type, the OS words inside.
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(seqkit.trainer.checkpoint, "save_file", full_disk)
    code, err = run_in_process("train", QUICKSTART, *TINY, "--output-dir", str(tmp_path / "r"))
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("seqkit: error: No space left on device while writing")
    assert "Traceback" not in err
