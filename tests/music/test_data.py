"""The music recipes end to end (task causal-lm, a GPT or an LSTM, the chorales data module):
music21 chorales → cache → training → evaluate, the data options a recipe can set, and the
old one-word tasks music-gpt and music-lstm."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.folders import read_config
from seqkit.parts.compose import build_job
from seqkit.parts.resolve import load_recipe, resolve
from tests.music.midi_factory import write_corpus

RECIPES = ("recipes/music/bach-chorales-gpt.yaml", "recipes/music/bach-chorales-lstm.yaml")


TINY = {
    "data.val_fraction": 0.34,
    "trainer.max_steps": 4,
    "trainer.batch_size": 4,
    "trainer.eval_every": 4,
    "trainer.warmup_steps": 0,
    "trainer.progress_bar": "false",
    "trainer.report_to": "[]",
    "sample.max_new_tokens": 16,
}
SIZES = {
    RECIPES[0]: {"model.n_layer": 1, "model.n_embd": 16},
    RECIPES[1]: {"model.num_layers": 1, "model.embedding_size": 16, "model.hidden_size": 24},
}


def _train(recipe: str, run, **overrides) -> None:
    settings = {**TINY, **SIZES[recipe], **overrides}
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
    # A plain recurrent LM; the folder says which data module reads its tokenizer.
    config = read_config(run / "final")
    assert config["model_type"] == "seqkit-rnn-lm" and config["data_module"] == "chorales"


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
    assert metrics["eval/notes"] > 0 and metrics["eval/tokens"] > metrics["eval/notes"]
    # The same total cost, shared among fewer notes than tokens.
    assert metrics["eval/nll_per_note"] > metrics["eval/loss"] > 0
    assert metrics["eval/examples"] * 32 == metrics["eval/tokens"]
    assert metrics["eval/generated_pieces"] == 3 and metrics["eval/held_out_pieces"] == 2
    for key in ("pitch_class_distance_generated_vs_held_out", "held_out_in_key_share"):
        assert 0 <= metrics[f"eval/{key}"] <= 1
    # The generated corpus is scales over a held bass: held-out pieces are (almost) all in key.
    assert metrics["eval/held_out_in_key_share"] >= 0.9
    assert "eval/nll_per_note:" in capsys.readouterr().out
    # --data scores every piece of a MIDI folder (here the whole corpus, held out or not).
    argv = ["evaluate", str(run), "--data", str(corpus), "--num-pieces", "2", "--json"]
    assert main([*argv, str(tmp_path / "all.json")]) == 0
    scored = json.loads((tmp_path / "all.json").read_text())
    assert scored["eval/held_out_pieces"] == 2 and scored["eval/tokens"] > metrics["eval/tokens"]
    assert "eval/train_in_key_share" not in scored  # no training pieces when scoring a file


def _build(tmp_path, task_file, **overrides):
    corpus = write_corpus(tmp_path / "corpus")
    sets = [f"data.path={corpus}", "data.val_fraction=0.34", "model.block_size=16"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    return build_job(load_recipe(task_file, sets), tmp_path / "run")


def test_transposition_adds_every_key_the_range_allows(tmp_path):
    small = {"model.embedding_size": 8, "model.hidden_size": 8}
    plain = _build(tmp_path, RECIPES[1], **small)
    more = _build(tmp_path, RECIPES[1], **small, **{"data.transpose": 6})
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

    job = _build(tmp_path, RECIPES[1], **{"model.embedding_size": 8, "model.hidden_size": 8})
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


def test_old_music_tasks_are_shorthands_for_causal_lm_on_chorales(tmp_path):
    """An old recipe (or an old run's recipe.yaml) of task music-gpt / music-lstm still loads:
    the task's architecture, data module, model defaults and field names written out."""
    old = {
        "music-gpt": {"n_layer": 1, "n_head": 2, "hidden_size": 99},
        "music-lstm": {"n_layer": 3, "n_embd": 16, "n_head": 4},
    }
    built = {}
    for task, model in old.items():
        path = tmp_path / f"{task}.yaml"
        path.write_text(yaml.safe_dump({"task": task, "model": model}))
        recipe = load_recipe(path)
        assert recipe.task == "causal-lm" and recipe.data.module == "chorales"
        built[task] = resolve(recipe).builder
    gpt, lstm = built["music-gpt"], built["music-lstm"]
    # The old defaults where the recipe is silent (not the text GPT's n_embd 128, dropout 0).
    assert (gpt.n_layer, gpt.n_head, gpt.n_embd, gpt.block_size, gpt.dropout) == (
        1, 2, 256, 256, 0.1,
    )  # fmt: skip
    assert (lstm.cell, lstm.num_layers, lstm.embedding_size, lstm.hidden_size) == (
        "lstm", 3, 16, 512,
    )  # fmt: skip
    path = tmp_path / "both.yaml"
    path.write_text(
        yaml.safe_dump({"task": "music-lstm", "model": {"n_layer": 1, "num_layers": 2}})
    )
    with pytest.raises(UserError, match=r"model\.n_layer and model\.num_layers both set"):
        load_recipe(path)
    path.write_text(yaml.safe_dump({"task": "music-gpt", "data": {"module": "text"}}))
    with pytest.raises(UserError, match=r"task music-gpt trains data\.module chorales"):
        load_recipe(path)


def test_a_resumed_music_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    """Resuming reads the run's model/ folder (config with the data module, miditok tokenizer)
    and goes on exactly where the checkpoint stopped."""
    import shutil

    import torch
    from safetensors.torch import load_file

    corpus = write_corpus(tmp_path / "corpus")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    settings = {"data.path": corpus, "model.block_size": 16, "trainer.save_every": 2}
    _train(RECIPES[1], straight, **settings)
    # The same run, cut off after its step-2 checkpoint.
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-4")
    shutil.rmtree(resumed / "final")
    assert read_config(resumed / "model")["data_module"] == "chorales"
    assert main(["train", str(resumed), "--resume"]) == 0
    a = load_file(straight / "final" / "model.safetensors")
    b = load_file(resumed / "final" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
