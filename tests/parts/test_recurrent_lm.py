"""The recurrent language models end to end: every LM recipe under recipes/rnn trains with a
tiny budget, a run generates and evaluates through the generic CLI commands, and bad input ends
as one clear line with exit code 2. (The recurrent classifier: tests/parts/test_classification.py)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.cli import main
from seqkit.recipes import RECIPES_DIR

TINY = [
    "--set", "model.embedding_size=8",
    "--set", "model.hidden_size=8",
    "--set", "model.num_layers=1",
    "--set", "trainer.max_steps=2",
    "--set", "trainer.batch_size=4",
    "--set", "trainer.eval_every=2",
    "--set", "trainer.save_every=2",
    "--set", "trainer.eval_batches=2",
    "--set", "trainer.warmup_steps=1",
    "--set", "trainer.progress_bar=false",
    "--set", "sample.max_new_tokens=10",
]  # fmt: skip
TINY_LM = [*TINY, "--set", "model.block_size=16"]
RNN_RECIPES = sorted(
    p.relative_to(RECIPES_DIR) for p in RECIPES_DIR.glob("rnn/*.yaml") if "classifier" not in p.stem
)
SHAKESPEARE = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 30


def seqkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        timeout=300,
    )


def assert_user_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("seqkit: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train(recipe: str | Path, run: Path, *extra: str) -> None:
    code = main(["train", str(recipe), *TINY_LM, *extra, "--output-dir", str(run)])
    assert code == 0


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A tiny GRU LM trained in a subprocess: the CLI end to end."""
    folder = tmp_path_factory.mktemp("rnn")
    corpus = folder / "corpus.txt"
    corpus.write_text(SHAKESPEARE)
    run = folder / "gru"
    result = seqkit(
        "train", "rnn/shakespeare-gru", *TINY_LM, "--set", f"data.path={corpus}",
        "--set", "sample.prompt=First", "--output-dir", str(run),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--- sample" in result.stdout
    return run


def test_a_recurrent_lm_run_generates_and_evaluates(lm_run, capsys, tmp_path):
    final = lm_run / "final"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md"):
        assert (final / name).is_file(), name
    assert main(["generate", str(lm_run), "--prompt", "First", "--max-new-tokens", "15"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("First") and len(text.rstrip("\n")) == 20
    # Same seed, same text; a prompt longer than any window is fine (no context limit).
    args = ["generate", str(final), "--prompt", "First " * 10, "--max-new-tokens", "5"]
    assert main([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    json_path = tmp_path / "metrics.json"
    assert main(["evaluate", str(lm_run), "--json", str(json_path)]) == 0
    out = capsys.readouterr().out
    assert "eval/loss" in out and "eval/perplexity" in out
    assert main(["generate", str(lm_run), "--prompt", "snow ☃"]) == 2
    assert_user_error(2, capsys.readouterr().err, "☃")


@pytest.mark.parametrize("recipe", RNN_RECIPES, ids=str)
def test_every_rnn_recipe_trains_with_a_tiny_budget(recipe, tmp_path, capsys):
    extra = []
    if "shakespeare" in str(recipe):
        corpus = tmp_path / "corpus.txt"
        corpus.write_text(SHAKESPEARE)
        extra = ["--set", f"data.path={corpus}", "--set", "sample.prompt=First"]
    train(RECIPES_DIR / recipe, tmp_path / "run", *extra)
    out = capsys.readouterr().out
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert "--- sample" in out


def test_init_from_fine_tunes_and_names_what_does_not_fit(lm_run, tmp_path, capsys):
    from safetensors.torch import load_file

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hear me speak. First Citizen:\n" * 30)  # a second corpus, same letters
    final = lm_run / "final"
    other = tmp_path / "other-family"  # the same files, labelled as another model family
    shutil.copytree(final, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(
        json.dumps({**config, "model_type": "seqkit-rnn-classifier"})
    )
    common = [*TINY_LM, "--set", f"data.path={corpus}", "--set", f"model.init_from={final}",
              "--set", "sample.prompt=First", "--set", "trainer.lr=1e-300",
              "--set", "trainer.min_lr=0"]  # fmt: skip
    assert (
        main(["train", "rnn/shakespeare-gru", *common, "--output-dir", str(tmp_path / "ok")]) == 0
    )
    capsys.readouterr()
    # lr 1e-300 (0 is refused): every update is 0 in float32, so the fine-tuned weights are
    # the pretrained ones, which proves they were all loaded.
    before = load_file(final / "model.safetensors")
    after = load_file(tmp_path / "ok" / "final" / "model.safetensors")
    assert before.keys() == after.keys()
    assert all((before[name] - after[name]).abs().max() == 0 for name in before)
    cases = [
        ("rnn/shakespeare-lstm", [], ("model.cell 'lstm' vs 'gru'",)),
        ("rnn/shakespeare-gru", ["--set", "model.hidden_size=16", "--set", "model.num_layers=2"],
         ("model.hidden_size 16 vs 8", "model.num_layers 2 vs 1")),
        ("rnn/shakespeare-gru", ["--set", f"model.init_from={other}"],
         ("holds a 'seqkit-rnn-classifier' model, not a seqkit recurrent one",)),
    ]  # fmt: skip
    for recipe, extra, fragments in cases:
        run = tmp_path / recipe.replace("/", "-")
        code = main(["train", recipe, *common, *extra, "--output-dir", str(run)])
        assert_user_error(code, capsys.readouterr().err, *fragments)


def test_the_explicit_path_trains_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(SHAKESPEARE)
    for path in ("fused", "explicit"):
        train("rnn/shakespeare-lstm", tmp_path / path, "--set", f"data.path={corpus}",
              "--set", "sample.prompt=First", "--set", f"model.implementation={path}")  # fmt: skip
    fused = load_file(tmp_path / "fused" / "final" / "model.safetensors")
    explicit = load_file(tmp_path / "explicit" / "final" / "model.safetensors")
    assert fused.keys() == explicit.keys()
    for name in fused:
        assert (fused[name] - explicit[name]).abs().max() < 1e-5, name


@pytest.mark.parametrize(
    ("recipe", "overrides", "fragments"),
    [
        ("rnn/shakespeare-lstm", ["model.cell=transformer"], ("model.cell", "rnn, lstm, gru")),
        ("rnn/quickstart-pydoc-lstm", ["model.implementation=fast"], ("model.implementation",)),
        (
            "rnn/quickstart-pydoc-lstm",
            ["model.tie_weights=true", "model.hidden_size=16"],
            ("model.tie_weights",),
        ),
        ("rnn/quickstart-pydoc-lstm", ["model.hidden_size=0"], ("model.hidden_size",)),
    ],
)
def test_bad_recipe_values(recipe, overrides, fragments, tmp_path, capsys):
    sets = [arg for override in overrides for arg in ("--set", override)]
    code = main(["train", recipe, *TINY, *sets, "--output-dir", str(tmp_path / "r")])
    assert_user_error(code, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "r").exists()
