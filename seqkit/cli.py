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

from seqkit.console import show_logs
from seqkit.errors import UserError, missing_extra

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


def cmd_train(args: argparse.Namespace) -> int:
    from seqkit.training import train_run

    run = train_run(
        args.recipe,
        args.set or [],
        args.output_dir,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    if run.finished_before:
        print(
            f"run {run.run_dir} already finished at step {run.step} (trainer.max_steps "
            f"{run.max_steps}); nothing to do — raise trainer.max_steps to train on"
        )
        return 0
    if run.final is None:
        return 0  # not the main process: it printed nothing while training either
    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(run.eval_metrics.items()))
    print(f"step {run.step}: {shown or 'no evaluation data'}")
    if run.sample is not None:
        print(f"--- sample ({run.sample_tokens} new tokens) ---")
        print(run.sample)
        print("---")
    print(f"run directory: {run.run_dir}  (model: {run.final})")
    return 0


# ---------------------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    from seqkit.parts.model_folder import open_standalone, open_trained
    from seqkit.parts.registry import TASKS

    # A text model whose network loads without transformers starts in about half the time.
    standalone = open_standalone(args.model)
    if standalone is not None:
        return generate_text(lambda _: standalone, Path(args.model), args)
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
    from seqkit.checks import MAX_SEED, check_range
    from seqkit.generation import continue_prompt
    from seqkit.recipes import check_sampling

    if args.prompt is None:
        raise UserError("--prompt is required for a text model")

    check_sampling("--", args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    check_range("--seed", args.seed, 0, MAX_SEED, integer=True)
    check_range("--threads", args.threads, 1, os.cpu_count() or 1, integer=True)

    model, tokenizer = load_pretrained(folder)
    # Decoding one sequence a token at a time gives each operation too little work to split:
    # measured on this project's 2-core machine, idle, a second thread made the shakespeare-char
    # GPT (0.9M parameters) 2.2-2.5x slower per token and larger ones (11M, 124M) no faster;
    # with the other core busy (a training run beside it), 2 threads were 3-10x slower.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        text = continue_prompt(
            model,
            tokenizer,
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            option="--prompt",
        )
    finally:  # a program that called main() keeps its own setting
        torch.set_num_threads(threads)
    print(text)
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
    gen.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for text generation (default 1: one token at a time is too little "
        "work to share, and sharing it with a busy core stalls every step)",
    )
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
    # The libraries read these settings when they are imported; importing them here only to
    # set them would cost a second to commands that never use them (``seqkit generate`` of a
    # GPT folder). transformers' bars follow huggingface_hub's switch.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "huggingface_hub" in sys.modules:  # imported already (a notebook, the tests): tell it now
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
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
