"""``seqkit export``: a trained run to a Hub folder, and the bad-input contract (one line on
stderr, exit code 2, nothing half-written, nothing of the user's overwritten)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

from seqkit.cli import main
from seqkit.data import CharTokenizer
from seqkit.export.model_card import read_model_card
from seqkit.models.gpt import GPTLMHeadModel

TINY = [
    "--set", "model.n_layer=1",
    "--set", "model.n_head=2",
    "--set", "model.n_embd=16",
    "--set", "model.block_size=16",
    "--set", "trainer.max_steps=4",
    "--set", "trainer.batch_size=4",
    "--set", "trainer.eval_every=2",
    "--set", "trainer.save_every=2",
    "--set", "trainer.eval_batches=2",
    "--set", "trainer.warmup_steps=1",
    "--set", "trainer.progress_bar=false",
    "--set", "trainer.report_to=[]",
    "--set", "sample.max_new_tokens=1",
]  # fmt: skip


def seqkit(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(result, *fragments: str) -> str:
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("seqkit: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def leftovers(parent: Path) -> list[str]:
    """Hidden staging folders an export left behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "quick"
    code = main(["train", "gpt/quickstart-pydoc-char", *TINY, "--output-dir", str(run)])
    assert code == 0
    return run


def test_export_a_run_to_stock_gpt2(run, tmp_path, capsys):
    out = tmp_path / "hub"
    code, stdout, _ = seqkit(capsys, "export", str(run), str(out))
    assert code == 0
    assert "transformers format: GPT2LMHeadModel" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "README.md",
        "config.json",
        "generation_config.json",
        "loss.png",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert json.loads((out / "config.json").read_text())["model_type"] == "gpt2"
    assert (out / "loss.png").read_bytes() == (run / "loss.png").read_bytes()
    metadata, recipe, metrics = read_model_card(out / "README.md")
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "text-generation"
    assert "seqkit" in metadata["tags"] and metadata["license"] == "apache-2.0"
    assert metadata["metrics"] == ["loss", "perplexity"]
    assert recipe == yaml.safe_load((run / "recipe.yaml").read_text())
    last_eval = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "eval/loss" in r][-1]
    assert metrics["eval/loss"] == pytest.approx(last_eval["eval/loss"], abs=1e-4)
    assert metrics["step"] == 4
    card = (out / "README.md").read_text()
    assert "`pydoc-topics`" in card and "![Training and evaluation loss](loss.png)" in card
    assert f"path = {json.dumps(str(out.absolute()))}" in card

    # The same folder again: refused without --overwrite, replaced with it.
    assert_user_error(seqkit(capsys, "export", str(run), str(out)), "--overwrite")
    assert seqkit(capsys, "export", str(run), str(out), "--overwrite")[0] == 0
    assert leftovers(tmp_path) == []


def test_native_export_and_checkpoint_export(run, tmp_path, capsys):
    native = tmp_path / "native"
    assert seqkit(capsys, "export", str(run / "final"), str(native), "--format", "native")[0] == 0
    assert json.loads((native / "config.json").read_text())["model_type"] == "seqkit-gpt"
    assert load_file(native / "model.safetensors").keys() == (
        load_file(run / "final" / "model.safetensors").keys()
    )

    # A checkpoint is rebuilt into a model folder; its weights are the checkpoint's.
    checkpoint = run / "checkpoints" / "step-2"
    out = tmp_path / "step-2"
    assert seqkit(capsys, "export", str(checkpoint), str(out), "--format", "native")[0] == 0
    exported = GPTLMHeadModel.from_pretrained(out).state_dict()
    saved = load_file(checkpoint / "model-model.safetensors")
    assert saved.keys() <= exported.keys()
    for name, tensor in saved.items():
        assert torch.equal(tensor, exported[name]), name
    assert read_model_card(out / "README.md")[2]["step"] == 2


def test_a_run_without_final_offers_its_newest_checkpoint(run, tmp_path, capsys):
    interrupted = tmp_path / "interrupted"
    shutil.copytree(run, interrupted, ignore=shutil.ignore_patterns("final"))
    line = assert_user_error(
        seqkit(capsys, "export", str(interrupted), str(tmp_path / "out")), "no final/"
    )
    assert str(interrupted / "checkpoints" / "step-4") in line
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_not_an_export_is_never_replaced(run, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for flags in ([], ["--overwrite"]):
        assert_user_error(seqkit(capsys, "export", str(run), str(mine), *flags), str(mine))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert_user_error(seqkit(capsys, "export", str(run), str(run / "final"), "--overwrite"))
    assert_user_error(seqkit(capsys, "export", str(run), str(run)))
    assert (run / "final" / "model.safetensors").is_file()


def test_nan_weights_are_never_exported(run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run / "final", broken)
    weights = load_file(broken / "model.safetensors")
    name = sorted(weights)[0]
    weights[name][0] = float("nan")
    save_file(weights, broken / "model.safetensors")
    out = tmp_path / "out"
    assert_user_error(seqkit(capsys, "export", str(broken), str(out)), "NaN", name)
    assert not out.exists() and leftovers(tmp_path) == []


def test_other_bad_input(run, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert_user_error(seqkit(capsys, "export", str(tmp_path / "missing"), out), "does not exist")
    assert_user_error(seqkit(capsys, "export", str(tmp_path), out), "neither")
    foreign = tmp_path / "mamba"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    save_file({"w": torch.zeros(2)}, foreign / "model.safetensors")
    assert_user_error(seqkit(capsys, "export", str(foreign), out), "'mamba'")
    assert_user_error(
        seqkit(capsys, "export", str(run), out, "--push-to-hub", "not a/valid/id"), "repository id"
    )
    assert_user_error(seqkit(capsys, "export", str(run), out, "--private"), "--push-to-hub")
    assert not Path(out).exists()


def test_generate_and_import_from_a_stock_gpt2_folder(tmp_path, capsys):
    tokenizer = CharTokenizer.train("abcdefgh \n")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=8, n_layer=1, n_head=2
    )
    stock = tmp_path / "stock"
    GPT2LMHeadModel(config).save_pretrained(stock)
    tokenizer.save_pretrained(stock)
    code, text, _ = seqkit(
        capsys, "generate", str(stock), "--prompt", "abc", "--max-new-tokens", "8"
    )
    assert code == 0 and text.startswith("abc") and len(text.rstrip("\n")) >= 3

    imported = tmp_path / "imported"
    code, stdout, _ = seqkit(capsys, "export", str(stock), str(imported), "--format", "native")
    assert code == 0 and "GPTLMHeadModel" in stdout
    assert read_model_card(imported / "README.md")[0]["library_name"] == "seqkit"
    args = ["--prompt", "abc", "--max-new-tokens", "8", "--temperature", "0"]
    assert (
        seqkit(capsys, "generate", str(stock), *args)[1]
        == (seqkit(capsys, "generate", str(imported), *args)[1])
    )


def test_cards_record_local_data_and_the_final_eval_metrics(tmp_path, capsys):
    """The card of a run trained on ``data.path``, and of its export, parse with
    ``huggingface_hub``: model-index holds the final eval metrics on that file, and the body
    records the file with its size and SHA-256 from the run's ``data.json``."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog.\n" * 40)
    run = tmp_path / "run"
    args = ["train", "gpt/quickstart-pydoc-char", *TINY, "--set", f"data.path={corpus}"]
    args += ["--set", "sample.prompt=the", "--set", "trainer.max_steps=2", "--output-dir", str(run)]
    assert main(args) == 0
    capsys.readouterr()
    out = tmp_path / "hub"
    assert seqkit(capsys, "export", str(run), str(out))[0] == 0
    last_eval = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "eval/loss" in r][-1]
    sha = json.loads((run / "data.json").read_text())["data.path"]["files"]["corpus.txt"]["sha256"]
    for card_path in (run / "final" / "README.md", out / "README.md"):
        card = ModelCard.load(card_path)
        (index,) = card.data.to_dict()["model-index"]
        (result,) = index["results"]
        assert result["task"] == {"type": "text-generation"}
        assert result["dataset"] == {"name": "corpus.txt", "type": "corpus.txt"}
        values = {m["name"]: m["value"] for m in result["metrics"]}
        assert values.keys() == {"eval/loss", "eval/perplexity"}
        for name, value in values.items():
            assert value == pytest.approx(last_eval[name], abs=1e-4), card_path
        assert "datasets" not in card.data.to_dict() and card.data.base_model is None
        data = card.text.split("## Training data\n\n", 1)[1].split("\n\n## ", 1)[0]
        size = corpus.stat().st_size
        line = f"- Local files: `corpus.txt` ({size:,} bytes, SHA-256 `{sha}`)"
        assert data == f"- Data module: `text`\n{line}"  # the name, not the trainer's folders
        assert read_model_card(card_path)[1]["data"]["path"] == str(corpus)  # still reads back


@pytest.mark.parametrize(
    ("offline", "reason"),
    [(True, "offline mode is on"), (False, "Connection refused")],
)
def test_push_to_hub_fails_after_writing(run, tmp_path, capsys, monkeypatch, offline, reason):
    """Offline, or with a fake token and an endpoint nothing listens on: the folder is written,
    then one line says the upload failed and how to do it later."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    out = tmp_path / "hub"
    line = assert_user_error(
        seqkit(capsys, "export", str(run), str(out), "--push-to-hub", "me/x", "--private"),
        f"wrote {out}",
        reason,
        f"hf upload me/x {out}",
    )
    assert "Traceback" not in line
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert 'path = "me/x"' in (out / "README.md").read_text()  # the card loads from the Hub


def test_push_to_hub_without_a_token(run, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    out = tmp_path / "hub"
    assert_user_error(
        seqkit(capsys, "export", str(run), str(out), "--push-to-hub", "me/x"), "no Hub token"
    )
    assert (out / "config.json").is_file()


# One recipe per family whose data needs no download (the transfer recipe needs a trained
# digits model, the tabular one the shared bike-sharing data; both families are covered by
# tests/export/test_roundtrip.py on model folders).
FAMILY_RECIPES = [
    "rnn/quickstart-pydoc-lstm",
    "rnn/pydoc-prose-or-code-classifier",
    "seq2seq/generated-attention",
    "transformer/generated-toy",
    "bert/pydoc-mlm",
    "bert/pydoc-prose-or-code-classifier",
    "bow/python-docstrings-topics",
    "vision/digits-cnn",
    "vision/digits-mlp",
    "vision/digits-resnet",
    "vision/digits-denoising-autoencoder",
    "gan/digits-dcgan",
    "gcn/karate-club",
    "rl/frozenlake-q-learning",
    "rl/cartpole-dqn",
    "music/bach-chorales-lstm",
    "music/bach-chorales-gpt",
]
TWO_STEPS = [
    "--set", "trainer.max_steps=2",
    "--set", "trainer.eval_every=2",
    "--set", "trainer.save_every=0",
    "--set", "trainer.progress_bar=false",
    "--set", "trainer.report_to=[]",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("recipe", FAMILY_RECIPES)
def test_every_family_run_exports_and_loads_back_bit_for_bit(recipe, tmp_path, capsys):
    """A real run of each family (two steps), exported natively: the card's own loading code
    gives the run's weights bit for bit, and the card carries the run's metrics and loss plot."""
    import re

    run, out = tmp_path / "run", tmp_path / "hub"
    assert main(["train", recipe, *TWO_STEPS, "--output-dir", str(run)]) == 0
    code, _, err = seqkit(capsys, "export", str(run), str(out), "--format", "native")
    assert code == 0, err
    card = (out / "README.md").read_text(encoding="utf-8")
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", card, re.S).group(1), namespace)
    loaded = namespace["model"].state_dict()
    saved = load_file(run / "final" / "model.safetensors")
    assert saved.keys() <= loaded.keys()
    for name, tensor in saved.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    metadata, recipe_in_card, metrics = read_model_card(out / "README.md")
    assert recipe_in_card == yaml.safe_load((run / "recipe.yaml").read_text())
    assert "seqkit" in metadata["tags"] and metadata["library_name"] == "seqkit"
    assert metrics and (out / "loss.png").read_bytes() == (run / "loss.png").read_bytes()
