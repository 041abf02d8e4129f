"""``seqkit compose``: valid MIDI (read back by mido and pretty_midi), a piano roll, primers,
and one clear line for every bad input."""

from __future__ import annotations

from pathlib import Path

import mido
import pretty_midi
import pytest

from seqkit.cli import main
from seqkit.folders import read_config
from seqkit.music import render
from seqkit.music.stats import pitched_notes
from tests.music.midi_factory import make_score, write_corpus, write_piece

TINY = [
    "--set", "trainer.max_steps=6", "--set", "trainer.batch_size=4",
    "--set", "trainer.eval_every=6", "--set", "trainer.save_every=6",
    "--set", "trainer.warmup_steps=0", "--set", "trainer.progress_bar=false",
    "--set", "trainer.report_to=[]", "--set", "sample.max_new_tokens=8",
    "--set", "model.block_size=32", "--set", "data.stride=8", "--set", "data.val_fraction=0.34",
]  # fmt: skip
SIZES = {
    "gpt": ["--set", "model.n_layer=1", "--set", "model.n_embd=16", "--set", "model.n_head=2"],
    "lstm": ["--set", "model.num_layers=1", "--set", "model.embedding_size=16",
             "--set", "model.hidden_size=16"],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny GPT and a tiny LSTM composer, trained in-process on six generated pieces."""
    root = tmp_path_factory.mktemp("compose")
    corpus = write_corpus(root / "corpus")
    trained = {}
    for kind in ("gpt", "lstm"):
        run = root / f"run-{kind}"
        argv = ["train", f"recipes/music/bach-chorales-{kind}.yaml", "--output-dir", str(run)]
        assert main([*argv, *TINY, *SIZES[kind], "--set", f"data.path={corpus}"]) == 0
        trained[kind] = run
    return trained


def _user_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seqkit: error: ")
    return err[0]


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_compose_writes_midi_that_mido_and_pretty_midi_read_and_a_piano_roll(
    runs, tmp_path, kind, capsys
):
    out = tmp_path / "piece.mid"
    argv = ["compose", str(runs[kind]), "--out", str(out), "--length", "24", "--seed", "1"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    midi = mido.MidiFile(out)
    assert midi.type in (0, 1) and midi.ticks_per_beat > 0
    pretty_midi.PrettyMIDI(str(out))  # raises on an invalid file
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same seed, same piece.
    again = tmp_path / "again.mid"
    assert main([*argv[:3], str(again), *argv[4:]]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_a_primer_is_continued(runs, tmp_path):
    primer = write_piece(tmp_path / "primer.mid", bars=1, bass=None)
    out = tmp_path / "continued.mid"
    argv = ["compose", str(runs["lstm"]), "--out", str(out), "--primer", str(primer)]
    assert main([*argv, "--length", "16", "--top-k", "5", "--top-p", "0.9"]) == 0
    import symusic

    def onsets_and_pitches(score):
        notes = pitched_notes(score)
        beats = notes["time"] / score.ticks_per_quarter
        return set(zip(beats.tolist(), notes["pitch"].tolist(), strict=True))

    assert onsets_and_pitches(make_score(bars=1, bass=None)) <= onsets_and_pitches(
        symusic.Score(str(out))
    )


def test_audio_without_fluidsynth_is_one_line_and_writes_nothing(
    runs, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    out = tmp_path / "quiet.mid"
    argv = ["compose", str(runs["lstm"]), "--out", str(out), "--length", "8", "--audio"]
    error = _user_error(capsys, argv)
    assert "--audio needs the fluidsynth program" in error
    assert not out.exists() and not out.with_suffix(".png").exists()
    # fluidsynth without a soundfont names the soundfont instead.
    monkeypatch.setattr(render.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    monkeypatch.setattr(render, "SOUNDFONT_PATHS", ())
    monkeypatch.delenv("SEQKIT_SOUNDFONT", raising=False)
    assert "General MIDI soundfont" in _user_error(capsys, argv)


def _fake_fluidsynth(folder: Path, body: str) -> None:
    """A ``fluidsynth`` on PATH that runs ``body`` (sh) instead of synthesising anything."""
    program = folder / "fluidsynth"
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)


def test_audio_is_rendered_by_fluidsynth_with_the_soundfont(runs, tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Records its arguments into the file after -F, as a stand-in for the rendered audio.
    _fake_fluidsynth(
        bin_dir, 'while [ "$1" != "-F" ]; do shift; done; out=$2; shift 2; echo "$@" > "$out"'
    )
    soundfont = tmp_path / "gm.sf2"
    soundfont.write_bytes(b"sfbk")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("SEQKIT_SOUNDFONT", str(soundfont))
    out = tmp_path / "loud.mid"
    argv = ["compose", str(runs["lstm"]), "--out", str(out), "--length", "8", "--audio"]
    assert main(argv) == 0
    wav = out.with_suffix(".wav")
    assert f"wrote {wav}" in capsys.readouterr().out
    assert wav.read_text().split() == ["-r", "44100", str(soundfont), str(out)]
    assert not list(tmp_path.glob("*.partial*"))

    _fake_fluidsynth(bin_dir, 'echo "fluidsynth: error: bad soundfont" >&2; exit 3')
    broken = tmp_path / "broken.mid"
    assert main([*argv[:3], str(broken), *argv[4:]]) == 2
    # (A tiny model may also add a note that its piece has no notes.)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("seqkit: error: fluidsynth could not render")
    assert "exit 3: fluidsynth: error: bad soundfont" in error
    assert broken.is_file() and not broken.with_suffix(".wav").exists()


def test_bad_input_is_one_line_and_nothing_is_overwritten(runs, tmp_path, capsys):
    gpt, lstm = str(runs["gpt"]), str(runs["lstm"])
    out = tmp_path / "mine.mid"
    out.write_bytes(b"the user's own file")
    assert "already exists" in _user_error(capsys, ["compose", lstm, "--out", str(out)])
    assert out.read_bytes() == b"the user's own file"

    fresh = str(tmp_path / "new.mid")
    assert ".mid or .midi" in _user_error(capsys, ["compose", lstm, "--out", "x.txt"])
    not_midi = tmp_path / "notes.mid"
    not_midi.write_text("C D E F G")
    error = _user_error(capsys, ["compose", lstm, "--out", fresh, "--primer", str(not_midi)])
    assert "is not a MIDI file" in error
    truncated = tmp_path / "cut.mid"
    truncated.write_bytes(make_score().dumps_midi()[:50])
    error = _user_error(capsys, ["compose", lstm, "--out", fresh, "--primer", str(truncated)])
    assert "truncated" in error
    long_primer = write_piece(tmp_path / "long.mid", bars=8)
    error = _user_error(capsys, ["compose", gpt, "--out", fresh, "--primer", str(long_primer)])
    assert "reads at most 32" in error
    assert "--top-p" in _user_error(capsys, ["compose", gpt, "--out", fresh, "--top-p", "1.5"])
    assert "--length" in _user_error(capsys, ["compose", gpt, "--out", fresh, "--length", "0"])
    assert "seqkit compose" in _user_error(capsys, ["generate", gpt, "--prompt", "x"])
    assert not Path(fresh).exists()


@pytest.mark.parametrize("kind", ["gpt", "lstm"])
def test_a_checkpoint_composes_after_the_corpus_is_gone(runs, tmp_path, kind, capsys):
    """A composer is a plain causal LM whose config names the chorales data module: its
    checkpoint composes from the run's model/ folder alone, without the MIDI corpus."""
    config = read_config(runs[kind] / "final")
    assert config["model_type"] == {"gpt": "seqkit-gpt", "lstm": "seqkit-rnn-lm"}[kind]
    assert config["data_module"] == "chorales"
    corpus = runs[kind].parent / "corpus"
    hidden = corpus.rename(tmp_path / "corpus-away")
    try:
        checkpoint = runs[kind] / "checkpoints" / "step-6"
        out = tmp_path / "from-checkpoint.mid"
        argv = ["compose", str(checkpoint), "--out", str(out), "--length", "24", "--seed", "1"]
        assert main(argv) == 0
        assert f"wrote {out}" in capsys.readouterr().out
        # The checkpoint of the last step holds the final weights: the same piece.
        final = tmp_path / "from-final.mid"
        assert main(["compose", str(runs[kind]), "--out", str(final), *argv[4:]]) == 0
        assert final.read_bytes() == out.read_bytes()
        error = _user_error(capsys, ["generate", str(checkpoint), "--prompt", "x"])
        assert "seqkit compose" in error
    finally:
        hidden.rename(corpus)


def test_a_model_folder_outside_its_run_composes_and_a_text_model_does_not(runs, tmp_path, capsys):
    import shutil

    folder = tmp_path / "composer"
    shutil.copytree(runs["lstm"] / "final", folder)
    out = tmp_path / "bare.mid"
    assert main(["compose", str(folder), "--out", str(out), "--length", "8"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    from seqkit.data import CharTokenizer
    from seqkit.models.gpt import GPTLMHeadModel
    from seqkit.models.gpt_config import GPTConfig
    from seqkit.parts.model_folder import save_pretrained

    text = tmp_path / "text-model"
    tokenizer = CharTokenizer.train("abc ")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, n_positions=8, n_embd=8, n_layer=1,
                       n_head=2)  # fmt: skip
    save_pretrained(GPTLMHeadModel(config), tokenizer, text)
    error = _user_error(capsys, ["compose", str(text), "--out", str(tmp_path / "no.mid")])
    assert "is not a composer" in error and not (tmp_path / "no.mid").exists()
