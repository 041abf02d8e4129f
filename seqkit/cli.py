"""The ``seqkit`` command line: train recipes, list them, and generate from trained models.

Mistakes a user can make (a bad path, key, value or input file) end as one line on stderr and
exit code 2; a traceback always means a bug in seqkit. A run directory that already exists is
never overwritten unless ``--overwrite`` says so.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqkit.console import show_logs
from seqkit.errors import UserError, missing_extra
from seqkit.run_folder import RunFolder
from seqkit.trainer.callbacks import Callback

EXIT_USER_ERROR = 2
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE}
)
"""OS errors a user fixes outside seqkit (free space, permissions): reported as one line."""

COMMAND_MODULES = (
    "seqkit.commands.evaluate",
    "seqkit.commands.export",
    "seqkit.commands.tokenizer",
    "seqkit.commands.translate",
    "seqkit.commands.compose",
)
"""Modules that add one subcommand each through ``register(commands)``; they import their heavy
dependencies inside the command, so ``seqkit --help`` stays fast."""


# ---------------------------------------------------------------------------- train


def _resolve_recipe_and_run_dir(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(recipe file, run directory)``. ``seqkit train --resume RUN_DIR`` resumes a run with
    its own saved recipe, so no ``--set`` needs retyping."""
    from seqkit.recipes import RECIPES_DIR, find_recipe
    from seqkit.run_folder import is_legacy_run, is_run

    given = Path(args.recipe)
    if given.is_dir() and (is_run(given) or is_legacy_run(given)):
        if not args.resume:
            raise UserError(
                f"{given} is a run folder; use `seqkit train --resume {given}` to continue it, "
                "or give a recipe to start a new run"
            )
        if args.output_dir and Path(args.output_dir).resolve() != given.resolve():
            raise UserError(
                f"--resume {given}: --output-dir {args.output_dir} names another folder; "
                "a run resumes in its own folder"
            )
        return given / "recipe.yaml", given
    recipe_path = find_recipe(args.recipe, RECIPES_DIR)
    run_dir = Path(args.output_dir) if args.output_dir else Path("runs") / recipe_path.stem
    return recipe_path, run_dir


def _check_resumable(run_dir: Path, recipe_dict: dict) -> None:
    """The recipe must be the one the run was trained with (only trainer.max_steps may grow)."""
    from seqkit.parts.resolve import load_recipe
    from seqkit.recipes import recipe_to_dict

    if not (run_dir / "recipe.yaml").is_file():
        raise UserError(f"--resume: {run_dir} is not a seqkit run (no recipe.yaml)")
    saved_recipe = load_recipe(run_dir / "recipe.yaml")
    saved = recipe_to_dict(saved_recipe)
    changed = _changed_keys(saved, recipe_dict, allowed={"trainer.max_steps"})
    if changed:
        raise UserError(
            f"--resume: the recipe differs from the one {run_dir} was trained with in "
            f"{', '.join(changed)} (only trainer.max_steps may change)"
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


def cmd_train(args: argparse.Namespace) -> int:
    from seqkit.data.fingerprint import check_unchanged, write_fingerprint
    from seqkit.parts import compose, model_folder, resolve
    from seqkit.recipes import recipe_to_dict, save_recipe

    recipe_path, run_dir = _resolve_recipe_and_run_dir(args)
    recipe = resolve.load_recipe(recipe_path, args.set or [])
    resolve.resolve(recipe)  # the parts and the model section, checked before the folder is
    from seqkit.trainer.trainer import process_state

    state = process_state()
    folder = RunFolder(run_dir)

    def check_folder() -> int | None:
        try:
            if args.resume:
                folder.check_resume()
                _check_resumable(run_dir, recipe_to_dict(recipe))
                check_unchanged(recipe, run_dir)
                finished = _already_finished(folder, recipe.trainer.max_steps)
                if finished is None:
                    _check_latest_checkpoint(run_dir, recipe.trainer.max_steps)
                return finished
            folder.check_new(overwrite=args.overwrite)
            return None
        except BaseException:
            folder.lock.release()
            raise

    finished = _on_main_process(state, check_folder)
    if finished is not None:
        print(
            f"run {run_dir} already finished at step {finished} (trainer.max_steps "
            f"{recipe.trainer.max_steps}); nothing to do — raise trainer.max_steps to train on"
        )
        folder.lock.release()
        return 0

    try:
        # Everything that can fail on user input (data, tokenizer, model shape, the Trainer's
        # own settings and the data against the batch size) fails here, before the run
        # directory is made or an old run is moved aside.
        job = compose.build_job(recipe, run_dir, resume=args.resume)
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
        if args.resume:
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
        result = trainer.train(resume=args.resume)
    except BaseException:
        if state.is_main_process and not args.resume:
            folder.abandon()  # only before the first step: a started run stays resumable
        folder.lock.release()
        raise
    if trainer.accelerator.is_main_process:
        final = run_dir / "final"
        try:
            job.save_final(final, result.eval_metrics, run_dir)
            folder.finished(result.step)
        finally:
            folder.lock.release()  # also when writing the model fails (a full disk)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.eval_metrics.items()))
        print(f"step {result.step}: {shown or 'no evaluation data'}")
        if job.sample is not None:
            print(f"--- sample ({recipe.sample.max_new_tokens} new tokens) ---")
            print(job.sample())
            print("---")
        print(f"run directory: {run_dir}  (model: {final})")
    return 0


# ---------------------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    from seqkit.parts.model_folder import open_trained
    from seqkit.parts.registry import TASKS

    loaded = open_trained(args.model)
    task_class = TASKS.get(loaded.task_name)
    # Data that is not text says what generating from it is (a composer: seqkit compose).
    generate_data = getattr(loaded.data_class, "generate_command", None)
    if generate_data is not None:
        return generate_data(loaded, args)
    if task_class.generates_text:
        return generate_text(lambda _: (loaded.model, loaded.tokenizer), Path(args.model), args)
    # A task whose model makes something other than text (a GAN's image grid).
    generate_other = getattr(task_class, "generate_command", None)
    if generate_other is None:
        raise UserError(
            f"{args.model} holds a {loaded.task_name} model, which does not generate; "
            "use seqkit evaluate"
        )
    return generate_other(loaded, args)


def generate_text(load_pretrained, folder: Path, args: argparse.Namespace) -> int:
    """The text half of ``seqkit generate``: check the sampling options, continue the prompt
    with the model ``load_pretrained(folder)`` returns, and print the text."""
    import torch

    from seqkit.checks import MAX_SEED, check_range
    from seqkit.generation import generate
    from seqkit.recipes import check_sampling

    if args.prompt is None:
        raise UserError("--prompt is required for a text model")

    check_sampling("--", args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    check_range("--seed", args.seed, 0, MAX_SEED, integer=True)

    model, tokenizer = load_pretrained(folder)
    ids = tokenizer.encode(args.prompt, what="prompt")
    if not ids:
        raise UserError("--prompt is empty; give at least one character")
    # Recurrent models have no context limit; position-embedding models do.
    context = getattr(model.config, "n_positions", None)
    if context is not None and len(ids) > context:
        print(
            f"note: the prompt has {len(ids)} tokens, more than the model's context of "
            f"{context}; keeping the last {context}",
            file=sys.stderr,
        )
        ids = ids[-context:]
    generator = torch.Generator().manual_seed(args.seed)
    output = generate(
        model,
        torch.tensor([ids]),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=generator,
    )
    print(tokenizer.decode(output[0].tolist()))
    return 0


# ---------------------------------------------------------------------------- recipes


def cmd_recipes(args: argparse.Namespace) -> int:
    from seqkit.recipes import RECIPES_DIR, list_recipes

    # Names and descriptions only: validating each recipe would import every part (torch,
    # transformers: seconds) to print a list; `seqkit train` validates the one it runs.
    rows = list_recipes(RECIPES_DIR, validate=False)
    if not rows:
        print(f"no recipes found in {RECIPES_DIR}")
        return 0
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0


# ---------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqkit", description="Train, sample and export sequence models."
    )
    from seqkit import __version__

    parser.add_argument("--version", action="version", version=f"seqkit {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        default=0,
        help="show only warnings and errors on stderr",
    )
    verbosity.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        help="also show debugging messages on stderr",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a recipe")
    train.add_argument("recipe", help="recipe file, or a name from `seqkit recipes`")
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. --set trainer.max_steps=100 (repeatable)",
    )
    train.add_argument("--output-dir", help="run directory (default: runs/RECIPE_NAME)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.set_defaults(run=cmd_train)

    gen = commands.add_parser("generate", help="sample from a trained model")
    gen.add_argument("model", metavar="RUN_OR_MODEL_DIR")
    gen.add_argument("--prompt", help="text to continue (text models)")
    gen.add_argument("--max-new-tokens", type=int, default=200)
    gen.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    gen.add_argument("--top-k", type=int, default=None)
    gen.add_argument("--top-p", type=float, default=None)
    gen.add_argument("--seed", type=int, default=0, help="same seed, same text")
    images = gen.add_argument_group("image models (dcgan)")
    images.add_argument("--num-samples", type=int, default=None, help="images in the grid")
    images.add_argument("--out", metavar="FILE.png", help="where to write the grid")
    images.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    gen.set_defaults(run=cmd_generate)

    recipes = commands.add_parser("recipes", help="list the recipes that ship with seqkit")
    recipes.set_defaults(run=cmd_recipes)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def _quiet_libraries() -> None:
    """Keep stderr for seqkit's own messages: no weight-loading bars or info logs."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_logs(args.verbosity)
    if args.command != "recipes":
        _quiet_libraries()
    try:
        return args.run(args)
    except UserError as error:
        print(f"seqkit: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("seqkit: interrupted; resume with --resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `seqkit generate ... | head` closes stdout early; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        # A full disk, a read-only file system, a permission or a missing optional package:
        # things the user fixes outside seqkit, one line each.
        problem = _environment_problem(error) or missing_extra(error)
        if problem is None:
            raise
        print(f"seqkit: error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR


_LIBRARY_WORDS = {
    "No space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
}
"""How libraries that wrap the OS error in their own exception (safetensors' SafetensorError,
torch's RuntimeError from its file writer) spell the problems of :data:`_ENVIRONMENT_ERRNOS`."""


def _environment_problem(error: BaseException) -> str | None:
    """One line for an error the user fixes outside seqkit (free space, permissions), else None."""
    if isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRNOS:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    text = str(error)
    for words, code in _LIBRARY_WORDS.items():
        if words in text:
            return (
                f"{os.strerror(code)} while writing ({type(error).__name__}); free space or fix "
                "the permission, then run the command again (a training run: with --resume)"
            )
    return None


if __name__ == "__main__":
    sys.exit(main())
