"""The miditok REMI wrapper: one stream per piece, round trips, saving, transpositions."""

from __future__ import annotations

import pytest

from seqkit.errors import UserError
from seqkit.music.stats import pitched_notes
from seqkit.music.tokenization import (
    MusicTokenizer,
    merge_tracks,
    pitch_bounds,
    transpositions,
)
from tests.music.midi_factory import make_score


@pytest.fixture(scope="module")
def tokenizer():
    return MusicTokenizer.create()


def _notes(score):
    """(onset in quarters, pitch, duration in quarters), sorted: the music, not the ticks."""
    columns = pitched_notes(score)
    tpq = score.ticks_per_quarter
    return sorted(
        zip(
            (columns["time"] / tpq).tolist(),
            columns["pitch"].tolist(),
            (columns["duration"] / tpq).tolist(),
            strict=True,
        )
    )


def test_a_piece_on_the_grid_survives_encode_and_decode(tokenizer):
    score = make_score(drums=True)
    ids = tokenizer.encode(score)
    assert tokenizer.count_notes(ids) == 16 + 4  # melody and bass; drums dropped
    assert _notes(tokenizer.decode(ids)) == _notes(merge_tracks(score))


def test_a_piece_is_wrapped_in_bos_and_eos_and_special_tokens_decode_to_nothing(tokenizer):
    ids = tokenizer.encode_piece(make_score())
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert _notes(tokenizer.decode(ids)) == _notes(tokenizer.decode(ids[1:-1]))
    assert tokenizer.decode([tokenizer.bos_token_id, tokenizer.eos_token_id]).note_num() == 0


def test_merge_tracks_keeps_every_pitched_note_in_one_track():
    merged = merge_tracks(make_score(drums=True))
    assert len(merged.tracks) == 1 and not merged.tracks[0].is_drum
    assert merged.note_num() == 20


def test_saved_tokenizer_encodes_the_same(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = MusicTokenizer.from_pretrained(tmp_path)
    assert loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode_piece(make_score()) == tokenizer.encode_piece(make_score())


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no tokenizer.json"), ("{oops", "not valid JSON"), ('{"a": 1}', "not a miditok REMI")],
)
def test_a_bad_tokenizer_file_is_a_user_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(UserError, match=message):
        MusicTokenizer.from_pretrained(tmp_path)


def test_transpositions_cover_the_keys_the_range_allows():
    score = make_score()  # pitches 48..71
    assert pitch_bounds(score) == (48, 71)
    every_key = transpositions(score, 6, 0, 127)
    assert len(every_key) == 12
    assert sorted(pitch_bounds(s)[0] for s in every_key) == [48 + k for k in range(-6, 7) if k]
    # A range only 2 semitones wider than the piece allows shifts of -2..+2 that fit.
    narrow = transpositions(score, 6, 47, 72)
    assert sorted(pitch_bounds(s)[0] - 48 for s in narrow) == [-1, 1]
    assert transpositions(score, 0, 0, 127) == []


def test_beat_resolution_must_be_positive():
    with pytest.raises(UserError, match="beat_resolution"):
        MusicTokenizer.create(beat_resolution=0)
