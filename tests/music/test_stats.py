"""Musical statistics: key finding, in-key share, range, density, set distances."""

from __future__ import annotations

import math

import pytest

from seqkit.music.stats import compare_sets, piece_statistics
from tests.music.midi_factory import A_HARMONIC_MINOR, C_MAJOR, make_score


@pytest.mark.parametrize(
    ("melody", "shift", "key"),
    [(C_MAJOR, 0, "C major"), (C_MAJOR, 2, "D major"), (A_HARMONIC_MINOR, 0, "A minor")],
)
def test_key_of_a_scale_is_found_and_every_note_is_in_it(melody, shift, key):
    bass = melody[0] - 12
    stats = piece_statistics(make_score(melody=melody, bass=bass, shift=shift))
    assert stats["key"] == key
    assert stats["in_key_share"] == 1.0


def test_range_density_and_chromatic_notes():
    stats = piece_statistics(make_score(bars=4))  # 16 quarter notes + 4 whole notes in 16 beats
    assert stats["pitch_range"] == 71 - 48
    assert stats["note_density"] == pytest.approx(20 / 16)
    chromatic = piece_statistics(make_score(melody=(60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70)))
    assert chromatic["in_key_share"] < 0.8


def test_identical_sets_have_zero_distance_and_other_keys_do_not_matter():
    c = [make_score(), make_score(shift=5)]  # the same tonal content in two keys
    result = compare_sets(c, [make_score(shift=-3)])
    assert result["pitch_class_distance"] == pytest.approx(0.0, abs=1e-12)
    chromatic = [make_score(melody=(60, 61, 62, 63, 66, 68, 70))]
    assert compare_sets(chromatic, c)["pitch_class_distance"] > 0.1


def test_empty_generated_pieces_are_counted_not_averaged():
    import symusic

    result = compare_sets([symusic.Score(480), make_score()], [make_score()])
    assert result["generated"]["pieces"] == 2
    assert result["generated"]["empty_pieces"] == 1
    assert not math.isnan(result["generated"]["in_key_share"])
