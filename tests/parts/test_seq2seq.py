"""The seq2seq task with the recurrent encoder–decoder: recipe sections, shorthands, a job
built from parts, save/load, translation and sacreBLEU evaluation, and a run whose checkpoint
is translated, evaluated and exported after its data folder is gone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from seqkit.cli import main
from seqkit.data.seq2seq import generated_pairs, load_pairs
from seqkit.errors import UserError
from seqkit.models.seq2seq import ATTENTION_KINDS, RNNSeq2SeqBuilder
from seqkit.parts import compose, evaluation, model_folder, resolve
from seqkit.recipes import RECIPES_DIR
from seqkit.trainer.translation import (
    TranslationTask,
    attention_labels,
    decoding_defaults,
    translate_batch,
    translate_texts,
)

pytestmark = pytest.mark.usefixtures("one_thread")

GENERATED = RECIPES_DIR / "seq2seq" / "generated-attention.yaml"
TINY = [
    "model.embedding_dim=8",
    "model.hidden_size=8",
    "data.generated_pairs=60",
    "data.val_fraction=0.2",
]
TINY_RUN = [
    *TINY,
    "trainer.max_steps=3",
    "trainer.batch_size=8",
    "trainer.eval_every=3",
    "trainer.save_every=3",
    "trainer.progress_bar=false",
    "trainer.report_to=[]",
]


def tiny_recipe(*overrides: str):
    return resolve.load_recipe(GENERATED, [*TINY, *overrides])


def test_every_shipped_seq2seq_recipe_validates():
    paths = sorted((RECIPES_DIR / "seq2seq").glob("*.yaml"))
    assert {p.stem for p in paths} >= {
        "multi30k-gru", "multi30k-bahdanau", "multi30k-luong", "multi30k-luong-dot",
        "generated-attention",
    }  # fmt: skip
    kinds = set()
    for path in paths:
        recipe = resolve.load_recipe(path)
        assert recipe.task == "seq2seq" and recipe.model["architecture"] == "rnn-seq2seq"
        assert recipe.data.module == "sentence-pairs"
        parts = resolve.resolve(recipe)
        assert isinstance(parts.builder, RNNSeq2SeqBuilder)
        assert parts.task_class is TranslationTask
        kinds.add(parts.builder.attention)
    assert kinds == set(ATTENTION_KINDS)  # a recipe for every seq2seq variant


def test_the_old_task_names_are_shorthands(tmp_path):
    """Recipes (and old runs' recipe.yaml) that say task: seq2seq or task: transformer load."""
    for task, architecture in (("seq2seq", "rnn-seq2seq"), ("transformer", "transformer")):
        path = tmp_path / f"{task}.yaml"
        path.write_text(f"task: {task}\nmodel: {{beam_size: 2}}\ndata: {{embedded: generated}}\n")
        recipe = resolve.load_recipe(path)
        assert recipe.task == "seq2seq" and recipe.model["architecture"] == architecture
        assert resolve.resolve(recipe).builder.beam_size == 2
    path = tmp_path / "conflict.yaml"
    path.write_text("task: seq2seq\nmodel: {architecture: gpt}\n")  # written out: no shorthand
    with pytest.raises(UserError, match="cannot be trained for task seq2seq"):
        resolve.resolve(resolve.load_recipe(path))


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
        resolve.resolve(recipe)


def test_bad_data_values():
    with pytest.raises(UserError, match=r"data\.min_freq"):
        tiny_recipe("data.min_freq=0")
    recipe = tiny_recipe("data.embedded=pydoc-topics")
    with pytest.raises(UserError, match=r"needs data\.path"):
        load_pairs(recipe.data)
    recipe = tiny_recipe("data.path=/nonexistent/multi30k")
    with pytest.raises(UserError, match="not a folder"):
        load_pairs(recipe.data)


def test_build_save_load_translate_and_evaluate(tmp_path, capsys):
    recipe = tiny_recipe()
    job = compose.build_job(recipe, tmp_path)
    assert len(job.train_data) == 48 and len(job.eval_data) == 12
    assert job.train_lengths is not None and len(job.train_lengths) == 48  # length buckets
    batch = job.collate_fn([job.train_data[i] for i in range(4)])
    loss = job.task.training_step(job.task.models, batch, "model").detach()
    assert torch.isfinite(loss)
    assert "reference:" in job.sample()

    folder = tmp_path / "final"
    job.save_final(folder, {"eval/loss": loss.item()}, tmp_path)
    loaded = model_folder.load_folder(folder)
    assert loaded.task_name == "seq2seq"
    model, tokenizer = loaded.model, loaded.tokenizer
    assert decoding_defaults(folder) == {"beam_size": 3, "length_penalty": 1.0}
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: translation" in card
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("PATH", str(folder))
    namespace: dict = {}
    exec(code, namespace)  # the card's own loading and translating code runs
    assert type(namespace["model"]) is type(loaded.model)
    sentences = [s for s, _ in load_pairs(recipe.data)[1]][:3]
    greedy = translate_texts(model, tokenizer, sentences, beam_size=1, batch_size=2)
    assert len(greedy) == 3 and all(isinstance(t, str) for t in greedy)
    translations, output, source_ids, counts = translate_batch(
        model, tokenizer, ["la kato granda la fiso xyz vidas ."], beam_size=2
    )
    assert counts == {"unknown": 1, "truncated": 0}
    source_words, target_words = attention_labels(
        tokenizer, source_ids[0].tolist(), output.sequences[0].tolist()
    )
    assert source_words[:3] == ["la", "kato", "granda"] and "<unk>" in source_words
    assert output.attentions.shape[-1] == len(source_words)
    assert len(target_words) == int(output.lengths[0])  # words + <eos> when it ended
    assert translations[0] == tokenizer.target.decode(output.sequences[0].tolist())

    source, reference = tmp_path / "src.txt", tmp_path / "ref.txt"
    source.write_text("la kato vidas .\nla hundo amas .\n", encoding="utf-8")
    reference.write_text("the cat sees .\nthe dog loves .\n", encoding="utf-8")
    options = SimpleNamespace(model=str(folder), beam_size=2, batch_size=None)
    capsys.readouterr()
    metrics = evaluation.evaluate(loaded, (str(source), str(reference)), None, options)
    assert set(metrics) >= {"eval/loss", "eval/bleu", "eval/chrf", "eval/bleu_lowercase"}
    assert 0 <= metrics["eval/bleu"] <= 100 and metrics["eval/sentences"] == 2
    assert metrics["eval/beam_size"] == 2
    printed = capsys.readouterr().out
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in printed
    assert "chrF2" in printed
    # The saved beam width when the command sets none.
    options = SimpleNamespace(model=str(folder), beam_size=None, batch_size=None)
    assert (
        evaluation.evaluate(loaded, (str(source), str(reference)), None, options)["eval/beam_size"]
        == 3
    )

    with pytest.raises(UserError, match="--data FILE"):
        evaluation.evaluate(loaded, None, None, options)  # no run: no validation data
    with pytest.raises(UserError, match="beam-size must be at least 1"):
        translate_batch(model, tokenizer, ["la kato"], beam_size=0)


def _parallel_folder(folder: Path) -> None:
    folder.mkdir()
    pairs = generated_pairs(60, seed=0)
    for split, chosen in (("train", pairs[:50]), ("val", pairs[50:])):
        for side, lang in ((0, "eo"), (1, "en")):
            text = "".join(pair[side] + "\n" for pair in chosen)
            (folder / f"{split}.{lang}").write_text(text, encoding="utf-8")


def test_a_checkpoint_translates_evaluates_and_exports_without_its_data(tmp_path, capsys):
    data, run = tmp_path / "corpus", tmp_path / "run"
    _parallel_folder(data)
    overrides = [*TINY_RUN, "data.embedded=null", f"data.path={data}"]
    argv = ["train", str(GENERATED), "--output-dir", str(run)]
    assert main([*argv, *(f"--set={o}" for o in overrides)]) == 0
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text((data / "val.eo").read_text().split("\n")[0] + "\tthe cat .\n")
    shutil.rmtree(data)  # the data is gone: the run's model/ has config, vocabularies, beams
    checkpoint = run / "checkpoints" / "step-3"
    capsys.readouterr()

    assert main(["translate", str(checkpoint), "--text", "la kato vidas ."]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["evaluate", str(checkpoint), "--data", str(pairs)]) == 0
    out = capsys.readouterr().out
    assert "eval/bleu:" in out and "eval/beam_size: 3" in out and "eval/loss:" in out
    assert main(["evaluate", str(checkpoint)]) == 2  # its validation pairs went with the data
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.path" in err[0], err
    exported = tmp_path / "exported"
    assert main(["export", str(checkpoint), str(exported), "--format", "native"]) == 0
    loaded = model_folder.load_folder(exported)
    from_checkpoint = model_folder.load_checkpoint(checkpoint)
    for name, value in from_checkpoint.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[name]), name
    assert decoding_defaults(exported)["beam_size"] == 3


@pytest.mark.slow
def test_bahdanau_learns_the_reordering_of_the_generated_language(tmp_path):
    """A few minutes of CPU: the attention model translates held-out toy sentences."""
    import sacrebleu

    from seqkit.trainer import Trainer

    recipe = resolve.load_recipe(
        GENERATED,
        ["trainer.progress_bar=false", "trainer.report_to=[]"],
    )
    job = compose.build_job(recipe, tmp_path)
    trainer = Trainer(
        job.task, recipe.trainer, output_dir=tmp_path, train_data=job.train_data,
        eval_data=job.eval_data, collate_fn=job.collate_fn, train_lengths=job.train_lengths,
    )  # fmt: skip
    trainer.train()
    job.save_final(tmp_path / "final", {}, tmp_path)
    loaded = model_folder.load_folder(tmp_path / "final")
    _, val = load_pairs(recipe.data)
    hypotheses = translate_texts(
        loaded.model, loaded.tokenizer, [s for s, _ in val[:100]], beam_size=3
    )
    bleu = sacrebleu.corpus_bleu(hypotheses, [[t for _, t in val[:100]]]).score
    assert bleu > 60, bleu


def test_init_from_starts_from_a_trained_translator_and_refuses_another_size(tmp_path):
    job = compose.build_job(tiny_recipe(), tmp_path / "first")
    job.save_final(tmp_path / "final", {}, tmp_path)
    tuned = compose.build_job(tiny_recipe(f"model.init_from={tmp_path / 'final'}"), tmp_path)
    for name, value in job.task.model.state_dict().items():
        assert torch.equal(value, tuned.task.model.state_dict()[name]), name
    with pytest.raises(UserError, match=r"model\.embedding_dim 16 vs 8"):
        compose.build_job(
            tiny_recipe(f"model.init_from={tmp_path / 'final'}", "model.embedding_dim=16"),
            tmp_path,
        )
