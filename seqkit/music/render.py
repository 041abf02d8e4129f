"""Writing composed music out: a standard MIDI file, a piano-roll picture, and audio if possible.

MIDI is written by ``symusic`` (format 1, one piano track). The piano roll draws every note as
a bar from onset to release against pitch, bar lines dotted, so a glance shows range, density
and rhythm. Audio needs the ``fluidsynth`` program and a General MIDI soundfont (Debian:
``apt install fluidsynth fluid-soundfont-gm``); where either is missing, :func:`audio_renderer`
says so in one line before anything is composed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqkit.errors import UserError

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


def audio_renderer() -> tuple[str, Path]:
    """``(fluidsynth program, soundfont)``, or a one-line UserError saying which is missing.

    ``seqkit compose --audio`` asks for this *before* composing, so a machine without them
    costs the user one line, not a piece generated for nothing.
    """
    program = shutil.which("fluidsynth")
    soundfont = find_soundfont()
    if program is None or soundfont is None:
        missing = "the fluidsynth program" if program is None else "a General MIDI soundfont"
        raise UserError(
            f"--audio needs {missing}, which is not installed (apt install fluidsynth "
            "fluid-soundfont-gm, or set SEQKIT_SOUNDFONT=FILE.sf2); leave out --audio for MIDI only"
        )
    return program, soundfont


def render_wav(midi_path: Path, wav_path: Path, program: str, soundfont: Path) -> None:
    """Render ``midi_path`` to ``wav_path`` (44.1 kHz) with fluidsynth; UserError if it fails."""
    # Still ending in .wav: fluidsynth picks the file type from the extension.
    partial = wav_path.with_name(wav_path.name + ".partial.wav")
    # -n: no MIDI input device, -i: no interactive shell, -F: render to a file, not a sound card.
    command = [program, "-ni", "-F", str(partial), "-r", "44100", str(soundfont), str(midi_path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UserError(f"fluidsynth could not render {midi_path} ({error})") from None
    if result.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(
            f"fluidsynth could not render {midi_path} to audio (exit {result.returncode}: "
            f"{last[0]}); the MIDI file is written"
        )
    partial.replace(wav_path)
