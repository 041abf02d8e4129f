"""The ``seqkit`` command line: train recipes, list them, and generate from trained models.

Mistakes a user can make (a bad path, key, value or input file) end as one line on stderr and
exit code 2; a traceback always means a bug in seqkit. A run directory that already exists is
never overwritten unless ``--overwrite`` says so.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from seqkit.errors import UserError
from seqkit.folders import resolve_model_dir

EXIT_USER_ERROR = 2

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


def _resolve_run_dir(args: argparse.Namespace, recipe_path: Path) -> Path:
    if args.output_dir:
        return Path(args.output_dir)
    return Path("runs") / recipe_path.stem


def _check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool, recipe_dict: dict) -> None:
    """Refuse anything that would overwrite or mix up a user's existing run."""
    from seqkit.families import data_section_for
    from seqkit.recipes import load_recipe, recipe_to_dict

    exists = run_dir.exists() and any(run_dir.iterdir()) if run_dir.is_dir() else run_dir.exists()
    if resume:
        if not (run_dir / "recipe.yaml").is_file():
            raise UserError(f"--resume: {run_dir} is not a seqkit run (no recipe.yaml)")
        saved_recipe = load_recipe(run_dir / "recipe.yaml", data_section_for=data_section_for)
        saved = recipe_to_dict(saved_recipe)
        changed = _changed_keys(saved, recipe_dict, allowed={"trainer.max_steps"})
        if changed:
            raise UserError(
                f"--resume: the recipe differs from the one {run_dir} was trained with in "
                f"{', '.join(changed)} (only trainer.max_steps may change)"
            )
        return
    if not exists:
        return
    if not overwrite:
        raise UserError(
            f"run directory {run_dir} already exists; pass --resume to continue it, "
            "--overwrite to replace it, or --output-dir for a new one"
        )
    if not (run_dir / "recipe.yaml").is_file():
        raise UserError(f"{run_dir} is not a seqkit run (no recipe.yaml); refusing to delete it")
    shutil.rmtree(run_dir)


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


def cmd_train(args: argparse.Namespace) -> int:
    from seqkit.families import data_section_for, get_family
    from seqkit.recipes import RECIPES_DIR, find_recipe, load_recipe, recipe_to_dict, save_recipe

    recipe_path = find_recipe(args.recipe, RECIPES_DIR)
    recipe = load_recipe(recipe_path, args.set or [], data_section_for=data_section_for)
    family = get_family(recipe.task)
    from seqkit.recipes import parse_section

    model_section = parse_section(family.ModelSection, recipe.model, "model")
    run_dir = _resolve_run_dir(args, recipe_path)
    from seqkit.trainer.trainer import process_state

    state = process_state()
    if state.is_main_process:
        _check_run_dir(
            run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            recipe_dict=recipe_to_dict(recipe),
        )
    state.wait_for_everyone()

    # Everything that can fail on user input (data, tokenizer, model shape) fails here,
    # before the run directory is touched.
    job = family.build(recipe, model_section)
    from seqkit.trainer import Trainer

    # The Trainer checks its own settings (and the data against the batch size) here too.
    trainer = Trainer(
        job.task,
        recipe.trainer,
        output_dir=run_dir,
        train_data=job.train_data,
        eval_data=job.eval_data,
        collate_fn=job.collate_fn,
        callbacks=job.callbacks,
        train_lengths=job.train_lengths,
    )
    if state.is_main_process:
        for key, value in job.summary.items():
            print(f"{key}: {value}", file=sys.stderr)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            save_recipe(recipe, run_dir / "recipe.yaml")

    result = trainer.train(resume=args.resume)
    if trainer.accelerator.is_main_process:
        final = run_dir / "final"
        job.save_final(final, result.eval_metrics, run_dir)
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
    from seqkit.families import family_for_model

    folder = resolve_model_dir(args.model)
    family = family_for_model(folder)
    if hasattr(family, "generate_command"):
        return family.generate_command(folder, args)
    return generate_text(family.load_pretrained, folder, args)


def generate_text(load_pretrained, folder: Path, args: argparse.Namespace) -> int:
    """The text half of ``seqkit generate``: check the sampling options, continue the prompt
    with the model ``load_pretrained(folder)`` returns, and print the text. Families whose
    ``generate_command`` only adds a check of their own (the recurrent family refuses a
    classifier folder) end here too."""
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
    from seqkit.families import data_section_for
    from seqkit.recipes import RECIPES_DIR, list_recipes

    rows = list_recipes(RECIPES_DIR, data_section_for=data_section_for)
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


if __name__ == "__main__":
    sys.exit(main())
