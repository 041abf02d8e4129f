"""The BERT family end to end, in process: MLM pretraining, fine-tuning a classifier from it,
evaluate (masked accuracy; accuracy and F1), and the bad-input contract for init_from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqkit.cli import main
from seqkit.families import bert as family
from seqkit.parts.compose import load_recipe
from seqkit.recipes import RECIPES_DIR, parse_section

MLM = str(RECIPES_DIR / "bert" / "pydoc-mlm.yaml")
CLASSIFIER = str(RECIPES_DIR / "bert" / "pydoc-prose-or-code-classifier.yaml")
TINY = [
    "--set",
    "trainer.max_steps=3",
    "--set",
    "trainer.batch_size=4",
    "--set",
    "trainer.eval_every=0",
    "--set",
    "trainer.save_every=0",
    "--set",
    "trainer.eval_batches=2",
    "--set",
    "trainer.warmup_steps=1",
    "--set",
    "trainer.progress_bar=false",
    "--set",
    "trainer.report_to=[]",
    "--set",
    "data.max_length=16",
]
SIZES = [
    "--set",
    "model.hidden_size=16",
    "--set",
    "model.num_hidden_layers=1",
    "--set",
    "model.num_attention_heads=2",
    "--set",
    "model.intermediate_size=32",
    "--set",
    "tokenizer.vocab_size=300",
]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    from seqkit.data import load_embedded

    root = tmp_path_factory.mktemp("bert")
    corpus = root / "corpus.txt"  # a slice of the embedded default keeps the test fast
    corpus.write_text(load_embedded("pydoc-topics")[:30000], encoding="utf-8")
    run = root / "mlm"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(
            ["train", MLM, *TINY, *SIZES, "--set", f"data.path={corpus}", "--output-dir", str(run)]
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return run


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), lines
    return lines[0]


def test_recipes_validate():
    for path in (MLM, CLASSIFIER):
        recipe = load_recipe(Path(path))
        parse_section(family.ModelSection, recipe.model, "model")
    assert recipe.data.train_examples == 500


def test_pretrain_then_fine_tune_and_evaluate(pretrained, tmp_path, capsys):
    final = pretrained / "final"
    config = json.loads((final / "config.json").read_text())
    assert config["model_type"] == "seqkit-bert" and config["hidden_size"] == 16
    assert main(["evaluate", str(final)]) == 0
    assert "masked_accuracy:" in capsys.readouterr().out

    run = tmp_path / "classifier"
    code = main(
        [
            "train",
            CLASSIFIER,
            *TINY,
            "--set",
            "data.train_examples=40",
            "--set",
            f"model.init_from={final}",
            "--output-dir",
            str(run),
        ]
    )
    assert code == 0
    assert main(["evaluate", str(run / "final")]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "f1:" in out

    # The encoder really came from the pretrained folder: an untrained classifier built from it
    # holds the MLM's word embeddings.
    recipe = load_recipe(
        Path(CLASSIFIER),
        ["data.max_length=16", f"model.init_from={final}"],
    )
    job = family.build(recipe, parse_section(family.ModelSection, recipe.model, "model"))
    mlm, _ = family.load_pretrained(final)
    torch.testing.assert_close(
        job.task.model.bert.embeddings.word_embeddings.weight,
        mlm.bert.embeddings.word_embeddings.weight,
    )


def test_bad_init_from_and_label_count(pretrained, tmp_path, capsys):
    final = str(pretrained / "final")
    # Another size: the parameters that do not fit are named, nothing is loaded.
    code = main(
        [
            "train",
            CLASSIFIER,
            *TINY,
            "--set",
            "model.intermediate_size=48",
            "--set",
            f"model.init_from={final}",
            "--output-dir",
            str(tmp_path / "a"),
        ]
    )
    assert code == 2
    line = _error_line(capsys)
    assert "do not fit" in line and "bert.encoder.layer.0.intermediate.weight" in line
    # Another family.
    other = tmp_path / "gpt"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "seqkit-gpt"}))
    code = main(
        [
            "train",
            CLASSIFIER,
            *TINY,
            "--set",
            f"model.init_from={other}",
            "--output-dir",
            str(tmp_path / "b"),
        ]
    )
    assert code == 2
    assert "not a seqkit BERT" in _error_line(capsys)
    # A classifier folder with 2 labels fine-tuned on data with 3.
    run = tmp_path / "two"
    code = main(
        [
            "train",
            CLASSIFIER,
            *TINY,
            "--set",
            "data.train_examples=20",
            "--set",
            f"model.init_from={final}",
            "--output-dir",
            str(run),
        ]
    )
    assert code == 0
    capsys.readouterr()
    tsv = tmp_path / "three.tsv"
    tsv.write_text(
        "".join(f"{label}\tsome text number {i}\n" for i, label in enumerate(["a", "b", "c"] * 10))
    )
    code = main(
        [
            "train",
            CLASSIFIER,
            *TINY,
            "--set",
            f"data.path={tsv}",
            "--set",
            f"model.init_from={run / 'final'}",
            "--output-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 2
    assert "classifies into 2 labels, the data has 3" in _error_line(capsys)
