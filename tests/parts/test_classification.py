"""Text classification composed from parts (``task: classification``): the bag-of-words,
recurrent and (in test_masked_lm.py) BERT classifiers; the one labelled-text reader; the
metrics of ``seqkit evaluate`` (also on ``--data FILE``, equal to scikit-learn's on the same
predictions); a checkpoint evaluated and exported after its training file is gone; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from seqkit.cli import main
from seqkit.data.bow import collate_bags
from seqkit.data.labelled import (
    load_labelled,
    prose_or_code_lines,
    python_docstrings,
    split_labelled,
)
from seqkit.errors import UserError
from seqkit.parts.compose import build_job
from seqkit.parts.model_folder import open_trained
from seqkit.parts.resolve import load_recipe
from seqkit.recipes import RECIPES_DIR
from seqkit.trainer.tasks import ClassificationTask
from tests.parts.labelled_stand_in import stand_in_overrides, write_labelled

BOW = RECIPES_DIR / "bow" / "python-docstrings-topics.yaml"
RNN = RECIPES_DIR / "rnn" / "pydoc-prose-or-code-classifier.yaml"
SENTIMENT_RECIPES = sorted(
    p.relative_to(RECIPES_DIR)
    for pattern in ("bow/*.yaml", "rnn/*classifier.yaml")
    for p in RECIPES_DIR.glob(pattern)
    if p.stem.startswith(("sst2-", "chnsenticorp-"))
)

pytestmark = pytest.mark.usefixtures("one_thread")
TRAINER = ["trainer.max_steps=4", "trainer.eval_every=2", "trainer.save_every=2",
           "trainer.warmup_steps=1", "trainer.progress_bar=false", "trainer.report_to=[]",
           "trainer.batch_size=8"]  # fmt: skip
SMALL = {
    "bow": ["data.max_features=500", "data.min_df=1"],
    "rnn": ["model.embedding_size=8", "model.hidden_size=8", "model.num_layers=1"],
}


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def tiny(recipe) -> list[str]:
    kind = "bow" if "bow/" in str(recipe) else "rnn"
    return sets(*TRAINER, *SMALL[kind])


def assert_user_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------- bag of words


def test_bow_recipe_trains_evaluates_and_classifies(tmp_path, capsys):
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "train", str(BOW), *tiny(BOW),
         "--set", "model.classifier=mlp", "--output-dir", str(run)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "eval/macro_f1" in result.stdout
    for name in ("config.json", "model.safetensors", "vectorizer.json", "README.md"):
        assert (run / "final" / name).is_file(), name
    assert (run / "model" / "vectorizer.json").is_file()  # the run stands alone from step 0
    assert main(["evaluate", str(run)]) == 0
    out = capsys.readouterr().out
    assert "eval/accuracy: " in out and "eval/macro_f1: " in out
    assert main(["generate", str(run), "--prompt", "Return the square root of x."]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.split("\t")[0] in python_docstrings().label_names


def test_embedded_corpus_is_deterministic_and_balanced_enough():
    data = python_docstrings()
    assert len(data) > 1000 and len(set(data.texts)) == len(data)
    counts = np.bincount(data.labels, minlength=len(data.label_names))
    assert counts.min() >= 30  # every area has real support
    assert python_docstrings().texts == data.texts


class Echo(torch.nn.Module):
    """A "model" whose batch carries its logits."""

    def forward(self, labels, logits):
        return SimpleNamespace(logits=logits, loss=torch.tensor(0.5))


def test_streamed_macro_f1_equals_scikit_learn():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (50,))
    predicted = torch.where(torch.rand(50) < 0.6, labels, torch.randint(0, 4, (50,)))
    predicted[predicted == 3] = 2  # class 3 is never predicted
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
    expected = sk.f1_score(labels, predicted, labels=range(5), average="macro", zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(expected)
    assert metrics["accuracy"] == pytest.approx(float((labels == predicted).float().mean()))
    assert not any(key.startswith("confusion_") for key in metrics)


def test_without_num_labels_classification_reports_loss_and_accuracy_only():
    task = ClassificationTask(Echo())
    labels = torch.tensor([0, 1, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 2]), 3).float()
    step = task.evaluation_step(task.models, {"labels": labels, "logits": logits})
    assert set(step) == {"loss", "accuracy"}
    assert float(step["accuracy"][0]) == 3 and step["accuracy"][1] == 4
    assert task.summarize({"loss": 0.5, "accuracy": 0.75}) == {"loss": 0.5, "accuracy": 0.75}


def test_labelled_csv_file_with_declared_classes(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f'"great fun film number {i}",pos' for i in range(10)]
    rows += [f'"dull boring film number {i}",neg' for i in range(10)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe = load_recipe(
        BOW, [*TRAINER, f"data.path={path}", "data.labels=[neg, pos]", "data.min_df=1"]
    )
    job = build_job(recipe, tmp_path / "run")
    assert job.summary["classes"] == "neg, pos"
    assert job.task.num_labels == 2
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


def test_unsegmented_chinese_gets_a_note(tmp_path, capsys):
    recipe = RECIPES_DIR / "bow" / "chnsenticorp-tfidf.yaml"
    overrides = stand_in_overrides(recipe, tmp_path)
    loaded = load_recipe(
        recipe, [*TRAINER, *overrides[1::2], "data.segmenter=none", "data.min_df=1"]
    )
    build_job(loaded, tmp_path / "run")
    assert "data.segmenter: none does not cut into words" in capsys.readouterr().err


# ----------------------------------------------------------------------------- every recipe


@pytest.mark.parametrize("recipe", SENTIMENT_RECIPES, ids=str)
def test_sentiment_recipes_train_and_evaluate_on_stand_in_data(recipe, tmp_path, capsys):
    assert len(SENTIMENT_RECIPES) >= 5
    run = tmp_path / "run"
    overrides = stand_in_overrides(RECIPES_DIR / recipe, tmp_path)
    assert overrides  # the recipe names the shared data, which the test replaces
    args = [*tiny(recipe), *overrides, "--output-dir", str(run)]
    if "lstm" in str(recipe) and "sst2" in str(recipe):
        args += sets("tokenizer.vocab_size=300")
    assert main(["train", str(RECIPES_DIR / recipe), *args]) == 0
    captured = capsys.readouterr()
    assert "eval/macro_f1" in captured.out
    assert "note: " not in captured.err or "truncated" in captured.err  # no CJK warning
    assert main(["evaluate", str(run), "--plots"]) == 0
    out = capsys.readouterr().out
    for name in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "roc_auc"):
        assert f"eval/{name}: " in out, name
    assert "confusion matrix" in out
    assert (run / "plots" / "confusion-matrix.png").is_file()


def test_the_recurrent_classifier_trains_evaluates_and_classifies(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(RNN), *tiny(RNN), "--output-dir", str(run)]) == 0
    assert "eval/accuracy" in capsys.readouterr().out
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["model_type"] == "seqkit-rnn-classifier" and config["pooling"] == "last"
    assert main(["evaluate", str(run)]) == 0
    assert "eval/roc_auc" in capsys.readouterr().out
    assert main(["generate", str(run), "--prompt", "x = [i for i in range(3)]"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in ("code", "prose")


def test_classifier_reads_a_labelled_file(tmp_path, capsys):
    data = tmp_path / "labelled.tsv"
    data.write_text(
        "".join(f"pos\tgood great fine {i}\nneg\tbad awful poor {i}\n" for i in range(20))
    )
    run = tmp_path / "run"
    extra = sets(f"data.path={data}", "model.max_length=12")
    assert main(["train", str(RNN), *tiny(RNN), *extra, "--output-dir", str(run)]) == 0
    captured = capsys.readouterr()
    assert "neg, pos" in captured.err  # the classes, sorted
    assert "40 texts are longer than model.max_length (12 tokens)" in captured.err
    broken = tmp_path / "broken.tsv"
    broken.write_text("pos\tfine\nno tab here\n")
    bad = [*sets(f"data.path={broken}"), "--output-dir", str(tmp_path / "bad")]
    code = main(["train", str(RNN), *tiny(RNN), *bad])
    assert_user_error(code, capsys.readouterr().err, "broken.tsv:2", "LABEL<TAB>TEXT")
    assert not (tmp_path / "bad").exists()


def test_embedded_labelled_set_has_both_classes_without_indentation():
    rows = prose_or_code_lines()
    labels = [label for label, _ in rows]
    assert labels.count("code") > 500 and labels.count("prose") > 500
    assert all(text == text.strip() for _, text in rows)


@pytest.mark.parametrize(
    ("recipe", "overrides", "fragments"),
    [
        (RNN, ["model.pooling=attention"], ("model.pooling",)),
        (RNN, ["data.embedded=nope"], ("nope",)),
        (RNN, ["model.block_size=16"], ("model.block_size applies to task causal-lm only",)),
        (RNN, ["model.tie_weights=true", "model.embedding_size=8"], ("model.tie_weights",)),
        (RNN, ["data.module=bag-of-words"], ("model.architecture recurrent reads token ids",)),
        (RECIPES_DIR / "rnn" / "shakespeare-lstm.yaml", ["model.pooling=max"],
         ("model.pooling applies to task classification only",)),
        (BOW, ["model.classifier=svm"], ("model.classifier must be one of",)),
        (BOW, ["data.weighting=bm25"], ("data.weighting",)),
    ],
)  # fmt: skip
def test_bad_recipe_values(recipe, overrides, fragments, tmp_path, capsys):
    code = main(["train", str(recipe), *sets(*overrides), "--output-dir", str(tmp_path / "r")])
    assert_user_error(code, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "r").exists()


def test_bow_reads_only_bag_of_words_features(tmp_path, capsys):
    recipe = tmp_path / "bow.yaml"
    recipe.write_text("task: classification\nmodel: {architecture: bow}\n"
                      "data: {module: labelled-text}\n")  # fmt: skip
    code = main(["train", str(recipe), "--output-dir", str(tmp_path / "r")])
    assert_user_error(code, capsys.readouterr().err, "set data.module: bag-of-words")
    assert not (tmp_path / "r").exists()


def test_old_task_names_still_load(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text(
        "task: bow-classifier\nmodel: {classifier: mlp}\ndata: {embedded: python-docstrings}\n"
    )
    recipe = load_recipe(old)
    assert recipe.task == "classification" and recipe.model["architecture"] == "bow"
    assert recipe.data.module == "bag-of-words" and recipe.data.min_df == 2
    old.write_text("task: rnn-classifier\nmodel: {cell: gru, pooling: max}\n")
    assert load_recipe(old).model == {"architecture": "recurrent", "cell": "gru", "pooling": "max"}
    old.write_text("task: bow-classifier\ndata: {module: labelled-text}\n")
    with pytest.raises(UserError, match=r"task bow-classifier trains data\.module bag-of-words"):
        load_recipe(old)


def test_recurrent_classifier_fine_tunes_and_refuses_what_does_not_fit(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(RNN), *tiny(RNN), "--output-dir", str(run)]) == 0
    capsys.readouterr()
    final = str(run / "final")
    common = [*tiny(RNN), *sets(f"model.init_from={final}")]
    assert main(["train", str(RNN), *common, "--output-dir", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    three = tmp_path / "three.tsv"
    three.write_text("".join(f"{label}\ttext {i}\n" for i, label in enumerate("abc" * 10)))
    cases = [
        (["model.pooling=max"], ("model.pooling 'max' vs 'last'",)),
        (["model.bidirectional=false"], ("model.bidirectional False vs True",)),
        ([f"data.path={three}"], ("classifies into 2 labels, the data has 3 (a, b, c)",)),
    ]
    for extra, fragments in cases:
        code = main(
            ["train", str(RNN), *common, *sets(*extra), "--output-dir", str(tmp_path / "x")]
        )
        assert_user_error(code, capsys.readouterr().err, *fragments)


# ----------------------------------------------------------------------------- evaluate --data


def _independent_probabilities(model_dir, texts: list[str]) -> np.ndarray:
    """Class probabilities computed here, from the folder's model and tokenizer, without the
    data modules' code."""
    loaded = open_trained(model_dir)
    model, tokenizer = loaded.model, loaded.tokenizer
    with torch.no_grad():
        if hasattr(tokenizer, "transform"):  # a bag-of-words vectorizer
            features = tokenizer.transform(texts)
            rows = []
            for i in range(len(texts)):
                start, end = features.indptr[i], features.indptr[i + 1]
                rows.append(
                    (features.indices[start:end], features.data[start:end], torch.tensor(0))
                )
            batch = collate_bags(rows)
            batch.pop("labels")
            logits = model(**batch).logits
        else:
            logits = torch.cat([model(input_ids=torch.tensor([tokenizer.encode(t)])).logits
                                for t in texts])  # fmt: skip
    return logits.softmax(dim=-1).numpy()


@pytest.mark.parametrize("recipe", [BOW, RNN], ids=["bow", "recurrent"])
def test_evaluate_data_file_equals_scikit_learn_on_the_same_predictions(recipe, tmp_path, capsys):
    train_file, val_file, score_file = (tmp_path / f"{n}.tsv" for n in ("train", "val", "score"))
    write_labelled(train_file, "text", "label", 40)
    write_labelled(val_file, "text", "label", 12)
    score_file.write_text("label\ttext\n" + "".join(
        f"{i % 2}\t{'great lovely' if i % 3 else 'dull awful'} fine {i}\n" for i in range(25)
    ))  # fmt: skip
    run = tmp_path / "run"
    data = sets(f"data.path={train_file}", f"data.val_path={val_file}", "data.embedded=null")
    assert main(["train", str(recipe), *tiny(recipe), *data, "--output-dir", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "--data", str(score_file), "--json", str(out)]) == 0
    measured = json.loads(out.read_text())
    truth = load_labelled(path=str(score_file), labels=["0", "1"])
    probabilities = _independent_probabilities(run, truth.texts)
    predicted = probabilities.argmax(axis=1)
    y = truth.labels
    assert measured["eval/examples"] == 25
    assert measured["eval/accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    for name in ("f1", "precision", "recall"):
        score = getattr(sk, f"{name}_score")
        expected = score(y, predicted, average="macro", labels=[0, 1], zero_division=0)
        assert measured[f"eval/macro_{name}"] == pytest.approx(expected), name
    assert measured["eval/roc_auc"] == pytest.approx(sk.roc_auc_score(y, probabilities[:, 1]))


@pytest.mark.parametrize("recipe", [BOW, RNN], ids=["bow", "recurrent"])
def test_a_checkpoint_evaluates_and_exports_after_its_training_file_is_gone(
    recipe, tmp_path, capsys
):
    train_file, score_file = tmp_path / "train.tsv", tmp_path / "score.tsv"
    write_labelled(train_file, "text", "label", 40)
    write_labelled(score_file, "text", "label", 10)
    run = tmp_path / "run"
    data = sets(f"data.path={train_file}", "data.embedded=null", "data.val_fraction=0.25")
    assert main(["train", str(recipe), *tiny(recipe), *data, "--output-dir", str(run)]) == 0
    capsys.readouterr()
    train_file.unlink()
    checkpoint = run / "checkpoints" / "step-2"
    assert main(["evaluate", str(checkpoint), "--data", str(score_file)]) == 0
    assert "eval/examples: 10" in capsys.readouterr().out
    assert main(["export", str(checkpoint), str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert main(["generate", str(tmp_path / "out"), "--prompt", "great fun"]) == 0
    capsys.readouterr()
    # Without --data the validation split needs the training file: one line names it.
    code = main(["evaluate", str(checkpoint)])
    assert_user_error(code, capsys.readouterr().err, "train.tsv")
