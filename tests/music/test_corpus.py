"""MIDI corpora: the cached music21 conversion, bad files skipped with reasons, the piece split."""

from __future__ import annotations

import mido
import pytest

from seqkit.errors import UserError
from seqkit.music import corpus
from seqkit.music.corpus import (
    Piece,
    cached_bach_midis,
    load_pieces,
    midi_files_in,
    read_midi,
    split_by_piece,
    write_hub_rows,
)
from tests.music.midi_factory import make_score, write_drums_only, write_no_notes, write_piece


def test_bach_scores_are_converted_once_and_then_read_from_the_cache(chorale_cache, monkeypatch):
    def no_second_conversion(*args):
        raise AssertionError("a cached score was converted again")

    monkeypatch.setattr(corpus, "convert_score", no_second_conversion)
    first = cached_bach_midis(chorale_cache, limit=3)
    assert [p.parent for p in first] == [chorale_cache / "bach-chorales"] * 3
    for path in first:
        assert len(mido.MidiFile(path).tracks) > 1  # a real multi-part score
        assert read_midi(path).note_num() > 0
    assert not list((chorale_cache / "bach-chorales").glob("*.partial"))


def test_a_score_music21_cannot_convert_is_noted_and_not_tried_again(tmp_path, monkeypatch):
    calls = []

    def broken(score_path, midi_path):
        calls.append(score_path)
        raise ValueError("badly formed repeats")

    monkeypatch.setattr(corpus, "convert_score", broken)
    lines = []
    assert cached_bach_midis(tmp_path, limit=1, log=lines.append) == []
    assert any("badly formed repeats" in line for line in lines)
    assert cached_bach_midis(tmp_path, limit=1) == []
    assert len(calls) == 1


def test_the_bundled_bach_corpus_has_each_work_once_and_no_roman_numeral_analyses():
    paths = corpus.bach_score_paths()
    assert len(paths) > 400
    assert not [p for p in paths if p.suffix == ".rntxt"]
    assert len({p.stem for p in paths}) == len(paths)  # works in two formats are kept once


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (lambda p: p.write_text("hello, not music"), "is not a MIDI file"),
        (lambda p: p.write_bytes(make_score().dumps_midi()[:60]), "truncated or corrupt"),
        (write_drums_only, "only drum notes"),
        (write_no_notes, "has no notes"),
    ],
)
def test_unusable_midi_gets_a_one_line_reason(tmp_path, writer, message):
    path = tmp_path / "bad.mid"
    writer(path)
    with pytest.raises(UserError, match=message) as caught:
        read_midi(path)
    assert "\n" not in str(caught.value)


def test_a_folder_with_bad_files_trains_on_the_good_ones_and_lists_the_rest(tmp_path):
    write_piece(tmp_path / "a.mid")
    write_piece(tmp_path / "sub" / "b.MIDI", shift=2)
    (tmp_path / "junk.mid").write_text("not midi")
    write_drums_only(tmp_path / "drums.mid")
    (tmp_path / "notes.txt").write_text("ignored: not a .mid file")
    lines = []
    pieces = load_pieces(midi_files_in(tmp_path), log=lines.append)
    assert sorted(p.name for p in pieces) == ["a", "b"]
    assert lines[0] == "skipped 2 of 4 files:"
    assert any("junk.mid is not a MIDI file" in line for line in lines)
    assert any("drums.mid has only drum notes" in line for line in lines)


def test_a_folder_with_no_usable_file_is_an_error(tmp_path):
    (tmp_path / "junk.mid").write_text("not midi")
    with pytest.raises(UserError, match="none of the 1 MIDI files"):
        load_pieces(midi_files_in(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no \.mid"):
        midi_files_in(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        midi_files_in(tmp_path / "missing")


def test_split_is_by_whole_piece_stable_and_independent_of_order():
    pieces = [Piece(f"bwv{i}", None) for i in range(40)]
    train, val = split_by_piece(pieces, 0.1)
    assert len(val) == 4 and len(train) == 36
    assert not {p.name for p in train} & {p.name for p in val}
    _, val_reversed = split_by_piece(pieces[::-1], 0.1)
    assert {p.name for p in val_reversed} == {p.name for p in val}
    assert split_by_piece(pieces, 0.0) == (pieces, [])
    _, one = split_by_piece(pieces[:2], 0.01)  # at least one piece on each side
    assert len(one) == 1
    with pytest.raises(UserError, match="at least 2"):
        split_by_piece(pieces[:1], 0.1)


def test_hub_rows_are_written_once_as_midi_files(tmp_path):
    data = make_score().dumps_midi()
    rows = [{"midi": data}, {"midi": {"bytes": data, "path": "x.mid"}}]
    paths = write_hub_rows(rows, "midi", tmp_path)
    assert [p.name for p in paths] == ["000000.mid", "000001.mid"]
    assert all(read_midi(p).note_num() == make_score().note_num() for p in paths)
    with pytest.raises(UserError, match="no column 'audio'"):
        write_hub_rows(rows, "audio", tmp_path / "other")
    with pytest.raises(UserError, match="must hold MIDI bytes"):
        write_hub_rows([{"midi": 3}], "midi", tmp_path / "third")
