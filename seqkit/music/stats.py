"""Musical statistics of pieces, so that "the samples sound more like Bach" has numbers.

For one piece (all pitched notes together):

* **key** — the Krumhansl–Schmuckler algorithm (Krumhansl 1990, "Cognitive Foundations of
  Musical Pitch", with the Krumhansl–Kessler 1982 probe-tone profiles): correlate the piece's
  duration-weighted pitch-class histogram with the major and minor profile rotated to each of
  the 12 tonics; the best of the 24 correlations names the key;
* **in-key share** — the fraction of notes whose pitch class belongs to that key's scale (major,
  or harmonic minor: the raised seventh is part of minor-key harmony in this style);
* **pitch range** — highest minus lowest pitch, in semitones;
* **note density** — notes per quarter note, from the first onset to the last note's end;
* **pitch-class histogram** — duration-weighted, rotated so the detected tonic is class 0, so
  pieces in different keys can be averaged.

For two sets of pieces (:func:`compare_sets`): the means of the per-piece numbers for each, and
the *pitch-class distance*: the total-variation distance (half the L1 distance, 0 = same
distribution, 1 = disjoint) between the sets' mean tonic-relative histograms, computed
separately for major-key and minor-key pieces and weighted by how many pieces each mode has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import symusic

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 11)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitched_notes(score: symusic.Score) -> dict[str, np.ndarray]:
    """Columns ``time``, ``duration`` (ticks) and ``pitch`` of every non-drum note."""
    # symusic hands back a dict of numpy columns per track; join the tracks' columns.
    columns = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
    return {
        key: np.concatenate([c[key] for c in columns]) if columns else np.zeros(0, dtype=int)
        for key in ("time", "duration", "pitch")
    }


def pitch_class_histogram(pitches: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """(12,) duration-weighted share of each pitch class; zeros if there are no notes."""
    weights = np.maximum(durations.astype(float), 1.0)  # a zero-length note still counts a bit
    histogram = np.bincount(pitches.astype(int) % 12, weights=weights, minlength=12)
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def detect_key(histogram: np.ndarray) -> tuple[int, str]:
    """``(tonic pitch class, "major" | "minor")`` by Krumhansl–Schmuckler correlation."""
    best, best_key = -np.inf, (0, "major")
    if not histogram.any():
        return best_key
    for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            # Profile rotated so that its tonic sits at pitch class `tonic`.
            correlation = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if correlation > best:
                best, best_key = correlation, (tonic, mode)
    return best_key


def piece_statistics(score: symusic.Score) -> dict:
    """The statistics of one piece (see the module docstring); ``notes`` = 0 for an empty one."""
    notes = pitched_notes(score)
    pitches = np.asarray(notes["pitch"], dtype=int)
    if len(pitches) == 0:
        return {"notes": 0}
    durations = np.asarray(notes["duration"], dtype=int)
    onsets = np.asarray(notes["time"], dtype=int)
    histogram = pitch_class_histogram(pitches, durations)
    tonic, mode = detect_key(histogram)
    scale = MAJOR_SCALE if mode == "major" else HARMONIC_MINOR_SCALE
    in_key = np.isin((pitches - tonic) % 12, scale)
    quarters = max((onsets + durations).max() - onsets.min(), 1) / score.ticks_per_quarter
    return {
        "notes": len(pitches),
        "key": f"{PITCH_NAMES[tonic]} {mode}",
        "mode": mode,
        "in_key_share": float(in_key.mean()),
        "pitch_range": int(pitches.max() - pitches.min()),
        "note_density": float(len(pitches) / quarters),
        "tonic_histogram": np.roll(histogram, -tonic),  # tonic at index 0
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def summarize(stats: list[dict]) -> dict[str, float]:
    """Means over the non-empty pieces of a set."""
    full = [s for s in stats if s["notes"]]
    return {
        "pieces": len(stats),
        "empty_pieces": len(stats) - len(full),
        "in_key_share": _mean([s["in_key_share"] for s in full]),
        "pitch_range": _mean([s["pitch_range"] for s in full]),
        "note_density": _mean([s["note_density"] for s in full]),
        "notes_per_piece": _mean([s["notes"] for s in stats]),
        "minor_share": _mean([s["mode"] == "minor" for s in full]),
    }


def pitch_class_distance(stats_a: list[dict], stats_b: list[dict]) -> float:
    """Total-variation distance between two sets' mean tonic-relative pitch-class histograms,
    per mode, weighted by the share of pieces in that mode (over both sets)."""
    total, weight = 0.0, 0
    for mode in ("major", "minor"):
        a = [s["tonic_histogram"] for s in stats_a if s["notes"] and s["mode"] == mode]
        b = [s["tonic_histogram"] for s in stats_b if s["notes"] and s["mode"] == mode]
        if not a or not b:
            # A mode only one set has: its pieces are maximally far from the other set's.
            total += len(a) + len(b)
            weight += len(a) + len(b)
            continue
        distance = 0.5 * np.abs(np.mean(a, axis=0) - np.mean(b, axis=0)).sum()
        total += distance * (len(a) + len(b))
        weight += len(a) + len(b)
    return float(total / weight) if weight else float("nan")


def compare_sets(generated: list[symusic.Score], reference: list[symusic.Score]) -> dict:
    """Per-set means and their pitch-class distance: ``{"generated": {...}, "reference": {...},
    "pitch_class_distance": d}``."""
    stats_g = [piece_statistics(s) for s in generated]
    stats_r = [piece_statistics(s) for s in reference]
    return {
        "generated": summarize(stats_g),
        "reference": summarize(stats_r),
        "pitch_class_distance": pitch_class_distance(stats_g, stats_r),
    }
