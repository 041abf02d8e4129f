"""``seqkit translate RUN_OR_MODEL_DIR``: translate text with a trained encoder–decoder.

``--text TEXT`` translates one sentence (``--plot-attention FILE.png`` draws its attention
matrix, source words across, generated words down); ``--input FILE`` translates a file line by
line, in batches, to standard output or ``--output FILE``. ``--beam-size`` 1 is greedy.

The model is read through the parts (:func:`seqkit.parts.model_folder.open_trained`): a model
folder, a run, or a checkpoint ``RUN/checkpoints/step-N`` (with the run's ``model/``, so the
corpus is never read). Any model of the ``seq2seq`` task translates
(:mod:`seqkit.trainer.translation`); the beam defaults are the ``generation_config.json``
beside it. Nothing a user already has is overwritten unless ``--overwrite`` says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqkit.checks import (
    MAX_BATCH,
    MAX_BEAM,
    MAX_LENGTH_PENALTY,
    MAX_POSITIONS,
    check_optional_range,
    check_path,
    check_range,
)
from seqkit.errors import UserError
from seqkit.folders import resolve_model_dir
from seqkit.outputs import check_new_file, write_text_atomically


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"--input {path} does not exist")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"--input {path} is not UTF-8 text ({exc.reason})") from None


def _report(counts: dict, max_source_length: int | None) -> None:
    if counts.get("unknown"):
        print(
            f"note: {counts['unknown']} source word(s) are not in the model's vocabulary and "
            "were read as <unk>",
            file=sys.stderr,
        )
    if counts.get("truncated"):
        print(
            f"note: {counts['truncated']} sentence(s) were longer than the model's maximum of "
            f"{max_source_length} source tokens and were truncated",
            file=sys.stderr,
        )


def plot_attention(weights, source_words, target_words, path: Path) -> None:
    """Save the attention matrix (target rows × source columns) with words on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows, columns = len(target_words), len(source_words)
    figure, axes = plt.subplots(figsize=(max(4, 0.5 * columns + 2), max(3, 0.4 * rows + 1.5)))
    image = axes.imshow(weights[:rows, :columns], cmap="viridis", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(columns), source_words, rotation=60, ha="right")
    axes.set_yticks(range(rows), target_words)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def cmd_translate(args: argparse.Namespace) -> int:
    from seqkit.parts.model_folder import open_trained
    from seqkit.parts.registry import TASKS
    from seqkit.trainer.translation import (
        TranslationTask,
        attention_labels,
        decoding_defaults,
        model_folder_of,
        translate_batch,
    )

    if (args.text is None) == (args.input is None):
        raise UserError("give exactly one of --text TEXT or --input FILE")
    check_optional_range("--beam-size", args.beam_size, 1, MAX_BEAM, integer=True)
    check_optional_range(
        "--length-penalty", args.length_penalty, -MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY
    )
    check_optional_range("--max-length", args.max_length, 1, MAX_POSITIONS, integer=True)
    check_range("--batch-size", args.batch_size, 1, MAX_BATCH, integer=True)
    if args.input is not None:
        check_path("--input", args.input)
    if args.plot_attention and args.text is None:
        raise UserError("--plot-attention draws one sentence: use it with --text")
    if args.text is not None and not args.text.strip():
        raise UserError("--text is empty; nothing to translate")
    for option, value in (("--output", args.output), ("--plot-attention", args.plot_attention)):
        if value:
            check_new_file(value, overwrite=args.overwrite, option=option)

    loaded = open_trained(args.model)
    if loaded is None or not issubclass(TASKS.get(loaded.task_name), TranslationTask):
        folder = resolve_model_dir(args.model)
        raise UserError(f"{folder} holds a model that does not translate (not an encoder–decoder)")
    folder = model_folder_of(args.model)
    model, tokenizer = loaded.model, loaded.tokenizer
    defaults = decoding_defaults(folder)
    beam_size = args.beam_size or defaults["beam_size"]
    length_penalty = (
        args.length_penalty if args.length_penalty is not None else defaults["length_penalty"]
    )
    max_source_length = getattr(model.config, "max_source_length", None)

    if args.text is not None:
        translations, output, source_ids, counts = translate_batch(
            model, tokenizer, [args.text], beam_size, length_penalty, args.max_length
        )
        _report(counts, max_source_length)
        print(translations[0])
        if args.plot_attention:
            if output.attentions is None:
                raise UserError(f"{folder}'s model has no attention (attention: none) to plot")
            source_words, target_words = attention_labels(
                tokenizer, source_ids[0].tolist(), output.sequences[0].tolist()
            )
            plot_attention(
                output.attentions[0].numpy(), source_words, target_words, Path(args.plot_attention)
            )
            print(f"attention plot: {args.plot_attention}", file=sys.stderr)
        return 0

    lines = _read_lines(Path(args.input))
    # Empty lines stay empty in the output, so line N of the output translates line N.
    wanted = [i for i, line in enumerate(lines) if line.strip()]
    results = [""] * len(lines)
    counts_total: dict[str, int] = {}
    for start in range(0, len(wanted), args.batch_size):
        chunk = wanted[start : start + args.batch_size]
        translations, _, _, counts = translate_batch(
            model, tokenizer, [lines[i] for i in chunk], beam_size, length_penalty, args.max_length
        )
        for i, translation in zip(chunk, translations, strict=True):
            results[i] = translation
        for key, value in counts.items():
            counts_total[key] = counts_total.get(key, 0) + value
    text = "".join(line + "\n" for line in results)
    if args.output:
        write_text_atomically(Path(args.output), text)
        print(f"translated {len(wanted)} line(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if len(wanted) < len(lines):
        print(f"note: {len(lines) - len(wanted)} empty line(s) left empty", file=sys.stderr)
    _report(counts_total, max_source_length)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("translate", help="translate text with a seq2seq model")
    parser.add_argument("model", metavar="RUN_OR_MODEL_DIR")
    parser.add_argument("--text", help="one sentence to translate")
    parser.add_argument("--input", metavar="FILE", help="translate this file, one sentence a line")
    parser.add_argument("--output", metavar="FILE", help="write translations here (not stdout)")
    parser.add_argument("--beam-size", type=int, default=None, help="1 = greedy (default: saved)")
    parser.add_argument("--length-penalty", type=float, default=None)
    parser.add_argument("--max-length", type=int, default=None, help="most tokens per sentence")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (--input)")
    parser.add_argument("--plot-attention", metavar="FILE.png", help="draw the attention matrix")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=cmd_translate)
