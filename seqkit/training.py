"""Training a recipe into a run folder: what ``seqkit train`` and :func:`seqkit.train` share.

:func:`train_run` checks everything a user can get wrong (the recipe, the run folder, a resumed
run's recipe, data and checkpoint) before it writes anything, claims the folder, trains, and
writes ``final/``. A resumed run continues with the recipe it was trained with.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqkit.errors import UserError
from seqkit.run_folder import RunFolder
from seqkit.trainer.callbacks import Callback


def resolve_recipe_and_run_dir(
    recipe: str | Path, output_dir: str | Path | None, resume: bool
) -> tuple[Path, Path]:
    """``(recipe file, run directory)``. ``seqkit train --resume RUN_DIR`` resumes a run with
    its own saved recipe, so no ``--set`` needs retyping."""
    from seqkit.recipes import RECIPES_DIR, find_recipe
    from seqkit.run_folder import is_legacy_run, is_run

    given = Path(recipe)
    if given.is_dir() and (is_run(given) or is_legacy_run(given)):
        if not resume:
            raise UserError(
                f"{given} is a run folder; use `seqkit train --resume {given}` to continue it, "
                "or give a recipe to start a new run"
            )
        if output_dir and Path(output_dir).resolve() != given.resolve():
            raise UserError(
                f"--resume {given}: --output-dir {output_dir} names another folder; "
                "a run resumes in its own folder"
            )
        return given / "recipe.yaml", given
    recipe_path = find_recipe(str(recipe), RECIPES_DIR)
    run_dir = Path(output_dir) if output_dir else Path("runs") / recipe_path.stem
    return recipe_path, run_dir


def _check_resumable(run_dir: Path, recipe_dict: dict) -> None:
    """The recipe must be the one the run was trained with (only trainer.max_steps may grow,
    and gradient checkpointing and compilation may be switched)."""
    from seqkit.parts.resolve import load_recipe
    from seqkit.recipes import recipe_to_dict

    if not (run_dir / "recipe.yaml").is_file():
        raise UserError(f"--resume: {run_dir} is not a seqkit run (no recipe.yaml)")
    saved_recipe = load_recipe(run_dir / "recipe.yaml")
    saved = recipe_to_dict(saved_recipe)
    # max_steps extends a run; the other two change how a step is computed, not its result.
    allowed = {"trainer.max_steps", "trainer.gradient_checkpointing", "trainer.compile"}
    changed = _changed_keys(saved, recipe_dict, allowed=allowed)
    if changed:
        raise UserError(
            f"--resume: the recipe differs from the one {run_dir} was trained with in "
            f"{', '.join(changed)} (only trainer.max_steps, gradient_checkpointing and compile "
            "may change)"
        )


def _changed_keys(old: dict, new: dict, allowed: set[str], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, allowed, f"{path}.")
        elif a != b and path not in allowed:
            changed.append(path)
    return changed


def _check_latest_checkpoint(run_dir: Path, max_steps: int) -> None:
    """The checkpoint ``--resume`` will load exists and its training state can be trusted:
    checked before the data is read, so a damaged run costs one line and no waiting."""
    from seqkit.trainer.checkpoint import CheckpointManager, load_trainer_state

    latest = CheckpointManager(run_dir / "checkpoints", keep_last=0).latest()
    if latest is None:
        raise UserError(f"--resume: no complete checkpoint in {run_dir / 'checkpoints'}")
    load_trainer_state(latest, max_steps)


def _already_finished(folder: RunFolder, max_steps: int) -> int | None:
    """The step a finished run ended at when resuming it would train nothing, else None."""
    from seqkit.trainer.checkpoint import CheckpointManager

    if not (folder.path / "final" / "config.json").is_file():
        return None  # the run ended before writing its model: resuming writes it
    step = folder.finished_step()
    if step is None:  # a run from before the marker: its newest checkpoint tells
        steps = CheckpointManager(folder.path / "checkpoints", keep_last=0).all_steps()
        step = steps[-1] if steps and steps[-1] >= max_steps else None
    return step if step is not None and step >= max_steps else None


class _StartedCallback(Callback):
    """Tells the run folder that the new run has trained a step (the replaced run may go)."""

    def __init__(self, folder: RunFolder, is_main: bool):
        self.folder, self.is_main = folder, is_main

    def on_step_end(self, trainer, control, logs) -> None:
        if self.is_main:
            self.folder.started()


def _on_main_process(state, action) -> Any:
    """Run ``action`` on the main process only and share its outcome: a UserError there ends
    every process with the same line (instead of leaving the others waiting at a barrier)."""
    result, message = None, None
    if state.is_main_process:
        try:
            result = action()
        except UserError as error:
            message = str(error)
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        message, result = broadcast_object_list([message, result])
    if message is not None:
        raise UserError(message)
    return result


@dataclass
class TrainedRun:
    """What a finished training leaves: its folder, last step, final evaluation, and (on the
    main process) its model folder ``final/`` and a text sample when the task generates."""

    run_dir: Path
    step: int
    eval_metrics: dict[str, float]
    max_steps: int = 0
    """The recipe's ``trainer.max_steps``."""
    final: Path | None = None
    sample: str | None = None
    sample_tokens: int = 0
    """How many new tokens the sample asked for (the recipe's ``sample.max_new_tokens``)."""
    finished_before: bool = False
    """True when the run had already reached ``trainer.max_steps``: nothing was trained."""


def train_run(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainedRun:
    """Train ``recipe`` (a shipped recipe's name, a YAML file, or with ``resume`` a run folder)
    with ``overrides`` (``section.field=value``) into ``output_dir`` (default
    ``runs/<recipe name>``): what ``seqkit train`` and :func:`seqkit.train` run. A user's
    mistake is a UserError raised before anything is written."""
    from seqkit.data.fingerprint import check_unchanged, write_fingerprint
    from seqkit.parts import compose, model_folder, resolve
    from seqkit.recipes import recipe_to_dict, save_recipe

    recipe_path, run_dir = resolve_recipe_and_run_dir(recipe, output_dir, resume)
    recipe = resolve.load_recipe(recipe_path, list(overrides))
    resolve.resolve(recipe)  # the parts and the model section, checked before the folder is
    from seqkit.trainer.trainer import process_state

    state = process_state()
    folder = RunFolder(run_dir)

    def check_folder() -> int | None:
        try:
            if resume:
                folder.check_resume()
                _check_resumable(run_dir, recipe_to_dict(recipe))
                check_unchanged(recipe, run_dir)
                finished = _already_finished(folder, recipe.trainer.max_steps)
                if finished is None:
                    _check_latest_checkpoint(run_dir, recipe.trainer.max_steps)
                return finished
            folder.check_new(overwrite=overwrite)
            return None
        except BaseException:
            folder.lock.release()
            raise

    finished = _on_main_process(state, check_folder)
    if finished is not None:
        folder.lock.release()
        final = run_dir / "final"
        return TrainedRun(
            run_dir, finished, {}, recipe.trainer.max_steps, final=final, finished_before=True
        )

    try:
        # Everything that can fail on user input (data, tokenizer, model shape, the Trainer's
        # own settings and the data against the batch size) fails here, before the run
        # directory is made or an old run is moved aside.
        job = compose.build_job(recipe, run_dir, resume=resume)
        from seqkit.trainer import Trainer

        trainer = Trainer(
            job.task,
            recipe.trainer,
            output_dir=run_dir,
            train_data=job.train_data,
            eval_data=job.eval_data,
            collate_fn=job.collate_fn,
            callbacks=[*job.callbacks, _StartedCallback(folder, state.is_main_process)],
            train_lengths=job.train_lengths,
            hyperparameters=recipe_to_dict(recipe),
        )
    except BaseException:
        folder.lock.release()
        raise
    if state.is_main_process:
        for key, value in job.summary.items():
            print(f"{key}: {value}", file=sys.stderr)
        if resume:
            folder.lock.announce()
            if job.save_run_files is not None and not model_folder.saved_run_model(run_dir):
                job.save_run_files(run_dir)  # a run from before seqkit saved them
        else:
            folder.claim()
            try:
                save_recipe(recipe, run_dir / "recipe.yaml")
                write_fingerprint(recipe, run_dir)
                if job.save_run_files is not None:
                    job.save_run_files(run_dir)
            except BaseException:
                folder.abandon()
                raise
    state.wait_for_everyone()

    try:
        result = trainer.train(resume=resume)
    except BaseException:
        if state.is_main_process and not resume:
            folder.abandon()  # only before the first step: a started run stays resumable
        folder.lock.release()
        raise
    run = TrainedRun(run_dir, result.step, dict(result.eval_metrics), recipe.trainer.max_steps)
    if trainer.accelerator.is_main_process:
        run.final = run_dir / "final"
        try:
            job.save_final(run.final, result.eval_metrics, run_dir)
            folder.finished(result.step)
        finally:
            folder.lock.release()  # also when writing the model fails (a full disk)
        if job.sample is not None:
            run.sample, run.sample_tokens = job.sample(), recipe.sample.max_new_tokens
    return run
