"""Writing composed music out: a standard MIDI file, a piano-roll picture, and audio if possible.

MIDI is written by ``symusic`` (format 1, one piano track). The piano roll draws every note as
a bar from onset to release against pitch, bar lines dotted, so a glance shows range, density
and rhythm. Audio needs the ``fluidsynth`` program and a General MIDI soundfont (Debian:
``apt install fluidsynth fluid-soundfont-gm``); where either is missing, :func:`render_wav` says
so in one line and nothing else happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import symusic

SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
"""Where Debian and Fedora put a General MIDI soundfont; ``$SEQKIT_SOUNDFONT`` wins."""
DEFAULT_TEMPO_QPM = 90.0
"""Quarter notes per minute of composed pieces (REMI as configured keeps no tempo)."""


def write_midi(score: symusic.Score, path: Path) -> None:
    """Write ``score`` as a standard MIDI file (atomically: a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    score.dump_midi(str(partial))
    partial.replace(path)


def with_tempo(score: symusic.Score, qpm: float = DEFAULT_TEMPO_QPM) -> symusic.Score:
    """A copy of ``score`` whose only tempo is ``qpm`` quarter notes per minute."""
    import symusic

    score = score.copy()
    score.tempos = [symusic.Tempo(0, qpm)]
    return score


def piano_roll_png(score: symusic.Score, path: Path, title: str = "") -> None:
    """Draw ``score``'s notes (time in quarter notes against MIDI pitch) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqkit.music.stats import pitched_notes

    notes = pitched_notes(score)
    tpq = score.ticks_per_quarter
    onsets = notes["time"] / tpq
    durations = notes["duration"] / tpq
    end = float((onsets + durations).max()) if len(onsets) else 4.0
    figure, axes = plt.subplots(figsize=(min(4 + end / 4, 24), 4), dpi=100)
    axes.barh(notes["pitch"], durations, left=onsets, height=0.8, color="tab:blue")
    # Bar lines from the first time signature (4/4 if there is none).
    signature = score.time_signatures[0] if len(score.time_signatures) else None
    bar = signature.numerator * 4 / signature.denominator if signature else 4.0
    for x in np.arange(0, end + bar, bar):
        axes.axvline(x, color="0.85", linewidth=0.6, linestyle=":", zorder=0)
    axes.set_xlim(0, end)
    axes.set_xlabel("time (quarter notes)")
    axes.set_ylabel("MIDI pitch")
    axes.set_title(title or path.stem)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def find_soundfont() -> Path | None:
    """A General MIDI soundfont: ``$SEQKIT_SOUNDFONT`` or a distribution's usual place."""
    candidates = [os.environ.get("SEQKIT_SOUNDFONT"), *SOUNDFONT_PATHS]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def render_wav(midi_path: Path, wav_path: Path) -> str:
    """Render ``midi_path`` to ``wav_path`` with fluidsynth; returns a one-line message saying
    what happened (written, or why not)."""
    program = shutil.which("fluidsynth")
    soundfont = find_soundfont()
    if program is None or soundfont is None:
        missing = "the fluidsynth program" if program is None else "a General MIDI soundfont"
        return (
            f"note: no audio written: {missing} is not installed "
            "(apt install fluidsynth fluid-soundfont-gm, or set SEQKIT_SOUNDFONT)"
        )
    command = [program, "-ni", "-F", str(wav_path), "-r", "44100", str(soundfont), str(midi_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not wav_path.is_file():
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"note: no audio written: fluidsynth failed ({last[0]})"
    return f"wrote {wav_path}"
