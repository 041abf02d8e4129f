"""Small MIDI files written on the spot, so most music tests need no music21 conversion."""

from __future__ import annotations

from pathlib import Path

import symusic

TPQ = 480
C_MAJOR = (60, 62, 64, 65, 67, 69, 71)
A_HARMONIC_MINOR = (57, 59, 60, 62, 64, 65, 68)


def make_score(
    melody=C_MAJOR, bars: int = 4, bass: int | None = 48, drums: bool = False, shift: int = 0
) -> symusic.Score:
    """A 4/4 piece: the melody in quarter notes (repeated to fill ``bars``), a bass note held
    for each bar, and optionally a drum track."""
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    score.tempos.append(symusic.Tempo(0, 100.0))
    melody_track = symusic.Track(name="melody", program=0, is_drum=False)
    for i in range(bars * 4):
        pitch = melody[i % len(melody)] + shift
        melody_track.notes.append(symusic.Note(i * TPQ, TPQ, pitch, 80))
    score.tracks.append(melody_track)
    if bass is not None:
        bass_track = symusic.Track(name="bass", program=32, is_drum=False)
        for bar in range(bars):
            bass_track.notes.append(symusic.Note(bar * 4 * TPQ, 4 * TPQ, bass + shift, 70))
        score.tracks.append(bass_track)
    if drums:
        drum_track = symusic.Track(name="drums", program=0, is_drum=True)
        for i in range(bars * 4):
            drum_track.notes.append(symusic.Note(i * TPQ, TPQ // 2, 36, 100))
        score.tracks.append(drum_track)
    return score


def write_piece(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_score(**kwargs).dump_midi(str(path))
    return path


def write_drums_only(path: Path) -> Path:
    score = make_score(bass=None, drums=True)
    score.tracks = [t for t in score.tracks if t.is_drum]
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


def write_no_notes(path: Path) -> Path:
    score = symusic.Score(TPQ)
    score.tracks.append(symusic.Track(name="empty", program=0, is_drum=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    score.dump_midi(str(path))
    return path


def write_corpus(folder: Path, count: int = 6) -> Path:
    """``count`` pieces in different keys and modes, named piece-0.mid ..."""
    for i in range(count):
        melody = C_MAJOR if i % 2 == 0 else A_HARMONIC_MINOR
        write_piece(folder / f"piece-{i}.mid", melody=melody, shift=i - count // 2)
    return folder
