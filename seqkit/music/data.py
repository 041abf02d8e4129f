"""The ``chorales`` data module: MIDI pieces as REMI tokens for a causal language model.

Recipe → MIDI files (:mod:`seqkit.music.corpus`: music21's Bach chorales converted once and
cached, a folder, or a Hub data set; bad files skipped and listed) → split by piece → each piece
as ``[BOS] REMI tokens [EOS]`` (:mod:`seqkit.music.tokenization`; optionally every training
piece again in each key its range allows) → the training pieces joined into one token stream,
cut into windows (one every ``data.stride`` tokens and one at each piece's start,
:class:`PieceWindows`); the held-out pieces cut into non-overlapping windows, so that every
held-out token is scored once.

The model is whatever the recipe's ``model.architecture`` builds for ``task: causal-lm`` (a GPT,
an LSTM...): a network does not change when it reads REMI tokens instead of characters. What
is musical about a run is only this data module, and a trained folder says so in its
``config.json`` (:data:`seqkit.parts.model_folder.DATA_MODULE_FIELD`: ``"data_module":
"chorales"``): that is how ``seqkit compose``, ``generate`` and ``evaluate`` know that a GPT
folder composes, and read its miditok tokenizer with :func:`load_music_tokenizer`.

Registered as ``chorales`` (its default corpus); ``data.path`` or ``data.hub`` read any MIDI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from seqkit.checks import check_ranges, count
from seqkit.data.lm import CausalLMDataset
from seqkit.errors import UserError
from seqkit.music.tokenization import MusicTokenizer, load_music_tokenizer
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection, Recipe

if TYPE_CHECKING:
    from seqkit.music.corpus import Piece

MAX_TRANSPOSE = 6
MAX_BEAT_RESOLUTION = 96
"""Finest grid of REMI positions per quarter note (each position is a token of the vocabulary)."""

logger = logging.getLogger(__name__)


@dataclass
class MidiSection(DataSection):
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


class PieceWindows(CausalLMDataset):
    """Training windows of a stream of pieces: one every ``stride`` tokens, as
    :class:`~seqkit.data.lm.CausalLMDataset` makes them, plus one starting at each piece's BOS.

    Why the extra windows: ``seqkit compose`` starts every piece from ``[BOS]`` alone, at
    position 0 and, for the LSTM, from a zero state. Windows at a fixed stride almost never
    start there (about one piece in ``stride``), so a model trained on them alone has rarely
    seen how a piece *opens* from nothing. Measured on the chorales (recipe as shipped, 600
    steps): the GPT began 14 of 50 sampled pieces with the ``Bar`` token that every real chorale
    opens with when trained on strided windows alone, 45 of 50 with these windows added.
    """

    def __init__(self, ids: torch.Tensor, block_size: int, stride: int, bos_token_id: int):
        super().__init__(ids, block_size, stride)  # checks the sizes; keeps ids as int64
        last = len(ids) - block_size - 1  # the latest start that still has a full window
        openings = (self.ids[: last + 1] == bos_token_id).nonzero().flatten().tolist()
        self.starts = sorted(set(range(0, last + 1, stride)) | set(openings))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = self.starts[index]  # a list: negative indices and IndexError come with it
        window = self.ids[start : start + self.block_size + 1]  # (block_size + 1,)
        return {"input_ids": window[:-1], "labels": window[1:]}  # labels: next-token targets


def _log(message: str) -> None:
    logger.info(message)


def _stream(tokenizer: MusicTokenizer, scores: list) -> torch.Tensor:
    ids: list[int] = []
    for score in scores:
        ids.extend(tokenizer.encode_piece(score))
    return torch.tensor(ids, dtype=torch.long)


class MidiCorpus(DataModule):
    """The ``chorales`` data module (see the module docstring)."""

    Section = MidiSection
    load_tokenizer = staticmethod(load_music_tokenizer)

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        # The pieces of the last prepare() or scoring_data(): what evaluation compares against.
        self.train_pieces: list[Piece] = []
        self.held_out: list[Piece] = []

    def tokenizer(self, init_from: Path | None) -> MusicTokenizer:
        if init_from is not None:
            return load_music_tokenizer(init_from)
        if self.recipe.tokenizer.path:
            return load_music_tokenizer(self.recipe.tokenizer.path)
        # REMI has nothing to learn: its vocabulary is its configuration.
        return MusicTokenizer.create(
            beat_resolution=self.data.beat_resolution, velocities=self.data.velocities
        )

    def facts(self, tokenizer: MusicTokenizer) -> dict[str, Any]:
        return {"vocab_size": tokenizer.vocab_size}

    def _block_size(self, window: int, most: int | None) -> int:
        block_size = self.data.block_size or window
        if most is not None and block_size > most:
            raise UserError(f"data.block_size ({block_size}) exceeds the model's context ({most})")
        return block_size

    def prepare(self, tokenizer: MusicTokenizer, window: int, most: int | None) -> Prepared:
        """Load, split and tokenize the corpus (the same way for training and evaluation, so
        ``seqkit evaluate`` scores exactly the pieces training held out)."""
        from seqkit.data import CausalLMDataset
        from seqkit.music.corpus import corpus_paths, load_pieces, split_by_piece
        from seqkit.music.tokenization import pitch_bounds, transpositions

        block_size = self._block_size(window, most)
        pieces = load_pieces(corpus_paths(self.data, log=_log), log=_log)
        self.train_pieces, self.held_out = split_by_piece(pieces, self.data.val_fraction)
        train_scores = [p.score for p in self.train_pieces]
        if self.data.transpose:
            bounds = [pitch_bounds(s) for s in train_scores]
            low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
            train_scores += [
                shifted
                for score in (p.score for p in self.train_pieces)
                for shifted in transpositions(score, self.data.transpose, low, high)
            ]
        train_ids = _stream(tokenizer, train_scores)
        val_ids = _stream(tokenizer, [p.score for p in self.held_out])
        eval_data = None
        if self.held_out:
            if len(val_ids) < block_size + 1:
                raise UserError(
                    f"the {len(self.held_out)} held-out pieces hold {len(val_ids)} tokens, "
                    f"fewer than one window of block_size + 1 = {block_size + 1}; raise "
                    "data.val_fraction or lower model.block_size"
                )
            # Non-overlapping windows: every held-out token is scored once.
            eval_data = CausalLMDataset(val_ids, block_size, stride=block_size)
        transposed = " (with transpositions)" if self.data.transpose else ""
        return Prepared(
            train_data=PieceWindows(
                train_ids, block_size, self.data.stride, tokenizer.bos_token_id
            ),
            eval_data=eval_data,
            summary={
                "pieces": f"{len(self.train_pieces)} train, {len(self.held_out)} held out",
                "train tokens": f"{len(train_ids)}{transposed}",
                "held-out tokens": len(val_ids),
            },
        )

    def scoring_data(
        self, tokenizer: MusicTokenizer, window: int, most: int | None, path: Path
    ) -> Prepared:
        """Every piece of ``path`` (a MIDI file or a folder of them) in non-overlapping
        windows."""
        from seqkit.data import CausalLMDataset
        from seqkit.music.corpus import load_pieces, midi_files_in

        block_size = self._block_size(window, most)
        self.train_pieces, self.held_out = [], load_pieces(midi_files_in(path), log=_log)
        ids = _stream(tokenizer, [p.score for p in self.held_out])
        return Prepared(train_data=None, eval_data=CausalLMDataset(ids, block_size, block_size))

    def vocabulary(self, tokenizer: MusicTokenizer) -> str:
        return f"{tokenizer.vocab_size} REMI tokens"

    def card_tags(self, tokenizer: MusicTokenizer) -> list[str]:
        return ["music", "midi", "symbolic-music", "remi"]

    def sample(self, model: Any, tokenizer: MusicTokenizer) -> str:
        """A short piece from ``[BOS]`` (``sample.prompt`` is text, so it is not read),
        summarised."""
        from seqkit.music.composing import describe_sample

        return describe_sample(model, tokenizer, self.recipe)

    def extra_evaluation(
        self,
        model: Any,
        tokenizer: MusicTokenizer,
        eval_data: Any,
        metrics: dict[str, float],
        options: Any,
    ) -> dict[str, float]:
        """NLL per note and musical statistics (:func:`~seqkit.music.composing.
        musical_evaluation`); ``options.num_pieces`` pieces generated with ``options.seed``."""
        from seqkit.music.composing import DEFAULT_EVALUATION_PIECES, musical_evaluation

        num_pieces = getattr(options, "num_pieces", None) or DEFAULT_EVALUATION_PIECES
        return musical_evaluation(
            model,
            tokenizer,
            eval_data,
            self.held_out,
            self.train_pieces,
            metrics,
            num_pieces=num_pieces,
            seed=getattr(options, "seed", None) or 0,
        )

    @classmethod
    def generate_command(cls, loaded: Any, args: Any) -> int:
        """``seqkit generate`` continues text; a composer writes MIDI."""
        raise UserError(
            f"{args.model} is a composer; use `seqkit compose {args.model} --out FILE.mid`"
        )
