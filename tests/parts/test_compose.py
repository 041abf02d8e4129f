"""The parts seam end to end: recipes naming a task, an architecture and a data module; shorthand
tasks; run folders that stand alone from step 0; one evaluation for training and `seqkit
evaluate`; the open-model decoder added as one model file, one recipe and one registry line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqkit.errors import UserError
from seqkit.parts import compose, model_folder, resolve
from seqkit.parts.registry import DATA_MODULES, MODEL_BUILDERS, SHORTHANDS, TASKS
from seqkit.recipes import RECIPES_DIR

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak.\n" * 40
TINY = [
    "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
    "trainer.max_steps=6", "trainer.batch_size=4", "trainer.eval_every=3",
    "trainer.save_every=3", "trainer.warmup_steps=1", "trainer.progress_bar=false",
    "sample.prompt=First", "sample.max_new_tokens=5",
]  # fmt: skip


def seqkit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        timeout=300,
    )


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="module")
def decoder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny run of the decoder recipe on a corpus file that the tests may then delete."""
    root = tmp_path_factory.mktemp("decoder")
    corpus = root / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = root / "run"
    result = seqkit(
        "train", "decoder/shakespeare-char", *sets(*TINY, f"data.path={corpus}"),
        "--output-dir", str(run),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run, corpus


# ----------------------------------------------------------------------------- recipes


def test_shipped_recipes_name_a_task_an_architecture_and_registered_parts():
    recipe = resolve.load_recipe(RECIPES_DIR / "decoder" / "shakespeare-char.yaml")
    parts = resolve.resolve(recipe)
    assert (recipe.task, recipe.model["architecture"]) == ("causal-lm", "decoder")
    assert MODEL_BUILDERS.name_of(type(parts.builder)) == "decoder"
    assert type(parts.data) is DATA_MODULES.get("text")
    assert parts.task_class is TASKS.get("causal-lm")


def test_a_shorthand_task_is_written_out(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("task: lstm-lm\nmodel: {hidden_size: 32}\n", encoding="utf-8")
    recipe = resolve.load_recipe(path)
    assert recipe.task == "causal-lm"
    assert recipe.model == {"architecture": "recurrent", "cell": "lstm", "hidden_size": 32}
    assert set(SHORTHANDS) >= {"gpt", "rnn-lm", "lstm-lm", "gru-lm"}
    path.write_text("task: lstm-lm\nmodel: {cell: gru}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"task lstm-lm trains model\.cell lstm, but the recipe"):
        resolve.load_recipe(path)


def test_unknown_parts_are_named_with_the_valid_ones(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("task: causal-lm\nmodel: {architecture: mamba}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"unknown model\.architecture 'mamba'; valid: .*decoder"):
        resolve.resolve(resolve.load_recipe(path))
    path.write_text("task: causal-lm\nmodel: {}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"model\.architecture is not set"):
        resolve.resolve(resolve.load_recipe(path))
    path.write_text("task: causal-lm\nmodel: {architecture: gpt}\ndata: {module: x}\n")
    with pytest.raises(UserError, match=r"unknown data\.module 'x'; valid: .*text"):
        resolve.load_recipe(path)


# ----------------------------------------------------------------------------- run folders


def test_a_run_stands_alone_from_step_0(decoder_run, tmp_path):
    run, corpus = decoder_run
    saved = run / model_folder.RUN_MODEL
    assert json.loads((saved / "config.json").read_text())["model_type"] == "seqkit-decoder"
    assert (saved / "tokenizer.json").read_bytes() == (
        run / "final" / "tokenizer.json"
    ).read_bytes()
    moved = tmp_path / "corpus.moved"
    shutil.move(corpus, moved)  # the data is gone: a checkpoint still exports, scores, samples
    try:
        checkpoint = run / "checkpoints" / "step-3"
        result = seqkit("export", str(checkpoint), str(tmp_path / "out"), "--format", "native")
        assert result.returncode == 0, result.stderr[-3000:]
        loaded = model_folder.load_folder(tmp_path / "out")
        from_checkpoint = model_folder.load_checkpoint(checkpoint)
        for name, value in from_checkpoint.model.state_dict().items():
            assert torch.equal(value, loaded.model.state_dict()[name]), name
        result = seqkit("generate", str(checkpoint), "--prompt", "First", "--max-new-tokens", "5")
        assert result.returncode == 0 and result.stdout.startswith("First"), result.stderr
        result = seqkit("evaluate", str(checkpoint), "--data", str(moved))
        assert result.returncode == 0 and "eval/loss:" in result.stdout, result.stderr
    finally:
        shutil.move(moved, corpus)


def test_resume_reads_the_saved_tokenizer_and_never_trains_one(decoder_run, monkeypatch):
    run, _ = decoder_run
    recipe = resolve.load_recipe(run / "recipe.yaml")

    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again on resume")

    monkeypatch.setattr("seqkit.data.tokenizer_folder.train_tokenizer", no_training)
    job = compose.build_job(recipe, run, resume=True)
    assert job.summary["vocabulary"].startswith(str(len(set(TEXT))))
    with pytest.raises(AssertionError, match="trained again"):
        compose.build_job(recipe, run, resume=False)


def test_evaluate_runs_the_training_evaluation(tmp_path):
    """`seqkit evaluate` reports what training logged at its last evaluation (same Task, same
    windows, same evaluator)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    result = seqkit(
        "train", "gpt/quickstart-pydoc-char",
        *sets(*TINY, f"data.path={corpus}", "trainer.eval_every=6"), "--output-dir", str(run),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = [row for row in logged if "eval/loss" in row][-1]
    result = seqkit("evaluate", str(run), "--json", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr[-3000:]
    scored = json.loads((tmp_path / "m.json").read_text())
    assert scored["eval/loss"] == pytest.approx(last["eval/loss"], rel=1e-5)
    assert scored["eval/perplexity"] == pytest.approx(last["eval/perplexity"], rel=1e-5)


# ----------------------------------------------------------------------------- the decoder


def test_the_decoder_exports_to_llama_and_back(decoder_run, tmp_path):
    """Adding the decoder took its model file, one recipe, these tests and one registry line;
    its run exports to a stock LlamaForCausalLM folder and is imported back."""
    from transformers import LlamaForCausalLM

    run, _ = decoder_run
    result = seqkit("export", str(run), str(tmp_path / "llama"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "llama" / "config.json").read_text())["model_type"] == "llama"
    stock = LlamaForCausalLM.from_pretrained(tmp_path / "llama").eval()
    ours = model_folder.load_folder(run / "final").model
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.inference_mode():
        assert torch.allclose(stock(ids).logits, ours(ids).logits, atol=1e-4)
    result = seqkit("export", str(tmp_path / "llama"), str(tmp_path / "back"), "--format", "native")
    assert result.returncode == 0, result.stderr[-3000:]
    back = model_folder.load_folder(tmp_path / "back").model
    with torch.inference_mode():
        assert torch.allclose(back(ids).logits, ours(ids).logits, atol=1e-5)
