"""The ``music-gpt`` and ``music-lstm`` families: composers trained on MIDI.

Recipe → MIDI files (:mod:`seqkit.music.corpus`: music21's Bach chorales converted once and
cached, a folder, or a Hub data set; bad files skipped and listed) → split by piece → each piece
as ``[BOS] REMI tokens [EOS]`` (:mod:`seqkit.music.tokenization`; optionally every training
piece again in each key its range allows) → the training pieces joined into one token stream,
cut into windows of ``block_size`` (one every ``data.stride`` tokens and one at each piece's
start, :class:`PieceWindows`) → a GPT or an LSTM language model
(:mod:`seqkit.music.models`) trained by the Trainer → a Hub folder with the miditok tokenizer.

Commands on a trained composer:

* ``seqkit compose RUN --out FILE.mid`` (:func:`compose`): a new piece, optionally continuing
  a primer, as MIDI with a piano-roll PNG beside it (and a WAV with ``--audio`` where
  fluidsynth is installed);
* ``seqkit evaluate RUN`` (:func:`evaluate`): held-out negative log-likelihood per token and
  per note, and the statistics of :mod:`seqkit.music.stats` for generated pieces next to the
  same numbers for held-out (and, as a yardstick, training) pieces.

The model section serves both architectures; each field says which one reads it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from seqkit.checks import (
    MAX_DEPTH,
    MAX_POSITIONS,
    MAX_WIDTH,
    check_ranges,
    count,
    probability,
)
from seqkit.errors import UserError
from seqkit.parts.base import Job
from seqkit.recipes import DataSection as BaseDataSection
from seqkit.recipes import Recipe, recipe_to_dict

logger = logging.getLogger(__name__)

TASKS = ("music-gpt", "music-lstm")
MODEL_TYPES = ("seqkit-music-gpt", "seqkit-music-lstm")
"""Kept as strings so that finding a model's family does not import the models."""
DEFAULT_LENGTH = 1024
"""Tokens a composition may take by default: about one chorale (it stops earlier at EOS)."""
MAX_TRANSPOSE = 6
MAX_BEAT_RESOLUTION = 96
"""Finest grid of REMI positions per quarter note (each position is a token of the vocabulary)."""


@dataclass
class DataSection(BaseDataSection):
    """The ``data`` section of a music recipe. ``path`` is a .mid/.midi file or a folder of
    them; ``hub`` a Hub data set whose ``midi_column`` holds MIDI bytes; otherwise
    ``embedded``. ``val_fraction`` is the share of *pieces* held out."""

    embedded: str | None = "bach-chorales"
    """bach-chorales: the Bach scores bundled with music21, converted to MIDI once and cached."""
    cache_dir: str | None = None
    """Where converted and downloaded MIDI files are cached (default ~/.cache/seqkit/music)."""
    midi_column: str = "midi"
    """Column of a Hub data set that holds the MIDI file bytes."""
    max_pieces: int | None = None
    """Use only the first N pieces (sorted by name); null = all."""
    transpose: int = 0
    """Augmentation: also train on each training piece shifted by 1..N semitones up and down,
    where its notes stay within the corpus's pitch range (6 = every key; 0 = off)."""
    beat_resolution: int = 8
    """REMI positions per quarter note: the grid onsets and durations are rounded to."""
    velocities: bool = False
    """Encode note velocities (for expressive MIDI; the chorales have one loudness)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(
            "data",
            self,
            {
                "max_pieces": count(1, None),
                "transpose": count(0, MAX_TRANSPOSE),
                "beat_resolution": count(1, MAX_BEAT_RESOLUTION),
            },
        )


@dataclass
class ModelSection:
    """The ``model`` section of a ``music-gpt`` or ``music-lstm`` recipe."""

    n_layer: int = 2
    """Transformer blocks (gpt) or stacked LSTM layers (lstm)."""
    n_embd: int = 256
    """Width of the residual stream (gpt) or of the token embedding (lstm)."""
    n_head: int = 4
    """Attention heads per block (gpt only); n_embd must be divisible by it."""
    hidden_size: int = 512
    """Width of each LSTM layer's state (lstm only)."""
    block_size: int = 256
    """Tokens per training window; the GPT's context length (the LSTM has no limit)."""
    dropout: float = 0.1
    """Dropout on embeddings and between layers (both)."""

    def __post_init__(self) -> None:
        check_ranges(
            "model",
            self,
            {
                "n_layer": count(1, MAX_DEPTH),
                "n_embd": count(1, MAX_WIDTH),
                "n_head": count(1, MAX_DEPTH),
                "hidden_size": count(1, MAX_WIDTH),
                "block_size": count(1, MAX_POSITIONS),
                "dropout": probability(),
            },
        )


# ----------------------------------------------------------------------------- data


@dataclass
class MusicData:
    """The corpus of a recipe, tokenized: pieces on both sides of the split and their ids."""

    train_pieces: list
    val_pieces: list
    train_ids: torch.Tensor
    """All training pieces (and their transpositions) as one stream of ``[BOS] … [EOS]``."""
    val_ids: torch.Tensor


def _stream(tokenizer, scores) -> torch.Tensor:
    ids: list[int] = []
    for score in scores:
        ids.extend(tokenizer.encode_piece(score))
    return torch.tensor(ids, dtype=torch.long)


class PieceWindows(torch.utils.data.Dataset):
    """Training windows of a stream of pieces: one every ``stride`` tokens, as
    :class:`~seqkit.data.CausalLMDataset` makes them, plus one starting at each piece's BOS.

    Why the extra windows: ``seqkit compose`` starts every piece from ``[BOS]`` alone, at
    position 0 and, for the LSTM, from a zero state. Windows at a fixed stride almost never
    start there (about one piece in ``stride``), so a model trained on them alone has rarely
    seen how a piece *opens* from nothing. Measured on the chorales (recipe as shipped, 600
    steps): the GPT began 14 of 50 sampled pieces with the ``Bar`` token that every real chorale
    opens with when trained on strided windows alone, 45 of 50 with these windows added.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, stride: int, bos_token_id: int):
        if stride < 1:
            raise UserError(f"data.stride must be at least 1, got {stride}")
        if len(ids) < block_size + 1:
            raise UserError(
                f"the training pieces hold {len(ids)} tokens, fewer than the block_size + 1 = "
                f"{block_size + 1} one example needs"
            )
        self.ids = ids.long()
        self.block_size = block_size
        self.stride = stride
        last = len(ids) - block_size - 1  # the latest start that still has a full window
        openings = (self.ids[: last + 1] == bos_token_id).nonzero().flatten().tolist()
        self.starts = sorted(set(range(0, last + 1, stride)) | set(openings))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = self.starts[index]  # a list: negative indices and IndexError come with it
        window = self.ids[start : start + self.block_size + 1]  # (block_size + 1,)
        return {"input_ids": window[:-1], "labels": window[1:]}  # labels: next-token targets


def prepare_data(data: DataSection, tokenizer) -> MusicData:
    """Load, split and tokenize the corpus ``data`` names (the same way for training and
    evaluation, so ``evaluate`` scores exactly the pieces training held out)."""
    from seqkit.music.corpus import corpus_paths, load_pieces, split_by_piece
    from seqkit.music.tokenization import pitch_bounds, transpositions

    pieces = load_pieces(corpus_paths(data, log=logger.info), log=logger.info)
    train_pieces, val_pieces = split_by_piece(pieces, data.val_fraction)
    train_scores = [p.score for p in train_pieces]
    if data.transpose:
        bounds = [pitch_bounds(s) for s in train_scores]
        low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
        train_scores += [
            shifted
            for score in (p.score for p in train_pieces)
            for shifted in transpositions(score, data.transpose, low, high)
        ]
    return MusicData(
        train_pieces=train_pieces,
        val_pieces=val_pieces,
        train_ids=_stream(tokenizer, train_scores),
        val_ids=_stream(tokenizer, [p.score for p in val_pieces]),
    )


def _tokenizer_for(recipe: Recipe):
    from seqkit.music.tokenization import MusicTokenizer

    if recipe.tokenizer.path:
        return MusicTokenizer.from_pretrained(Path(recipe.tokenizer.path))
    return MusicTokenizer.create(
        beat_resolution=recipe.data.beat_resolution, velocities=recipe.data.velocities
    )


# ----------------------------------------------------------------------------- model


def build_model(task: str, section: ModelSection, tokenizer) -> torch.nn.Module:
    """A fresh composer of the architecture ``task`` names, sized by ``section``."""
    from seqkit.music.models import (
        MusicGPTConfig,
        MusicGPTForCausalLM,
        MusicLSTMConfig,
        MusicLSTMForCausalLM,
    )

    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if task == "music-gpt":
        if section.n_embd % section.n_head:
            raise UserError(
                f"model.n_embd ({section.n_embd}) must be divisible by model.n_head "
                f"({section.n_head})"
            )
        config = MusicGPTConfig(
            vocab_size=tokenizer.vocab_size,
            n_positions=section.block_size,
            n_embd=section.n_embd,
            n_layer=section.n_layer,
            n_head=section.n_head,
            resid_pdrop=section.dropout,
            embd_pdrop=section.dropout,
            attn_pdrop=section.dropout,
            **special,
        )
        return MusicGPTForCausalLM(config)
    config = MusicLSTMConfig(
        vocab_size=tokenizer.vocab_size,
        cell="lstm",
        embedding_size=section.n_embd,
        hidden_size=section.hidden_size,
        num_layers=section.n_layer,
        dropout=section.dropout,
        **special,
    )
    return MusicLSTMForCausalLM(config)


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Load, split and tokenize the corpus, build the composer, and wrap both for the Trainer."""
    from seqkit.data import CausalLMDataset
    from seqkit.trainer.tasks import LanguageModelingTask

    if recipe.task not in TASKS:
        raise UserError(f"task {recipe.task!r} is not a music task ({', '.join(TASKS)})")
    tokenizer = _tokenizer_for(recipe)
    data = prepare_data(recipe.data, tokenizer)
    torch.manual_seed(recipe.trainer.seed)  # the same seed gives the same initial weights
    model = build_model(recipe.task, section, tokenizer)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise UserError("the tokenizer and the model disagree about the vocabulary size")
    block_size = recipe.data.block_size or section.block_size
    if recipe.task == "music-gpt" and block_size > section.block_size:
        raise UserError(
            f"data.block_size ({block_size}) exceeds the GPT's context (model.block_size "
            f"{section.block_size})"
        )
    train_data = PieceWindows(
        data.train_ids, block_size, recipe.data.stride, tokenizer.bos_token_id
    )
    eval_data = None
    if data.val_pieces:
        if len(data.val_ids) < block_size + 1:
            raise UserError(
                f"the {len(data.val_pieces)} held-out pieces hold {len(data.val_ids)} tokens, "
                f"fewer than one window of block_size + 1 = {block_size + 1}; raise "
                "data.val_fraction or lower model.block_size"
            )
        # Non-overlapping windows: every held-out token is scored once.
        eval_data = CausalLMDataset(data.val_ids, block_size, stride=block_size)

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        save_pretrained(model, tokenizer, folder)
        _write_card(folder, recipe, model, metrics, run_dir)

    def sample() -> str:
        return describe_sample(model, tokenizer, recipe)

    return Job(
        task=LanguageModelingTask(model),
        train_data=train_data,
        eval_data=eval_data,
        save_final=save_final,
        sample=sample,
        summary={
            "pieces": f"{len(data.train_pieces)} train, {len(data.val_pieces)} held out",
            "vocabulary": f"{tokenizer.vocab_size} REMI tokens",
            "train tokens": len(data.train_ids)
            if not recipe.data.transpose
            else f"{len(data.train_ids)} (with transpositions)",
            "held-out tokens": len(data.val_ids),
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


# ----------------------------------------------------------------------------- saving, loading


def save_pretrained(model, tokenizer, folder: Path) -> None:
    """Weights, config, miditok tokenizer and generation defaults as a Hub folder."""
    from transformers import GenerationConfig

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    GenerationConfig(
        do_sample=True,
        temperature=1.0,
        max_new_tokens=DEFAULT_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).save_pretrained(folder)


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from transformers import AutoModelForCausalLM
from seqkit.music.tokenization import MusicTokenizer

model = AutoModelForCausalLM.from_pretrained("PATH")
tokenizer = MusicTokenizer.from_pretrained("PATH")  # miditok REMI: PATH/tokenizer.json
# or, from the command line: seqkit compose PATH --out piece.mid
"""


def _write_card(folder: Path, recipe: Recipe, model, metrics, run_dir: Path) -> None:
    from seqkit.export.model_card import write_model_card

    architecture = "GPT" if recipe.task == "music-gpt" else "LSTM"
    name = recipe.source.stem if recipe.source else "recipe"
    write_model_card(
        folder,
        title=f"seqkit {architecture} composer ({name})",
        family=recipe.task,
        num_parameters=model.num_parameters(),
        recipe=recipe_to_dict(recipe),
        metrics=metrics,
        datasets=[recipe.data.hub] if recipe.data.hub and not recipe.data.path else [],
        loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
        tags=["music", "midi", "symbolic-music", "remi", architecture.lower()],
        how_to_load=HOW_TO_LOAD,
    )


def load_pretrained(folder: Path):
    """``(model, tokenizer)`` from a composer folder written by :func:`save_pretrained`."""
    from seqkit.folders import check_vocabulary, load_weights, loading, read_config
    from seqkit.music.models import MusicGPTForCausalLM, MusicLSTMForCausalLM
    from seqkit.music.tokenization import MusicTokenizer

    model_type = read_config(folder)["model_type"]
    cls = MusicGPTForCausalLM if model_type == "seqkit-music-gpt" else MusicLSTMForCausalLM
    with loading(f"the tokenizer in {folder}"):
        tokenizer = MusicTokenizer.from_pretrained(folder)
    model = load_weights(cls, folder)
    check_vocabulary(folder, tokenizer.vocab_size, model.config.vocab_size)
    model.eval()
    return model, tokenizer


def generate_command(folder: Path, args) -> int:
    raise UserError(f"{folder} is a composer; use `seqkit compose {folder} --out FILE.mid`")


# ----------------------------------------------------------------------------- composing


def context_of(model) -> int | None:
    """The longest sequence the model reads (None for the LSTM: it has no limit)."""
    return getattr(model.config, "n_positions", None)


def compose_ids(
    model,
    tokenizer,
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


def describe_sample(model, tokenizer, recipe: Recipe) -> str:
    """What the run prints after training: one short piece, summarised, and how to hear one."""
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


def compose(folder: Path, args) -> int:
    """``seqkit compose``: write a new piece as MIDI, a piano roll beside it, and maybe WAV."""
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
    primer = None
    if args.primer:
        primer_path = Path(args.primer)
        if not primer_path.is_file():
            raise UserError(f"--primer {primer_path} does not exist")
        primer_score = read_midi(primer_path, what="--primer")
    renderer = audio_renderer() if args.audio else None

    model, tokenizer = load_pretrained(folder)
    if args.primer:
        primer = tokenizer.encode(primer_score)
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
        logger.warning(
            "note: the model wrote no notes in %d tokens; try another --seed or a larger --length",
            len(ids) - 1,
        )
    if renderer is not None:
        render_wav(out, wav, *renderer)
        print(f"wrote {wav}")
    return 0


# ----------------------------------------------------------------------------- evaluation


def held_out_nll(model, tokenizer, val_ids: torch.Tensor, block_size: int, batch_size: int):
    """``(nats per token, nats per note, tokens, notes)`` over non-overlapping windows of the
    held-out stream. "Per note" divides the same total by the number of notes (Pitch tokens)
    among the scored targets: the cost of a note with everything it takes to place it."""
    from seqkit.data import CausalLMDataset

    windows = CausalLMDataset(val_ids, block_size, stride=block_size)
    total, tokens, notes = 0.0, 0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            rows = [windows[i] for i in range(start, min(start + batch_size, len(windows)))]
            batch = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
            count = batch["labels"].numel()
            total += float(model(**batch).loss) * count
            tokens += count
            notes += tokenizer.count_notes(batch["labels"].flatten().tolist())
    return total / tokens, total / max(notes, 1), tokens, notes


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, Any]:
    """Held-out NLL per token and per note, and musical statistics of generated pieces against
    held-out pieces (and, as the yardstick a perfect model would reach, training pieces)."""
    from seqkit.music.stats import compare_sets
    from seqkit.parts.compose import load_recipe

    if run_dir is None:
        raise UserError(
            f"{folder} is not inside a run directory; evaluate needs the run's recipe.yaml to "
            "find its held-out pieces"
        )
    recipe = load_recipe(run_dir / "recipe.yaml")
    if recipe.data.val_fraction <= 0:
        raise UserError(f"{run_dir}'s recipe holds out no pieces (data.val_fraction is 0)")
    num_pieces = args.num_pieces if args.num_pieces is not None else 20  # checked by evaluate
    model, tokenizer = load_pretrained(folder)
    data = prepare_data(recipe.data, tokenizer)
    context = context_of(model)
    block_size = recipe.data.block_size or recipe.model.get("block_size", 256)
    block_size = min(block_size, context) if context else block_size
    batch_size = args.batch_size or recipe.trainer.eval_batch_size or recipe.trainer.batch_size
    per_token, per_note, tokens, notes = held_out_nll(
        model, tokenizer, data.val_ids, block_size, batch_size
    )

    # Generated pieces as long as a typical held-out piece (they stop earlier at EOS).
    lengths = sorted(len(tokenizer.encode_piece(p.score)) for p in data.val_pieces)
    length = lengths[len(lengths) // 2]
    generated = compose_ids(model, tokenizer, num_pieces=num_pieces, length=length, seed=args.seed)
    generated_scores = [tokenizer.decode(ids) for ids in generated]
    held_out = [p.score for p in data.val_pieces[:num_pieces]]
    train = [p.score for p in data.train_pieces[:num_pieces]]
    comparison = compare_sets(generated_scores, held_out)
    yardstick = compare_sets(train, held_out)

    metrics: dict[str, Any] = {
        "val_nll_per_token": per_token,
        "val_perplexity": math.exp(min(per_token, 50.0)),
        "val_nll_per_note": per_note,
        "val_tokens": tokens,
        "val_notes": notes,
    }
    for side, name in (("generated", "generated"), ("reference", "held_out")):
        for key, value in comparison[side].items():
            metrics[f"{name}_{key}"] = value
    metrics["pitch_class_distance_generated_vs_held_out"] = comparison["pitch_class_distance"]
    metrics["pitch_class_distance_train_vs_held_out"] = yardstick["pitch_class_distance"]
    for key in ("in_key_share", "pitch_range", "note_density"):
        metrics[f"train_{key}"] = yardstick["generated"][key]
    return metrics
