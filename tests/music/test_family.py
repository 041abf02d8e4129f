"""The music recipes end to end: music21 chorales → cache → training → evaluate, plus the
data options a recipe can set."""

from __future__ import annotations

import json
import math

import pytest

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.families import get_family
from seqkit.parts.compose import load_recipe
from seqkit.recipes import parse_section
from tests.music.midi_factory import write_corpus

RECIPES = ("recipes/music/bach-chorales-gpt.yaml", "recipes/music/bach-chorales-lstm.yaml")


TINY = {
    "data.val_fraction": 0.34,
    "model.n_layer": 1,
    "model.n_embd": 16,
    "model.hidden_size": 24,
    "trainer.max_steps": 4,
    "trainer.batch_size": 4,
    "trainer.eval_every": 4,
    "trainer.warmup_steps": 0,
    "trainer.progress_bar": "false",
    "trainer.report_to": "[]",
    "sample.max_new_tokens": 16,
}


def _train(recipe: str, run, **overrides) -> None:
    settings = {**TINY, **overrides}
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    # In-process: the CLI's subprocess contract is tested elsewhere, and a second interpreter
    # would pay every import again.
    assert main(["train", recipe, "--output-dir", str(run), *sets]) == 0


def test_lstm_recipe_trains_on_cached_chorales(tmp_path, chorale_cache, capsys):
    run = tmp_path / "run"
    cache = chorale_cache
    overrides = {"data.cache_dir": cache, "data.max_pieces": 3, "model.block_size": 64}
    _train(RECIPES[1], run, **overrides)
    assert "pieces: 2 train, 1 held out" in capsys.readouterr().err
    assert len(list((cache / "bach-chorales").glob("*.mid"))) == 3
    assert (run / "final" / "tokenizer.json").is_file()
    assert json.loads((run / "final" / "config.json").read_text())["model_type"] == (
        "seqkit-music-lstm"
    )


def test_evaluate_reports_nll_per_token_and_note_and_musical_statistics(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "broken.mid").write_bytes(b"MThd, then nothing a MIDI reader can use")
    run = tmp_path / "run"
    _train(RECIPES[0], run, **{"data.path": corpus, "model.n_head": 2, "model.block_size": 32})
    # The bad file is listed, and training goes on with the six good pieces.
    err = capsys.readouterr().err
    assert "skipped 1 of 7 files:" in err and "broken.mid is truncated or corrupt MIDI" in err
    assert "pieces: 4 train, 2 held out" in err
    metrics_file = tmp_path / "metrics.json"
    argv = ["evaluate", str(run), "--num-pieces", "3", "--json", str(metrics_file)]
    assert main(argv) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["val_notes"] > 0 and metrics["val_tokens"] > metrics["val_notes"]
    # The same total cost, shared among fewer notes than tokens.
    assert metrics["val_nll_per_note"] > metrics["val_nll_per_token"] > 0
    assert metrics["generated_pieces"] == 3 and metrics["held_out_pieces"] == 2
    for key in ("pitch_class_distance_generated_vs_held_out", "held_out_in_key_share"):
        assert 0 <= metrics[key] <= 1
    # The generated corpus is scales over a held bass: held-out pieces are (almost) all in key.
    assert metrics["held_out_in_key_share"] >= 0.9
    assert "val_nll_per_note:" in capsys.readouterr().out


def _build(tmp_path, task_file, **overrides):
    corpus = write_corpus(tmp_path / "corpus")
    sets = [f"data.path={corpus}", "data.val_fraction=0.34", "model.block_size=16"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    recipe = load_recipe(task_file, sets)
    family = get_family(recipe.task)
    return family.build(recipe, parse_section(family.ModelSection, recipe.model, "model"))


def test_transposition_adds_every_key_the_range_allows(tmp_path):
    plain = _build(tmp_path, RECIPES[1], **{"model.n_embd": 8, "model.hidden_size": 8})
    more = _build(
        tmp_path, RECIPES[1], **{"model.n_embd": 8, "model.hidden_size": 8, "data.transpose": 6}
    )
    assert len(more.train_data.ids) > 2 * len(plain.train_data.ids)
    # Held-out pieces are never transposed: the validation set stays the real pieces.
    assert torch_equal(more.eval_data.ids, plain.eval_data.ids)


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.transpose": 9}, "data.transpose must be at most 6"),
        ({"model.n_embd": 30, "model.n_head": 4}, "divisible"),
        ({"data.embedded": "mozart", "data.path": "null"}, "data.embedded must be one of"),
    ],
)
def test_bad_music_settings_are_user_errors(tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        _build(
            tmp_path, RECIPES[0], **{k: "null" if v is None else v for k, v in overrides.items()}
        )


def test_every_piece_opening_gets_a_training_window(tmp_path):
    from seqkit.music.tokenization import MusicTokenizer

    job = _build(tmp_path, RECIPES[1], **{"model.n_embd": 8, "model.hidden_size": 8})
    windows, bos = job.train_data, MusicTokenizer.create().bos_token_id
    ids, block = windows.ids, windows.block_size
    openings = (ids == bos).nonzero().flatten().tolist()
    fitting = [i for i in openings if i + block + 1 <= len(ids)]
    assert len(openings) == 4 and len(fitting) >= 3  # four training pieces; the last may not fit
    # Not on the stride grid, so these windows exist only because pieces open there.
    assert any(i % windows.stride for i in fitting)
    assert windows.starts == sorted(set(windows.starts)) and len(windows) == len(windows.starts)
    assert set(fitting) | set(range(0, len(ids) - block, windows.stride)) == set(windows.starts)
    for index in (0, windows.starts.index(fitting[-1]), -1):
        start = windows.starts[index]
        assert torch_equal(windows[index]["input_ids"], ids[start : start + block])
        assert torch_equal(windows[index]["labels"], ids[start + 1 : start + block + 1])
    assert int(windows[windows.starts.index(fitting[-1])]["input_ids"][0]) == bos


def test_held_out_tokens_are_scored_once(tmp_path):
    job = _build(tmp_path, RECIPES[0], **{"model.n_embd": 8, "model.n_head": 2})
    windows = job.eval_data
    assert windows.stride == windows.block_size == 16
    assert math.floor((len(windows.ids) - 1) / 16) == len(windows)
