"""Trains several recipes one after another in one process group; run by tests/test_scale_out.py
under ``accelerate launch --multi_gpu --num_processes 2`` (and plainly, for one process).

Usage: scale_out_worker.py SPEC.json

SPEC.json is a list of commands that must fail, ``{"name", "argv"}`` (the exit code and what
the process wrote on stderr are kept), and of trainings, ``{"name", "recipe", "overrides",
"output_dir", "split_at", "max_steps"}``.
For each entry this runs ``seqkit train`` through :func:`seqkit.cli.main` to ``split_at``
steps, then ``seqkit train --resume`` to ``max_steps`` (``split_at`` null: one uninterrupted
run to ``max_steps``): the same commands a user types, with
the interpreter, torch and the process group started once for all recipes (each launch costs
tens of seconds on a small machine; twelve of them would not fit the CI budget).

Every process writes, next to SPEC.json, what the test needs to judge it and nothing inside the
run directories: ``NAME.rank-R.stdout`` (what ``seqkit train`` printed on that process),
``codes.rank-R.json`` (the exit codes), and ``writes.rank-R.json``: every file or folder the
process created, opened for writing, renamed or deleted under the run directories, recorded
with an audit hook (:pep:`578`), so "only the main process writes" is observed rather than
assumed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"}


def watch_writes(roots: list[Path], seen: list[list[str]]) -> None:
    """Record ``[event, path]`` for every write-like operation under ``roots``."""
    prefixes = tuple(str(root.resolve()) + os.sep for root in roots)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if not writing:
                return
        elif event in PATH_EVENTS:
            path = args[0]
        else:
            return
        if isinstance(path, (str, bytes, os.PathLike)) and not isinstance(path, int):
            text = os.fsdecode(path)
            full = os.path.abspath(text)
            if full.startswith(prefixes):
                seen.append([event, full])

    sys.addaudithook(hook)


def main() -> int:
    spec_path = Path(sys.argv[1])
    spec = json.loads(spec_path.read_text())
    from seqkit.cli import main as seqkit_main
    from seqkit.trainer.trainer import process_state

    state = process_state()
    rank = state.process_index
    writes: list[list[str]] = []
    watch_writes(
        [Path(entry["output_dir"]).parent for entry in spec if "argv" not in entry], writes
    )
    codes: dict[str, list[int]] = {}
    for entry in spec:
        if "argv" in entry:
            stderr = spec_path.parent / f"{entry['name']}.rank-{rank}.stderr"
            with open(stderr, "w", encoding="utf-8") as err, contextlib.redirect_stderr(err):
                codes[entry["name"]] = [seqkit_main(entry["argv"])]
            state.wait_for_everyone()
            continue
        base = ["train", entry["recipe"], *(f"--set={o}" for o in entry["overrides"])]
        base += ["--output-dir", entry["output_dir"]]
        stdout = spec_path.parent / f"{entry['name']}.rank-{rank}.stdout"
        with open(stdout, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
            last = f"--set=trainer.max_steps={entry['max_steps']}"
            if entry["split_at"] is None:
                codes[entry["name"]] = [seqkit_main([*base, last])]
            else:
                first = seqkit_main([*base, f"--set=trainer.max_steps={entry['split_at']}"])
                # Only trainer.max_steps may change on resume: the second half of the same run.
                codes[entry["name"]] = [first, seqkit_main([*base, "--resume", last])]
        state.wait_for_everyone()
    (spec_path.parent / f"codes.rank-{rank}.json").write_text(json.dumps(codes))
    (spec_path.parent / f"writes.rank-{rank}.json").write_text(json.dumps(writes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
