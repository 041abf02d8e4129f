"""The bow-classifier family: recipe smoke test, labelled files, evaluation metrics, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from seqkit.cli import main
from seqkit.data.classification import load_labelled, python_docstrings, split_labelled
from seqkit.errors import UserError
from seqkit.families.bow import ModelSection, build
from seqkit.parts.compose import load_recipe
from seqkit.recipes import RECIPES_DIR, parse_section
from seqkit.trainer.tasks import ClassificationTask
from tests.families.labelled_stand_in import stand_in_overrides

RECIPE = RECIPES_DIR / "bow" / "python-docstrings-topics.yaml"
SENTIMENT_RECIPES = sorted(
    p.relative_to(RECIPES_DIR)
    for p in RECIPES_DIR.glob("bow/*.yaml")
    if p.stem.startswith(("sst2-", "chnsenticorp-"))
)
TINY = ["--set", "trainer.max_steps=6", "--set", "trainer.eval_every=3",
        "--set", "trainer.save_every=3", "--set", "trainer.warmup_steps=1",
        "--set", "trainer.progress_bar=false", "--set", "data.max_features=500"]  # fmt: skip


def test_recipe_trains_evaluates_and_classifies(tmp_path, capsys):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "train", str(RECIPE), *TINY, "--set",
         "model.classifier=mlp", "--output-dir", str(run)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval/macro_f1" in result.stdout
    for name in ("config.json", "model.safetensors", "vectorizer.json", "README.md"):
        assert (run / "final" / name).is_file(), name
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "accuracy: " in out and "macro_f1: " in out
    assert main(["generate", str(run), "--prompt", "Return the square root of x."]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.split("\t")[0] in python_docstrings().label_names


def test_embedded_corpus_is_deterministic_and_balanced_enough():
    data = python_docstrings()
    assert len(data) > 1000 and len(set(data.texts)) == len(data)
    counts = np.bincount(data.labels, minlength=len(data.label_names))
    assert counts.min() >= 30  # every area has real support
    assert python_docstrings().texts == data.texts


def test_streamed_macro_f1_equals_scikit_learn():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (50,))
    predicted = torch.where(torch.rand(50) < 0.6, labels, torch.randint(0, 4, (50,)))
    predicted[predicted == 3] = 2  # class 3 is never predicted

    class Echo(torch.nn.Module):  # a "model" whose batch carries its logits
        def forward(self, labels, logits):
            return SimpleNamespace(logits=logits, loss=torch.tensor(0.0))

    task = ClassificationTask(Echo(), num_labels=5)  # class 4: absent everywhere
    totals: dict[str, list[float]] = {}
    for chunk in range(0, 50, 16):  # streamed in uneven batches, as the Trainer does
        y, p = labels[chunk : chunk + 16], predicted[chunk : chunk + 16]
        step = task.evaluation_step(
            task.models, {"labels": y, "logits": torch.nn.functional.one_hot(p, 5)}
        )
        for key, (value, n) in step.items():
            total = totals.setdefault(key, [0.0, 0.0])
            total[0] += float(value)
            total[1] += n
    metrics = task.summarize({k: s / n for k, (s, n) in totals.items()})
    # Every class of the model counts, the absent class 4 with F1 0 (seqkit.metrics' choice).
    expected = f1_score(labels, predicted, labels=range(5), average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(expected)
    assert metrics["accuracy"] == pytest.approx(float((labels == predicted).float().mean()))
    assert not any(key.startswith("confusion_") for key in metrics)


def test_without_num_labels_classification_reports_loss_and_accuracy_only():
    # The recurrent and BERT classifiers use the shared task this way: their metrics unchanged.
    class Echo(torch.nn.Module):
        def forward(self, labels, logits):
            return SimpleNamespace(logits=logits, loss=torch.tensor(0.5))

    task = ClassificationTask(Echo())
    labels = torch.tensor([0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 2]), 3).float()
    step = task.evaluation_step(task.models, {"labels": labels, "logits": logits})
    assert set(step) == {"loss", "accuracy"}
    assert float(step["accuracy"][0]) == 3 and step["accuracy"][1] == 4
    assert task.summarize({"loss": 0.5, "accuracy": 0.75}) == {"loss": 0.5, "accuracy": 0.75}


def recipe_with(tmp_path, *overrides: str):
    recipe = load_recipe(RECIPE, [*TINY[1::2], *overrides])
    return recipe, parse_section(ModelSection, recipe.model, "model")


def test_labelled_csv_file_with_declared_classes(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f'"great fun film number {i}",pos' for i in range(10)]
    rows += [f'"dull boring film number {i}",neg' for i in range(10)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe, section = recipe_with(
        tmp_path, f"data.path={path}", "data.labels=[neg, pos]", "data.min_df=1"
    )
    job = build(recipe, section)
    assert job.summary["classes"] == "neg, pos"
    batch = job.collate_fn([job.train_data[i] for i in range(4)])
    assert batch["feature_ids"].shape == batch["feature_values"].shape
    assert job.task.training_step(job.task.models, batch, "model").item() > 0
    data = load_labelled(path=str(path), labels=["neg", "pos"])
    train, val = split_labelled(data, 0.2, seed=0)
    assert len(train) == 16 and len(val) == 4


def test_label_outside_the_declared_classes(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a b", "label": "pos"}\n{"text": "c d", "label": "meh"}\n')
    with pytest.raises(UserError, match="row 1 has label 'meh'"):
        load_labelled(path=str(path), labels=["neg", "pos"])


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"text,label\ncaf\xe9,pos\n", "not UTF-8 text: byte 0xe9 at offset 14"), (b"", "is empty")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_labelled(path=str(path))


def test_bad_recipe_values(tmp_path):
    with pytest.raises(UserError, match=r"model\.classifier must be one of"):
        recipe_with(tmp_path, "model.classifier=svm")  # refused as the recipe is read
    with pytest.raises(UserError, match="unknown embedded labelled corpus"):
        load_labelled(embedded="nope")


@pytest.mark.parametrize("recipe", SENTIMENT_RECIPES, ids=str)
def test_sentiment_recipes_train_and_evaluate_on_stand_in_data(recipe, tmp_path, capsys):
    assert len(SENTIMENT_RECIPES) >= 3
    run = tmp_path / "run"
    overrides = stand_in_overrides(RECIPES_DIR / recipe, tmp_path)
    assert overrides  # the recipe names the shared data, which the test replaces
    args = [*TINY, *overrides, "--set", "data.min_df=1", "--set", "trainer.batch_size=8"]
    args += ["--output-dir", str(run)]
    assert main(["train", str(RECIPES_DIR / recipe), *args]) == 0
    captured = capsys.readouterr()
    assert "eval/macro_f1" in captured.out
    assert "note:" not in captured.err  # Chinese recipes segment, so no CJK warning
    assert main(["evaluate", str(run), "--plots"]) == 0
    out = capsys.readouterr().out
    for name in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "roc_auc"):
        assert f"{name}: " in out, name
    assert "confusion matrix" in out
    assert (run / "plots" / "confusion-matrix.png").is_file()


def test_unsegmented_chinese_gets_a_note(tmp_path, capsys):
    recipe = RECIPES_DIR / "bow" / "chnsenticorp-tfidf.yaml"
    overrides = stand_in_overrides(recipe, tmp_path)
    loaded = load_recipe(
        recipe, [*TINY[1::2], *overrides[1::2], "data.segmenter=none", "data.min_df=1"],
    )  # fmt: skip
    build(loaded, parse_section(ModelSection, loaded.model, "model"))
    assert "data.segmenter: none does not cut into words" in capsys.readouterr().err
