"""``seqkit export RUN_OR_MODEL_DIR OUT_DIR``: write a trained model as a Hub folder.

GPT models become stock ``transformers.GPT2LMHeadModel`` folders by default, which load where
seqkit is not installed; every other family is written in seqkit's own classes, which the
``transformers`` Auto classes load once seqkit is imported (``--format`` chooses). A stock GPT-2
folder exported with ``--format native`` is imported into seqkit. ``--push-to-hub`` uploads the
folder once it is written. The work is done by :func:`seqkit.export.exporter.export_model`.
"""

from __future__ import annotations

import argparse

from seqkit.export.formats import FORMATS


def cmd_export(args: argparse.Namespace) -> int:
    from seqkit.errors import UserError
    from seqkit.export.exporter import export_model
    from seqkit.export.model_card import format_parameter_count

    if args.private and not args.push_to_hub:
        raise UserError("--private applies to --push-to-hub, which was not given")
    result = export_model(
        args.model,
        args.out_dir,
        format=args.format,
        overwrite=args.overwrite,
        push_to_hub=args.push_to_hub,
        private=args.private,
        license=args.license,
    )
    written = result.model
    print(
        f"wrote {result.folder} ({result.format} format: {written.architecture}, "
        f"{format_parameter_count(written.num_parameters)} parameters)"
    )
    if result.url:
        print(f"pushed to {result.url}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help="write a trained model as a Hub folder")
    parser.add_argument("model", metavar="RUN_OR_MODEL_DIR", help="run, model folder or checkpoint")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="the Hub folder to write")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="transformers: the stock transformers class (default where one exists: GPT); "
        "native: seqkit's classes (default otherwise; imports a stock GPT-2 folder)",
    )
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="then upload it to this repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--license", help="the model card's license (default: apache-2.0)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier export in OUT_DIR"
    )
    parser.set_defaults(run=cmd_export)
