"""``seqkit compose RUN_OR_MODEL_DIR --out FILE.mid``: a new piece from a trained composer.

Writes a standard MIDI file, a piano-roll PNG beside it (``FILE.png``) and, with ``--audio``
where fluidsynth and a General MIDI soundfont are installed, ``FILE.wav``. A composer is any
causal LM trained on the ``chorales`` data module (its ``config.json`` says so), read from a
run, its final model folder or one of its checkpoints, without the MIDI corpus. The work is
done by :func:`seqkit.music.composing.compose`; this module only declares the command line.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from seqkit.checks import MAX_NEW_TOKENS, MAX_SEED, check_optional_range, check_range
from seqkit.errors import UserError

if TYPE_CHECKING:
    from seqkit.parts.model_folder import Loaded


def cmd_compose(args: argparse.Namespace) -> int:
    from seqkit.music.composing import compose
    from seqkit.recipes import check_sampling

    check_optional_range("--length", args.length, 1, MAX_NEW_TOKENS, integer=True)
    check_sampling("--", None, args.temperature, args.top_k, args.top_p)
    check_range("--seed", args.seed, 0, MAX_SEED, integer=True)
    return compose(lambda: open_composer(args.model), args)


def open_composer(path: str) -> Loaded:
    """The composer behind a run directory, a model folder or a checkpoint: a causal LM whose
    ``config.json`` names the ``chorales`` data module (MIDI as REMI tokens)."""
    from seqkit.music.data import MidiCorpus
    from seqkit.parts.model_folder import open_trained

    loaded = open_trained(path)
    if loaded is None or not issubclass(loaded.data_class, MidiCorpus):
        raise UserError(
            f"{path} is not a composer (train one with a recipe from recipes/music/); "
            "for text models use seqkit generate"
        )
    return loaded


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compose", help="write a new piece of music as MIDI")
    parser.add_argument("model", metavar="RUN_MODEL_DIR_OR_CHECKPOINT")
    parser.add_argument("--out", required=True, metavar="FILE.mid", help="MIDI file to write")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same piece")
    parser.add_argument(
        "--length", type=int, default=None, help="most tokens to add (default 1024; stops at EOS)"
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--primer", metavar="FILE.mid", help="MIDI the new piece continues")
    parser.add_argument(
        "--audio", action="store_true", help="also write FILE.wav (needs fluidsynth + soundfont)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=cmd_compose)
