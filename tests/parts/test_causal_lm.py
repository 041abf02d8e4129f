"""Causal-LM recipes composed from parts: the tokenizer (char or bpe trained on the corpus, or a
saved folder), fine-tuning from a folder, and the run's saved model config."""

from __future__ import annotations

import pytest
import torch

from seqkit.data import BPETokenizer, CharTokenizer
from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.model_folder import load_folder
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "trainer.batch_size=4"]  # fmt: skip
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 30


def job_for(tmp_path, recipe: str, *overrides: str):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    loaded = load_recipe(
        RECIPES_DIR / recipe, [*TINY, f"data.path={corpus}", "sample.prompt=First", *overrides]
    )
    return build_job(loaded, tmp_path / "run")


def test_bpe_recipe_trains_a_bpe_tokenizer_on_its_corpus(tmp_path):
    job = job_for(tmp_path, "gpt/shakespeare-bpe.yaml", "tokenizer.vocab_size=300")
    assert job.summary["vocabulary"] == "300 (bpe)"
    job.save_final(tmp_path / "final", {}, tmp_path)
    loaded = load_folder(tmp_path / "final")
    model, tokenizer = loaded.model, loaded.tokenizer
    assert isinstance(tokenizer, BPETokenizer) and model.config.vocab_size == 300
    assert "byte-level-bpe" in (tmp_path / "final" / "README.md").read_text(encoding="utf-8")


def test_tokenizer_path_decides_the_kind(tmp_path):
    BPETokenizer.train(TEXT, 280).save_pretrained(tmp_path / "bpe")
    job = job_for(tmp_path, "gpt/shakespeare-char.yaml", f"tokenizer.path={tmp_path / 'bpe'}")
    assert job.summary["vocabulary"].endswith("(bpe)")
    CharTokenizer.train(TEXT).save_pretrained(tmp_path / "char")
    job = job_for(tmp_path, "gpt/shakespeare-bpe.yaml", f"tokenizer.path={tmp_path / 'char'}")
    assert job.summary["vocabulary"] == f"{len(set(TEXT))} (char)"


def test_bpe_without_a_vocab_size_and_a_mismatched_folder(tmp_path):
    with pytest.raises(UserError, match=r"needs tokenizer\.vocab_size"):
        job_for(tmp_path, "gpt/shakespeare-char.yaml", "tokenizer.kind=bpe")
    job = job_for(tmp_path, "gpt/shakespeare-char.yaml")
    job.save_final(tmp_path / "model", {}, tmp_path)
    BPETokenizer.train(TEXT, 280).save_pretrained(tmp_path / "model")  # replace its tokenizer
    with pytest.raises(UserError, match="tokenizer has 280 tokens but the model expects"):
        job_for(tmp_path, "gpt/shakespeare-char.yaml", f"model.init_from={tmp_path / 'model'}")


def test_init_from_fine_tunes_the_same_weights_and_refuses_what_does_not_fit(tmp_path):
    job = job_for(tmp_path, "gpt/shakespeare-char.yaml")
    job.save_final(tmp_path / "model", {}, tmp_path)
    tuned = job_for(tmp_path, "gpt/shakespeare-char.yaml", f"model.init_from={tmp_path / 'model'}")
    saved, loaded = job.task.models["model"].state_dict(), tuned.task.models["model"].state_dict()
    assert all(torch.equal(saved[name], loaded[name]) for name in saved)
    # A recipe asking for another size never silently takes the folder's.
    with pytest.raises(UserError, match=r"another model than the recipe.s \(model\.n_layer 3 vs 1"):
        job_for(
            tmp_path,
            "gpt/shakespeare-char.yaml",
            f"model.init_from={tmp_path / 'model'}",
            "model.n_layer=3",
        )
    # A folder of another family is named as such.
    config = tmp_path / "model" / "config.json"
    config.write_text(config.read_text().replace('"seqkit-gpt"', '"seqkit-bert"'))
    with pytest.raises(UserError, match=r"holds a 'seqkit-bert' model, not a seqkit gpt one"):
        job_for(tmp_path, "gpt/shakespeare-char.yaml", f"model.init_from={tmp_path / 'model'}")


def test_a_gpt_recipe_trains_the_plain_network_and_can_ask_for_gpt2s_residual_scaling(tmp_path):
    from seqkit.models.gpt_network import StandaloneGPT

    plain = job_for(tmp_path, "gpt/shakespeare-char.yaml", "model.n_layer=8", "model.n_embd=64")
    scaled = job_for(tmp_path, "gpt/shakespeare-char.yaml", "model.n_layer=8", "model.n_embd=64",
                     "model.scale_residual_init=true")  # fmt: skip
    for job, std in ((plain, 0.02), (scaled, 0.02 / 4)):  # 0.02 / √(2·8)
        model = job.task.models["model"]
        assert isinstance(model, StandaloneGPT)
        residual = torch.cat([b.mlp.c_proj.weight.flatten() for b in model.transformer.h])
        assert abs(residual.std().item() - std) < 0.05 * std
    assert scaled.task.models["model"].config.scale_residual_init is True
    scaled.save_final(tmp_path / "final", {}, tmp_path)
    assert load_folder(tmp_path / "final").model.config.scale_residual_init is True
