"""MIDI corpora: where pieces come from, how bad files are skipped, and the split by piece.

Three sources, one result (a sorted list of MIDI files on disk):

* ``embedded: bach-chorales`` — the Bach scores that ship inside music21 (MusicXML and Humdrum;
  almost all of them four-part chorales). music21 needs about half a second to parse a score and
  as long again to write it as MIDI, so each score is converted once into a cache folder
  (``~/.cache/seqkit/music/bach-chorales`` by default, ``$XDG_CACHE_HOME`` respected,
  ``data.cache_dir`` to choose) and never again. A conversion is written to a temporary name and
  renamed, so an interrupted run never leaves a half-written file that a later run would trust.
  music21's Roman-numeral analyses (``.rntxt``) are chord labels, not notes anyone played, and are
  left out.
* ``path`` — a ``.mid``/``.midi`` file or a folder searched recursively for them.
* ``hub`` — a Hub data set whose ``data.midi_column`` holds MIDI bytes (or ``{"bytes": ...}``
  records, as the ``datasets`` binary feature stores them); the rows are written once into the
  cache and read from there.

Loading (:func:`load_pieces`) reads every file with ``symusic``. A file that is not MIDI, is
truncated, or has no pitched notes (only drums, or nothing) is skipped with a reason; the
caller prints the list. Only when *no* file survives is it an error.

The validation split (:func:`split_by_piece`) is made of whole pieces, chosen by a hash of each
piece's name: a window of one chorale never trains the model that is scored on another window
of the same chorale, and the split does not change with the training seed or when pieces are
added to the folder.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from seqkit.errors import UserError
from seqkit.folders import cache_dir

if TYPE_CHECKING:
    import symusic

MIDI_SUFFIXES = (".mid", ".midi")
EMBEDDED_MUSIC = ("bach-chorales",)
"""Values of ``data.embedded`` for music recipes."""
_SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
"""music21 corpus files that hold notes (``.rntxt`` analyses do not)."""


def default_cache_dir() -> Path:
    """Where converted MIDI files are cached (:func:`seqkit.folders.cache_dir`)."""
    return cache_dir("music")


# ----------------------------------------------------------------------------- music21 corpus


def bach_score_paths() -> list[Path]:
    """The Bach scores bundled with music21, one file per work, sorted by name.

    Three chorales (BWV 277, 281, 366) ship twice, as MusicXML and as Humdrum; the MusicXML
    copy is kept, so that no piece is counted twice (or lands on both sides of the split).
    """
    from music21 import corpus

    by_work: dict[str, Path] = {}
    for path in sorted(Path(p) for p in corpus.getComposer("bach")):
        if path.suffix not in _SCORE_SUFFIXES:
            continue
        kept = by_work.get(path.stem)
        if kept is None or _SCORE_SUFFIXES.index(path.suffix) < _SCORE_SUFFIXES.index(kept.suffix):
            by_work[path.stem] = path
    return [by_work[stem] for stem in sorted(by_work)]


def convert_score(score_path: Path, midi_path: Path) -> None:
    """Parse a music21 corpus score and write it as a standard MIDI file, atomically."""
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21 warns about harmless MusicXML details
        score = converter.parse(score_path)
        midi_path.parent.mkdir(parents=True, exist_ok=True)
        partial = midi_path.with_name(midi_path.name + ".partial")
        score.write("midi", fp=partial)
    partial.replace(midi_path)


def cached_bach_midis(
    cache_dir: Path | None = None,
    limit: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """MIDI files of the first ``limit`` (default all) bundled Bach scores, converting the ones
    not yet in ``cache_dir/bach-chorales`` (each score at most once, ever)."""
    folder = (cache_dir or default_cache_dir()) / "bach-chorales"
    scores = bach_score_paths()[:limit]
    # A score music21 cannot convert leaves a `.failed` note with the reason, so that it is
    # tried once, not on every run.
    missing = [
        s
        for s in scores
        if not (folder / f"{s.stem}.mid").is_file() and not (folder / f"{s.stem}.failed").is_file()
    ]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        if log is not None:
            log(f"converting {len(missing)} music21 Bach scores to MIDI once, cached in {folder}")
    for i, score in enumerate(missing, 1):
        try:
            convert_score(score, folder / f"{score.stem}.mid")
        except Exception as error:  # one unreadable score must not stop the rest
            reason = f"skipped {score.name}: music21 could not convert it ({error})"
            (folder / f"{score.stem}.failed").write_text(reason + "\n", encoding="utf-8")
            if log is not None:
                log(reason)
        if log is not None and (i % 50 == 0 or i == len(missing)):
            log(f"  converted {i}/{len(missing)}")
    return [folder / f"{s.stem}.mid" for s in scores if (folder / f"{s.stem}.mid").is_file()]


# ----------------------------------------------------------------------------- local files


def midi_files_in(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else every .mid/.midi under it, sorted."""
    if not path.exists():
        raise UserError(f"data.path: {path} does not exist")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"data.path: {path} holds no .mid or .midi files")
    return files


# ----------------------------------------------------------------------------- Hub data sets


def _midi_bytes(value: object) -> bytes | None:
    """The MIDI bytes in one data-set cell: raw bytes or a ``{"bytes": ...}`` record."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict) and isinstance(value.get("bytes"), (bytes, bytearray)):
        return bytes(value["bytes"])
    return None


def write_hub_rows(rows: Iterable[dict], column: str, folder: Path) -> list[Path]:
    """Write each row's MIDI bytes to ``folder/NNNNNN.mid`` (skipping files already there)."""
    paths = []
    for index, row in enumerate(rows):
        if column not in row:
            raise UserError(
                f"data.midi_column: the data set has no column {column!r}; "
                f"columns: {', '.join(sorted(row))}"
            )
        path = folder / f"{index:06d}.mid"
        if not path.is_file():
            data = _midi_bytes(row[column])
            if data is None:
                raise UserError(
                    f"data.midi_column: column {column!r} must hold MIDI bytes, got "
                    f"{type(row[column]).__name__}"
                )
            folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
        paths.append(path)
    return paths


def cached_hub_midis(name: str, split: str, column: str, cache_dir: Path | None) -> list[Path]:
    """MIDI files of a Hub data set, written once into the cache."""
    try:
        import datasets

        rows = datasets.load_dataset(name, split=split)
    except Exception as error:  # network, missing set, bad split: one line each
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"data.hub: could not load {name!r} (split {split!r}): {type(error).__name__}: "
            f"{first_line}"
        ) from None
    safe = name.replace("/", "__")
    return write_hub_rows(rows, column, (cache_dir or default_cache_dir()) / "hub" / safe / split)


# ----------------------------------------------------------------------------- loading


@dataclass
class Piece:
    """One piece of music: its name (file stem) and its notes as a symusic score."""

    name: str
    score: symusic.Score


def read_midi(path: Path, what: str = "MIDI file") -> symusic.Score:
    """A symusic score from ``path``; UserError naming the problem if it is not usable MIDI."""
    import symusic

    try:
        head = path.read_bytes()[:4]
    except OSError as error:
        raise UserError(f"{what} {path}: cannot read it ({error.strerror})") from None
    if head != b"MThd":
        raise UserError(f"{what} {path} is not a MIDI file (it does not start with 'MThd')")
    try:
        score = symusic.Score(str(path))
    except Exception:  # symusic reports corrupt files as RuntimeError
        raise UserError(f"{what} {path} is truncated or corrupt MIDI") from None
    if not any(not track.is_drum and len(track.notes) for track in score.tracks):
        only_drums = any(track.is_drum and len(track.notes) for track in score.tracks)
        reason = "only drum notes" if only_drums else "no notes"
        raise UserError(f"{what} {path} has {reason}; seqkit composes pitched music")
    return score


def load_pieces(paths: list[Path], log: Callable[[str], None] | None = None) -> list[Piece]:
    """Every readable piece among ``paths``; the unreadable ones are listed through ``log``."""
    pieces, skipped = [], []
    for path in paths:
        try:
            pieces.append(Piece(path.stem, read_midi(path)))
        except UserError as error:
            skipped.append(str(error))
    if skipped and log is not None:
        log(f"skipped {len(skipped)} of {len(paths)} files:")
        for reason in skipped:
            log(f"  {reason}")
    if not pieces:
        raise UserError(f"none of the {len(paths)} MIDI files could be used ({skipped[0]})")
    return pieces


def corpus_paths(data, log: Callable[[str], None] | None = None) -> list[Path]:
    """The MIDI files a music recipe's ``data`` section names (path, then hub, then embedded)."""
    cache_dir = Path(data.cache_dir) if data.cache_dir else None
    if data.path:
        paths = midi_files_in(Path(data.path))
    elif data.hub:
        paths = cached_hub_midis(data.hub, data.hub_split, data.midi_column, cache_dir)
    else:
        embedded = data.embedded or "bach-chorales"
        if embedded not in EMBEDDED_MUSIC:
            raise UserError(
                f"data.embedded must be one of {', '.join(EMBEDDED_MUSIC)} for a music recipe, "
                f"got {embedded!r}"
            )
        paths = cached_bach_midis(cache_dir, limit=data.max_pieces, log=log)
    return paths[: data.max_pieces] if data.max_pieces else paths


# ----------------------------------------------------------------------------- the split


def _split_key(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def split_by_piece(pieces: list[Piece], val_fraction: float) -> tuple[list[Piece], list[Piece]]:
    """``(train, validation)``: whole pieces, the validation ones chosen by a hash of the name.

    At least one piece goes to each side when ``val_fraction > 0`` (so two pieces are the
    minimum); ``val_fraction == 0`` keeps everything for training.
    """
    if val_fraction <= 0:
        return list(pieces), []
    if len(pieces) < 2:
        raise UserError(
            f"the corpus has {len(pieces)} usable piece; splitting by piece needs at least 2 "
            "(or set data.val_fraction=0)"
        )
    order = sorted(pieces, key=lambda p: _split_key(p.name))
    n_val = min(len(order) - 1, max(1, round(len(order) * val_fraction)))
    val_names = {p.name for p in order[-n_val:]}
    return [p for p in pieces if p.name not in val_names], [
        p for p in pieces if p.name in val_names
    ]
