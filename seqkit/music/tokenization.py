"""Music as tokens: miditok's REMI encoding, wrapped for seqkit's composers.

Why REMI (Huang & Yang 2020, "Pop Music Transformer: Beat-based Modeling and Generation of
Expressive Pop Piano Compositions")? It writes time as *where in the bar* a note starts
(``Bar``, ``Position_k``) rather than as time shifts since the previous event (MIDI-Like,
Oore et al. 2018). A chorale is strongly metrical — phrases end on strong beats, harmony
changes on the beat — and REMI hands the model that grid directly instead of asking it to add
up shifts. Each note is then ``Pitch`` + ``Duration`` (no ``Velocity``: music21's MIDI files
have one loudness throughout, so velocity tokens would only lengthen the sequences; recipes
can turn them on for expressive MIDI). A four-part chorale becomes about 1,000 tokens from a
vocabulary of about 250.

All pitched tracks of a piece are merged into one before encoding: the composer writes the
whole texture (four voices of a chorale, both hands of a piano piece) as one stream, and one
stream per piece is what a language model reads. Drums are dropped.

The tokenizer is saved with the model as miditok's own ``tokenizer.json``, so the folder also
loads with ``miditok.REMI(params=FOLDER/"tokenizer.json")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from seqkit.errors import UserError

if TYPE_CHECKING:
    import miditok
    import symusic

TOKENIZER_FILE = "tokenizer.json"
SPECIAL_TOKENS = ("PAD", "BOS", "EOS")


def merge_tracks(score: symusic.Score) -> symusic.Score:
    """One piano track holding every pitched note of ``score``; tempo and meter kept."""
    import symusic

    merged = symusic.Score(score.ticks_per_quarter)
    merged.time_signatures = score.time_signatures.copy()
    merged.tempos = score.tempos.copy()
    track = symusic.Track(name="piano", program=0, is_drum=False)
    for source in score.tracks:
        if not source.is_drum:
            track.notes.extend(source.notes)
    track.notes.sort()
    merged.tracks.append(track)
    return merged


class MusicTokenizer:
    """A miditok REMI tokenizer plus what a language model needs: BOS/EOS ids, one id list per
    piece, and saving into a model folder."""

    def __init__(self, tokenizer: miditok.REMI) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.vocab
        self.pad_token_id = vocab["PAD_None"]
        self.bos_token_id = vocab["BOS_None"]
        self.eos_token_id = vocab["EOS_None"]
        self.special_ids = frozenset(tokenizer.special_tokens_ids)
        # Every note starts with exactly one Pitch token, so counting them counts notes.
        self.pitch_ids = frozenset(i for t, i in vocab.items() if t.startswith("Pitch_"))

    @classmethod
    def create(
        cls, *, beat_resolution: int = 8, velocities: bool = False, pitch_range=(21, 109)
    ) -> MusicTokenizer:
        """A fresh REMI tokenizer (REMI has nothing to learn: its vocabulary is its config).

        ``beat_resolution`` positions per quarter note in the first four beats of a note's
        duration (half that beyond), the grid onsets and durations are rounded to.
        """
        import miditok

        if beat_resolution < 1:
            raise UserError(f"data.beat_resolution must be at least 1, got {beat_resolution}")
        config = miditok.TokenizerConfig(
            pitch_range=tuple(pitch_range),
            beat_res={(0, 4): beat_resolution, (4, 12): max(1, beat_resolution // 2)},
            use_velocities=velocities,
            num_velocities=16,
            use_time_signatures=True,
            use_pitchdrum_tokens=False,  # drums are dropped, so no drum-pitch tokens
            remove_duplicated_notes=True,  # doubled voices (horn on the soprano) sound as one
            special_tokens=list(SPECIAL_TOKENS),
        )
        return cls(miditok.REMI(config))

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, score: symusic.Score) -> list[int]:
        """The token ids of a whole piece (no BOS/EOS)."""
        sequences = self.tokenizer.encode(merge_tracks(score))
        sequence = sequences[0] if isinstance(sequences, list) else sequences
        return list(sequence.ids)

    def encode_piece(self, score: symusic.Score) -> list[int]:
        """``[BOS] + encode(score) + [EOS]``: a piece as the language model reads it."""
        return [self.bos_token_id, *self.encode(score), self.eos_token_id]

    def decode(self, ids: list[int]) -> symusic.Score:
        """A score from token ids; special tokens are dropped, and tokens that make no sense
        where they stand (a Duration with no Pitch before it) are skipped by miditok."""
        ids = [i for i in ids if i not in self.special_ids]
        return self.tokenizer.decode([ids])

    def count_notes(self, ids) -> int:
        return sum(1 for i in ids if int(i) in self.pitch_ids)

    def save_pretrained(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(folder / TOKENIZER_FILE)

    @classmethod
    def from_pretrained(cls, folder: Path) -> MusicTokenizer:
        """Load ``folder/tokenizer.json`` (a miditok REMI tokenizer written by save_pretrained)."""
        import miditok

        path = Path(folder) / TOKENIZER_FILE
        if not path.is_file():
            raise UserError(f"{folder} has no {TOKENIZER_FILE}; it is not a seqkit music model")
        try:
            params = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(params, dict) or params.get("tokenization") != "REMI":
            raise UserError(f"{path} is not a miditok REMI tokenizer")
        try:
            return cls(miditok.REMI(params=path))
        except Exception as error:  # a damaged file: one line, not a traceback
            raise UserError(f"{path} is not a usable miditok tokenizer ({error})") from None


def load_music_tokenizer(folder: str | Path) -> MusicTokenizer:
    """The REMI tokenizer saved in ``folder`` (a composer's model folder, or a run's
    ``model/``): what the ``chorales`` data module reads a folder's tokenizer with."""
    return MusicTokenizer.from_pretrained(Path(folder))


def pitch_bounds(score: symusic.Score) -> tuple[int, int]:
    """Lowest and highest pitch among the pitched notes of ``score``."""
    lows, highs = [], []
    for track in score.tracks:
        if not track.is_drum and len(track.notes):
            pitches = track.notes.numpy()["pitch"]
            lows.append(int(pitches.min()))
            highs.append(int(pitches.max()))
    return min(lows), max(highs)


def transpositions(
    score: symusic.Score, max_shift: int, low: int, high: int
) -> list[symusic.Score]:
    """``score`` shifted by every interval in ``[-max_shift, max_shift]`` (0 excluded) that keeps
    all its notes within ``[low, high]``, the range the instruments of the corpus play in.

    ``max_shift=6`` gives every key (−6 and +6 land on the same one, an octave apart).
    """
    lowest, highest = pitch_bounds(score)
    shifted = []
    for shift in range(-max_shift, max_shift + 1):
        if shift and low <= lowest + shift and highest + shift <= high:
            shifted.append(score.shift_pitch(shift))
    return shifted
