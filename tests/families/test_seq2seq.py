"""The seq2seq family: recipe sections, build, save/load, and sacreBLEU evaluation."""

from __future__ import annotations

import argparse

import pytest
import torch

from seqkit.errors import UserError
from seqkit.families import seq2seq as family
from seqkit.parts.compose import load_recipe
from seqkit.recipes import RECIPES_DIR, parse_section

GENERATED = RECIPES_DIR / "seq2seq" / "generated-attention.yaml"
TINY = [
    "model.embedding_dim=8",
    "model.hidden_size=8",
    "data.generated_pairs=60",
    "data.val_fraction=0.2",
]


def tiny_recipe(*overrides: str):
    return load_recipe(GENERATED, [*TINY, *overrides])


def test_every_shipped_seq2seq_recipe_validates():
    paths = sorted((RECIPES_DIR / "seq2seq").glob("*.yaml"))
    assert {p.stem for p in paths} >= {
        "multi30k-gru", "multi30k-bahdanau", "multi30k-luong", "multi30k-luong-dot",
        "generated-attention",
    }  # fmt: skip
    kinds = set()
    for path in paths:
        recipe = load_recipe(path)
        assert recipe.task == "seq2seq"
        kinds.add(parse_section(family.ModelSection, recipe.model, "model").attention)
    assert kinds == set(family.ATTENTION_KINDS)  # a recipe for every seq2seq variant


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.attention=cosine", "model.attention must be one of"),
        ("model.beam_size=0", "model.beam_size must be at least 1"),
        ("model.hidden_size=7", "must be even"),
        ("model.teacher_forcing_ratio=1.5", "teacher_forcing_ratio"),
    ],
)
def test_bad_model_values(override, message):
    recipe = tiny_recipe(override)
    with pytest.raises(UserError, match=message):
        parse_section(family.ModelSection, recipe.model, "model")


def test_bad_data_values():
    with pytest.raises(UserError, match=r"data\.min_freq"):
        tiny_recipe("data.min_freq=0")
    recipe = tiny_recipe("data.embedded=pydoc-topics")
    with pytest.raises(UserError, match=r"needs data\.path"):
        family.load_pairs(recipe.data)
    recipe = tiny_recipe("data.path=/nonexistent/multi30k")
    with pytest.raises(UserError, match="not a folder"):
        family.load_pairs(recipe.data)


def test_build_save_load_translate_and_evaluate(tmp_path, capsys):
    recipe = tiny_recipe()
    section = parse_section(family.ModelSection, recipe.model, "model")
    job = family.build(recipe, section)
    assert len(job.train_data) == 48 and len(job.eval_data) == 12
    batch = job.collate_fn([job.train_data[i] for i in range(4)])
    loss = job.task.training_step(job.task.models, batch, "model").detach()
    assert torch.isfinite(loss)
    assert "reference:" in job.sample()

    folder = tmp_path / "final"
    job.save_final(folder, {"eval/loss": loss.item()}, tmp_path)
    model, tokenizer = family.load_pretrained(folder)
    assert family.decoding_defaults(folder) == {"beam_size": 3, "length_penalty": 1.0}
    sentences = [s for s, _ in family.load_pairs(recipe.data)[1]][:3]
    greedy = family.translate_texts(model, tokenizer, sentences, beam_size=1, batch_size=2)
    assert len(greedy) == 3 and all(isinstance(t, str) for t in greedy)
    translations, output, source_ids, counts = family.translate_batch(
        model, tokenizer, ["la kato granda la fiso xyz vidas ."], beam_size=2
    )
    assert counts == {"unknown": 1, "truncated": 0}
    source_words, target_words = family.attention_labels(
        tokenizer, source_ids[0].tolist(), output.sequences[0].tolist()
    )
    assert source_words[:3] == ["la", "kato", "granda"] and "<unk>" in source_words
    assert output.attentions.shape[-1] == len(source_words)
    assert len(target_words) == int(output.lengths[0])  # words + <eos> when it ended
    assert translations[0] == tokenizer.target.decode(output.sequences[0].tolist())

    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("la kato vidas .\nla hundo amas .\n", encoding="utf-8")
    reference.write_text("the cat sees .\nthe dog loves .\n", encoding="utf-8")
    args = argparse.Namespace(
        source=str(source), reference=str(reference), beam_size=2, batch_size=None
    )
    metrics = family.evaluate(folder, None, args)
    assert set(metrics) >= {"bleu", "chrf", "bleu_lowercase"}
    assert 0 <= metrics["bleu"] <= 100 and metrics["sentences"] == 2
    printed = capsys.readouterr().out
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in printed
    assert "chrF2" in printed

    with pytest.raises(UserError, match="go together"):
        family.evaluate(folder, None, argparse.Namespace(source=str(source), reference=None))
    with pytest.raises(UserError, match="run directory"):
        family.evaluate(
            folder, None, argparse.Namespace(source=None, reference=None, beam_size=None)
        )
    with pytest.raises(UserError, match="beam-size must be at least 1"):
        family.translate_batch(model, tokenizer, ["la kato"], beam_size=0)


@pytest.mark.slow
def test_bahdanau_learns_the_reordering_of_the_generated_language(tmp_path):
    """A few minutes of CPU: the attention model translates held-out toy sentences."""
    import sacrebleu

    from seqkit.trainer import Trainer

    recipe = load_recipe(
        GENERATED,
        ["trainer.progress_bar=false", "trainer.report_to=[]"],
    )
    job = family.build(recipe, parse_section(family.ModelSection, recipe.model, "model"))
    trainer = Trainer(
        job.task, recipe.trainer, output_dir=tmp_path, train_data=job.train_data,
        eval_data=job.eval_data, collate_fn=job.collate_fn,
    )  # fmt: skip
    trainer.train()
    job.save_final(tmp_path / "final", {}, tmp_path)
    model, tokenizer = family.load_pretrained(tmp_path / "final")
    _, val = family.load_pairs(recipe.data)
    hypotheses = family.translate_texts(model, tokenizer, [s for s, _ in val[:100]], beam_size=3)
    bleu = sacrebleu.corpus_bleu(hypotheses, [[t for _, t in val[:100]]]).score
    assert bleu > 60, bleu
