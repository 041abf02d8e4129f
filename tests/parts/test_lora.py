"""LoRA (``model.lora``, peft's adapters) on the GPT, decoder and BERT recipes: only the
adapters (and a classifier's new head) train; ``final/`` is the plain seqkit model with the
updates merged, equal to the adapted model; the adapter is saved alone; a checkpoint opens
merged; resume is bit-identical; bad settings and a missing peft are one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.model_folder import load_folder, open_trained
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR
from seqkit.trainer import trainer as trainer_module
from seqkit.trainer.checkpoint import load_module_weights
from seqkit.training import train_run
from tests.parts.labelled_stand_in import write_labelled

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 30
TRAINER = ["trainer.batch_size=4", "trainer.eval_every=0", "trainer.warmup_steps=0",
           "trainer.progress_bar=false", "trainer.report_to=[]", "trainer.lr=0.01"]  # fmt: skip
SIZES = {
    "gpt": ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16"],
    "decoder": ["model.n_layer=1", "model.n_head=2", "model.n_kv_head=1", "model.n_embd=16",
                "model.intermediate_size=32", "model.block_size=16"],
    "bert": ["model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
             "model.intermediate_size=32", "tokenizer.vocab_size=300", "data.max_length=16"],
}  # fmt: skip
RECIPES = {
    "gpt": "gpt/shakespeare-char.yaml",
    "decoder": "decoder/shakespeare-char.yaml",
    "bert": "bert/pydoc-prose-or-code-classifier.yaml",
}


def overrides(tmp_path, architecture: str, *more: str) -> list[str]:
    if architecture == "bert":
        data = tmp_path / "labelled.tsv"
        write_labelled(data, "text", "label", 40)
        data_settings = [f"data.path={data}", "data.train_examples=32"]
    else:
        corpus = tmp_path / "corpus.txt"
        corpus.write_text(TEXT, encoding="utf-8")
        data_settings = [f"data.path={corpus}", "sample.prompt=First", "sample.max_new_tokens=4"]
    return [*SIZES[architecture], *TRAINER, *data_settings, *more]


def train(tmp_path, architecture: str, name: str, *more: str):
    settings = overrides(tmp_path, architecture, *more)
    return train_run(RECIPES_DIR / RECIPES[architecture], settings, tmp_path / name)


def inputs(model) -> dict[str, torch.Tensor]:
    vocab = model.config.vocab_size
    ids = torch.arange(12).remainder(vocab - 1).add(1).view(2, 6)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@torch.no_grad()
def logits(model) -> torch.Tensor:
    return model.eval()(**inputs(model)).logits


@pytest.mark.parametrize(
    ("architecture", "head"),
    [("gpt", None), ("decoder", None), ("bert", "classifier")],
)
def test_only_adapters_train_and_final_is_the_merged_plain_model(tmp_path, architecture, head):
    lora = ["model.lora.r=2", "model.lora.alpha=4"]
    run = train(tmp_path, architecture, "run", "trainer.max_steps=3", "trainer.save_every=3", *lora)
    checkpoint = run.run_dir / "checkpoints" / "step-3"
    # The same recipe and seed build the same initial weights, adapters injected.
    recipe = load_recipe(
        RECIPES_DIR / RECIPES[architecture], overrides(tmp_path, architecture, *lora)
    )
    fresh = build_job(recipe, tmp_path / "fresh")
    adapted = fresh.task.model
    total = sum(p.numel() for p in adapted.parameters())
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or f"{head}.modules_to_save" in n for n in trainable)
    count = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    assert fresh.summary["trainable parameters"].startswith(f"{count:,} of {total:,} (")
    before = {n: t.clone() for n, t in adapted.state_dict().items()}
    after = load_file(checkpoint / "model-model.safetensors")
    assert set(after) <= set(before)  # tied weights (GPT's wte and lm_head) are saved once
    # Frozen weights stay bit-equal (weight decay would move them if they were optimized).
    changed = {n for n in after if not torch.equal(before[n], after[n])}
    assert changed and changed <= trainable, sorted(changed - trainable)
    assert all(n in changed for n in trainable if "lora_B" in n)  # every B left its zeros

    load_module_weights(adapted, checkpoint / "model-model.safetensors")
    expected = logits(adapted)  # the adapted model, before any merge
    final = load_folder(run.run_dir / "final").model
    assert type(final) is fresh.task.model.__class__
    assert not any("lora" in n or "modules_to_save" in n for n in final.state_dict())
    torch.testing.assert_close(logits(final), expected, atol=1e-5, rtol=0)
    assert "peft" not in (run.run_dir / "final" / "config.json").read_text()
    # The checkpoint opens as the merged model too (export, evaluate, generate of a checkpoint).
    torch.testing.assert_close(logits(open_trained(checkpoint).model), expected, atol=1e-5, rtol=0)
    # The adapter alone, in peft's format.
    adapter = run.run_dir / "final" / "adapter"
    settings = json.loads((adapter / "adapter_config.json").read_text())
    assert settings["r"] == 2 and settings["lora_alpha"] == 4
    saved = load_file(adapter / "adapter_model.safetensors")
    heads = {n for n in saved if "lora_" not in n}
    assert saved and heads == (
        {f"base_model.model.{head}.{p}" for p in ("weight", "bias")} if head else set()
    ), heads
    if architecture == "gpt":  # exported as stock GPT-2: the merged weights, no seqkit adapter
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["export", str(run.run_dir), str(tmp_path / "stock")]) == 0
        assert not (tmp_path / "stock" / "adapter").exists()
        assert (tmp_path / "stock" / "model.safetensors").is_file()


def test_resume_is_bit_identical(tmp_path, monkeypatch):
    lora = ["model.lora.r=2", "model.lora.dropout=0.2", "trainer.schedule=constant"]
    whole = train(tmp_path, "gpt", "whole", "trainer.max_steps=4", "trainer.save_every=2", *lora)
    half = train(tmp_path, "gpt", "half", "trainer.max_steps=2", "trainer.save_every=2", *lora)
    loaded = []  # the resumed run must load step 2 into its adapted model, not start again
    real = trainer_module.load_module_weights
    monkeypatch.setattr(
        trainer_module,
        "load_module_weights",
        lambda module, path: (loaded.append(path.parent.name), real(module, path)),
    )
    resumed = train_run(half.run_dir, ["trainer.max_steps=4"], resume=True)
    assert loaded == ["step-2"]
    for name in ("checkpoints/step-4/model-model.safetensors", "final/model.safetensors"):
        a, b = load_file(whole.run_dir / name), load_file(resumed.run_dir / name)
        assert set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a), name


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model.lora.r=0", "model.lora.r must be at least 1, got 0"),
        ("model.lora.alpha=0", "model.lora.alpha must be > 0, got 0"),
        ("model.lora.dropout=1", "model.lora.dropout must be in [0, 1), got 1"),
        ("model.lora.target_modules=[]", "model.lora.target_modules must name at least one"),
        ("model.lora.rank=4", "unknown key 'model.lora.rank'; valid keys in 'model.lora': alpha"),
        ("model.lora.target_modules=[q_proj]", "'q_proj' is no layer of the gpt model; its "
         "adaptable layers: c_attn, c_fc, c_proj, lm_head, wpe, wte"),
        ("model.lora.target_modules=[ln_1]", "'ln_1' is a LayerNorm; LoRA adapts Linear"),
    ],
)  # fmt: skip
def test_bad_settings_are_one_line_errors(tmp_path, setting, message):
    recipe = RECIPES_DIR / RECIPES["gpt"]
    with pytest.raises(UserError) as caught:
        build_job(load_recipe(recipe, overrides(tmp_path, "gpt", setting)), tmp_path / "run")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_missing_peft_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    # A None entry in sys.modules makes `import peft` fail as if it were not installed.
    for name in [m for m in sys.modules if m == "peft" or m.startswith("peft.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "peft", None)
    args = [a for s in overrides(tmp_path, "gpt", "model.lora.r=2") for a in ("--set", s)]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", RECIPES["gpt"], *args, "--output-dir", str(tmp_path / "run")])
    assert code == 2
    assert err.getvalue().strip().splitlines()[-1] == (
        "seqkit: error: model.lora: this needs the optional package peft: "
        "pip install 'seqkit[lora]'"
    )
    assert not (tmp_path / "run").exists()


def test_the_shipped_recipe_adapts_a_stock_gpt2_and_starts_from_its_function(tmp_path):
    import transformers

    from tests.parts.test_init_from_stock import corpus, stock_gpt2

    folder = stock_gpt2(tmp_path / "gpt2")
    settings = [f"model.init_from={folder}", f"data.path={corpus(tmp_path)}", "data.block_size=16"]
    recipe = load_recipe(RECIPES_DIR / "gpt/shakespeare-gpt2-lora.yaml", settings)
    job = build_job(recipe, tmp_path / "run")
    model = job.task.model
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"transformer.h.{i}.attn.{layer}.lora_{m}.default.weight"
        for i in range(2)
        for layer in ("c_attn", "c_proj")
        for m in "AB"
    }  # the MLP's c_proj is not adapted by default
    assert job.summary["trainable parameters"].startswith(
        "1,536 of "
    )  # 2 layers x r 8 x ((16+48) + (16+16))
    # B starts at zero: the adapted model computes the stock model's function.
    stock = transformers.GPT2LMHeadModel.from_pretrained(folder)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = stock.eval()(input_ids=ids).logits
    torch.testing.assert_close(model.eval()(input_ids=ids).logits, expected, atol=1e-4, rtol=0)


def test_a_classifier_from_a_stock_encoder_trains_its_new_head_in_full(tmp_path):
    from tests.parts.test_init_from_stock import stock_bert

    folder = stock_bert(tmp_path / "bert", "BertForMaskedLM")
    labelled = tmp_path / "labelled.tsv"
    write_labelled(labelled, "text", "label", 40)
    settings = [f"model.init_from={folder}", f"data.path={labelled}", "data.max_length=16",
                "data.train_examples=20", "model.lora.r=4"]  # fmt: skip
    recipe = load_recipe(RECIPES_DIR / RECIPES["bert"], settings)
    model = build_job(recipe, tmp_path / "run").task.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trainable if "lora_" not in n}
    assert head == {"classifier.modules_to_save.default." + p for p in ("weight", "bias")}
    assert {n.split(".")[-4] for n in trainable - head} == {"query", "key", "value", "out"}
