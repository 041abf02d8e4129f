"""The seq2seq task with the encoder–decoder Transformer, in process: a tiny run on the
generated corpus, BLEU from `seqkit evaluate`, shared vocabulary, and folders whose
vocabularies do not fit the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.models.transformer import TransformerBuilder
from seqkit.parts import compose, model_folder, resolve
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR, parse_section

pytestmark = pytest.mark.usefixtures("one_thread")

GENERATED = RECIPES_DIR / "transformer" / "generated-toy.yaml"
TINY = [
    "model.d_model=16",
    "model.n_head=2",
    "model.num_encoder_layers=1",
    "model.num_decoder_layers=1",
    "model.d_ff=32",
    "model.beam_size=2",
    "model.max_length=12",
    "data.generated_pairs=60",
    "data.val_fraction=0.2",
    "trainer.max_steps=3",
    "trainer.batch_size=8",
    "trainer.eval_every=0",
    "trainer.save_every=0",
    "trainer.warmup_steps=1",
    "trainer.progress_bar=false",
    "trainer.report_to=[]",
]


def _sets(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


def test_recipes_validate():
    for path in sorted((RECIPES_DIR / "transformer").glob("*.yaml")):
        recipe = load_recipe(path)
        assert recipe.task == "seq2seq" and recipe.model["architecture"] == "transformer"
        assert isinstance(resolve.resolve(recipe).builder, TransformerBuilder)
    with pytest.raises(UserError, match="divisible"):
        parse_section(TransformerBuilder, {"d_model": 30, "n_head": 4}, "model")


def test_train_evaluate_and_mismatched_vocabularies(tmp_path, capsys):
    run = tmp_path / "run"
    overrides = [*TINY, "trainer.save_every=3"]
    assert main(["train", str(GENERATED), *_sets(overrides), "--output-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run / "final")]) == 0
    out = capsys.readouterr()
    assert "eval/bleu:" in out.out and "eval/chrf:" in out.out and "signature:" in out.out

    plot = tmp_path / "attention.png"
    code = main(["translate", str(run / "final"), "--text", "la kato granda la fiso vidas .",
                 "--beam-size", "2", "--plot-attention", str(plot)])  # fmt: skip
    assert code == 0 and plot.stat().st_size > 0
    capsys.readouterr()

    # A vocabulary file from another run no longer fits the model's embeddings.
    vocab = json.loads((run / "final" / "translation_vocab.json").read_text())
    vocab["target"]["itos"].append("extra-word")
    (run / "final" / "translation_vocab.json").write_text(json.dumps(vocab))
    assert main(["evaluate", str(run / "final")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "target vocabulary" in lines[0], lines

    # The same check on a checkpoint, whose vocabularies are the run's model/.
    vocab = json.loads((run / "model" / "translation_vocab.json").read_text())
    vocab["source"]["itos"] = vocab["source"]["itos"][:-1]
    (run / "model" / "translation_vocab.json").write_text(json.dumps(vocab))
    checkpoint = run / "checkpoints" / "step-3"
    assert main(["translate", str(checkpoint), "--text", "la kato"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "source vocabulary" in lines[0], lines


def test_shared_embeddings_build_one_joint_vocabulary():
    recipe = load_recipe(GENERATED, [*TINY, "model.share_embeddings=true"])
    job = compose.build_job(recipe, Path("unused"))
    model = job.task.model
    assert model.tgt_embed is None and model.config.share_embeddings
    assert model.config.src_vocab_size == model.config.tgt_vocab_size
    batch = job.collate_fn([job.train_data[i] for i in range(4)])
    assert torch.isfinite(job.task.training_step(job.task.models, batch, "model"))
    assert "reference:" in job.sample()
    sizes = {"source_vocab_size": 10, "target_vocab_size": 11}
    facts = {**sizes, "max_source_length": 8, "max_target_length": 8}
    facts |= {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
    with pytest.raises(UserError, match="one joint vocabulary"):
        TransformerBuilder(share_embeddings=True).config("seq2seq", facts)


def test_joint_bpe_vocabulary_trains_translates_and_reloads(tmp_path, capsys):
    run = tmp_path / "run"
    options = ["model.share_embeddings=true", "data.tokenizer=bpe", "data.vocab_size=300"]
    args = ["train", str(GENERATED), "--output-dir", str(run)]
    assert main([*args, *(f"--set={o}" for o in [*TINY, *options])]) == 0
    loaded = model_folder.load_folder(run / "final")
    model, tokenizer = loaded.model, loaded.tokenizer
    assert tokenizer.source.to_dict() == tokenizer.target.to_dict()
    assert model.config.src_vocab_size == model.config.tgt_vocab_size == 300
    capsys.readouterr()
    plot = tmp_path / "attention.png"
    text = "la granda hundo vidas"
    assert main(["translate", str(run), "--text", text, "--plot-attention", str(plot)]) == 0
    assert plot.stat().st_size > 0
    assert main(["evaluate", str(run)]) == 0
    assert "bleu" in capsys.readouterr().out.lower()
