"""Composing with a trained causal language model whose tokens are REMI music.

What the ``chorales`` data module (:mod:`seqkit.music.data`) says a sample of its model is:

* :func:`compose_ids` — new pieces as token ids: ``[BOS]``, an optional primer, and the model's
  continuation up to ``[EOS]``, sampled through :func:`seqkit.generation.generate` (the same
  sampler text models use);
* :func:`describe_sample` — the closing sample of a training run, summarised in a line;
* :func:`compose` — ``seqkit compose``: a piece as MIDI with a piano roll beside it (and WAV
  with ``--audio`` where fluidsynth is installed);
* :func:`musical_evaluation` — what ``seqkit evaluate`` adds to the held-out loss: NLL per note
  and the statistics of :mod:`seqkit.music.stats` for generated pieces next to held-out (and,
  as a yardstick, training) pieces.

The model is any causal LM the recipe's ``model.architecture`` builds (a GPT or an LSTM); this
module only reads its context length, if it has one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from seqkit.errors import UserError

if TYPE_CHECKING:
    from seqkit.music.corpus import Piece
    from seqkit.music.tokenization import MusicTokenizer
    from seqkit.parts.model_folder import Loaded
    from seqkit.recipes import Recipe

DEFAULT_LENGTH = 1024
"""Tokens a composition may take by default: about one chorale (it stops earlier at EOS)."""
DEFAULT_EVALUATION_PIECES = 20
"""Pieces ``seqkit evaluate`` generates unless ``--num-pieces`` says otherwise."""


def context_of(model: torch.nn.Module) -> int | None:
    """The longest sequence the model reads (None for a recurrent network: it has no limit)."""
    return getattr(model.config, "n_positions", None)


def compose_ids(
    model: torch.nn.Module,
    tokenizer: MusicTokenizer,
    *,
    num_pieces: int = 1,
    primer: list[int] | None = None,
    length: int = DEFAULT_LENGTH,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> list[list[int]]:
    """Token ids of ``num_pieces`` new pieces (BOS, primer and the continuation, stopped at
    EOS), sampled in one batch through :func:`seqkit.generation.generate`."""
    from seqkit.generation import generate

    prompt = [tokenizer.bos_token_id, *(primer or [])]
    context = context_of(model)
    if context is not None and len(prompt) >= context:
        raise UserError(
            f"the primer is {len(prompt) - 1} tokens, but the model reads at most {context} "
            f"(one of them the start token), and needs room to continue; use a shorter primer"
        )
    output = generate(
        model,
        torch.tensor([prompt] * num_pieces, dtype=torch.long),
        max_new_tokens=length,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        eos_token_id=tokenizer.eos_token_id,
        generator=torch.Generator().manual_seed(seed),
    )
    pieces = []
    for row in output.tolist():
        new = row[len(prompt) :]
        end = new.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in new else len(new)
        pieces.append(row[: len(prompt) + end])
    return pieces


def describe_sample(model: torch.nn.Module, tokenizer: MusicTokenizer, recipe: Recipe) -> str:
    """What a run prints after training: one short piece, summarised, and how to hear one."""
    from seqkit.music.stats import piece_statistics

    settings = recipe.sample
    (ids,) = compose_ids(
        model,
        tokenizer,
        length=settings.max_new_tokens,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        seed=recipe.trainer.seed,
    )
    stats = piece_statistics(tokenizer.decode(ids))
    tokens = " ".join(tokenizer.tokenizer[i] for i in ids[1:25])
    if not stats["notes"]:
        return f"(no notes in {len(ids) - 1} tokens) {tokens} ..."
    return (
        f"{stats['notes']} notes in {len(ids) - 1} tokens, key {stats['key']}, "
        f"{stats['in_key_share']:.0%} in key: {tokens} ...\n"
        "(write one as MIDI: seqkit compose RUN_DIR --out piece.mid)"
    )


def compose(open_model: Any, args: Any) -> int:
    """``seqkit compose``: write a new piece as MIDI, a piano roll beside it, and maybe WAV.

    ``open_model()`` gives the :class:`~seqkit.parts.model_folder.Loaded` composer; it is called
    once the output files and the primer have been checked, so a mistake in them costs no
    model loading.
    """
    from seqkit.music.corpus import read_midi
    from seqkit.music.render import (
        audio_renderer,
        piano_roll_png,
        render_wav,
        with_tempo,
        write_midi,
    )
    from seqkit.music.stats import piece_statistics
    from seqkit.outputs import check_new_file

    out = check_new_file(
        args.out, overwrite=args.overwrite, option="--out", suffixes=(".mid", ".midi")
    )
    png, wav = out.with_suffix(".png"), out.with_suffix(".wav")
    for path in (png, wav if args.audio else None):
        if path is not None:
            check_new_file(path, overwrite=args.overwrite, option="--out (beside it)")
    # --length, --temperature, --top-k, --top-p and --seed: checked by `seqkit compose`
    primer_score = None
    if args.primer:
        primer_path = Path(args.primer)
        if not primer_path.is_file():
            raise UserError(f"--primer {primer_path} does not exist")
        primer_score = read_midi(primer_path, what="--primer")
    renderer = audio_renderer() if args.audio else None

    loaded: Loaded = open_model()
    model, tokenizer = loaded.model, loaded.tokenizer
    primer = tokenizer.encode(primer_score) if primer_score is not None else None
    (ids,) = compose_ids(
        model,
        tokenizer,
        primer=primer,
        length=args.length or DEFAULT_LENGTH,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    score = with_tempo(tokenizer.decode(ids))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_midi(score, out)
    piano_roll_png(score, png, title=f"{out.name} (seed {args.seed})")
    stats = piece_statistics(score)
    if stats["notes"]:
        print(
            f"wrote {out} ({stats['notes']} notes, {len(ids) - 1} tokens, key {stats['key']}) "
            f"and {png}"
        )
    else:
        print(f"wrote {out} and {png}")
        print(
            f"note: the model wrote no notes in {len(ids) - 1} tokens; try another --seed or "
            "a larger --length",
            file=sys.stderr,
        )
    if renderer is not None:
        render_wav(out, wav, *renderer)
        print(f"wrote {wav}")
    return 0


def count_scored_notes(tokenizer: MusicTokenizer, eval_data: Any) -> tuple[int, int]:
    """``(tokens, notes)`` among the targets of every window of ``eval_data`` (a
    :class:`~seqkit.data.CausalLMDataset`): what the evaluation's mean loss was taken over."""
    tokens = notes = 0
    for index in range(len(eval_data)):
        labels = eval_data[index]["labels"]
        tokens += labels.numel()
        notes += tokenizer.count_notes(labels.tolist())
    return tokens, notes


def musical_evaluation(
    model: torch.nn.Module,
    tokenizer: MusicTokenizer,
    eval_data: Any,
    held_out: list[Piece],
    train: list[Piece],
    metrics: dict[str, float],
    num_pieces: int = DEFAULT_EVALUATION_PIECES,
    seed: int = 0,
) -> dict[str, float]:
    """NLL per note, and musical statistics of ``num_pieces`` generated pieces against the
    held-out pieces (and, as the yardstick a perfect model would reach, training pieces).

    "Per note" divides the evaluation's total loss (``eval/loss`` × scored tokens) by the
    number of notes (Pitch tokens) among the scored targets: the cost of a note with everything
    it takes to place it.
    """
    from seqkit.music.stats import compare_sets

    tokens, notes = count_scored_notes(tokenizer, eval_data)
    scores: dict[str, Any] = {
        "nll_per_note": metrics["eval/loss"] * tokens / max(notes, 1),
        "tokens": tokens,
        "notes": notes,
    }
    # Generated pieces as long as a typical held-out piece (they stop earlier at EOS).
    lengths = sorted(len(tokenizer.encode_piece(p.score)) for p in held_out)
    length = lengths[len(lengths) // 2]
    generated = compose_ids(model, tokenizer, num_pieces=num_pieces, length=length, seed=seed)
    comparison = compare_sets(
        [tokenizer.decode(ids) for ids in generated], [p.score for p in held_out[:num_pieces]]
    )
    for side, name in (("generated", "generated"), ("reference", "held_out")):
        for key, value in comparison[side].items():
            scores[f"{name}_{key}"] = value
    scores["pitch_class_distance_generated_vs_held_out"] = comparison["pitch_class_distance"]
    if train:  # not when scoring a file: the training corpus may be gone
        yardstick = compare_sets(
            [p.score for p in train[:num_pieces]], [p.score for p in held_out[:num_pieces]]
        )
        scores["pitch_class_distance_train_vs_held_out"] = yardstick["pitch_class_distance"]
        for key in ("in_key_share", "pitch_range", "note_density"):
            scores[f"train_{key}"] = yardstick["generated"][key]
    return scores
