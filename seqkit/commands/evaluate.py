"""``seqkit evaluate RUN_OR_MODEL_DIR``: measure a trained model the way its family is measured.

The command only finds the model and its run; what "evaluate" means (validation loss, BLEU,
accuracy, NLL per note, return over episodes) belongs to the family module's ``evaluate``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqkit.checks import (
    MAX_BATCH,
    MAX_BEAM,
    MAX_EPISODES,
    MAX_SAMPLES,
    MAX_SEED,
    check_optional_range,
    check_path,
)
from seqkit.errors import UserError
from seqkit.outputs import check_new_file, write_text_atomically


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqkit.parts.evaluation import evaluate
    from seqkit.parts.model_folder import open_trained

    check_optional_range("--batch-size", args.batch_size, 1, MAX_BATCH, integer=True)
    check_optional_range("--beam-size", args.beam_size, 1, MAX_BEAM, integer=True)
    check_optional_range("--episodes", args.episodes, 1, MAX_EPISODES, integer=True)
    check_optional_range("--num-pieces", args.num_pieces, 1, MAX_SAMPLES, integer=True)
    check_optional_range("--seed", args.seed, 0, MAX_SEED, integer=True)
    if args.json:
        check_new_file(args.json, overwrite=args.overwrite, option="--json")
    if args.data is not None:
        check_path("--data", args.data)
    loaded = open_trained(args.model)
    metrics = evaluate(loaded, _data_files(args, loaded), args.batch_size, args)
    for name, value in metrics.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    if args.json:
        write_text_atomically(Path(args.json), json.dumps(metrics, indent=2) + "\n")
    return 0


def _data_files(args: argparse.Namespace, loaded) -> str | tuple[str, str] | None:
    """``--data FILE``, or ``(source, reference)`` from ``--source`` and ``--reference`` for
    a data module that reads such a pair of files."""
    if args.source is None and args.reference is None:
        return args.data
    if (args.source is None) != (args.reference is None):
        raise UserError("--source and --reference go together (one sentence a line each)")
    if args.data is not None:
        raise UserError("give --data FILE or --source with --reference, not both")
    if not getattr(loaded.data_class, "paired_files", False):
        raise UserError(
            f"--source/--reference are for translation models; {args.model} holds a "
            f"{loaded.task_name} model (use --data FILE)"
        )
    for option, value in (("--source", args.source), ("--reference", args.reference)):
        check_path(option, value)
    return args.source, args.reference


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="measure a trained model")
    parser.add_argument("model", metavar="RUN_OR_MODEL_DIR")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="score every example of this file (in the recipe's data format) instead of the "
        "run's validation split",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    family = parser.add_argument_group("family-specific options")
    family.add_argument(
        "--source",
        help="translation: source sentences, one a line (with --reference; or --data FILE of "
        "source<TAB>reference lines)",
    )
    family.add_argument("--reference", help="translation: reference translations, one a line")
    family.add_argument("--beam-size", type=int, default=None, help="translation: beam width")
    family.add_argument(
        "--plots",
        action="store_true",
        help="save plots under RUN/plots/: confusion matrix (classifiers), feature maps and errors "
        "(vision)",
    )
    family.add_argument("--episodes", type=int, default=None, help="rl: greedy episodes to play")
    family.add_argument("--video", metavar="FILE.gif", help="rl: record one episode")
    family.add_argument("--num-pieces", type=int, default=None, help="music: pieces to generate")
    family.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=cmd_evaluate)
