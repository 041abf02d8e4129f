"""BERT composed from parts, in process: masked-LM pretraining (``task: masked-lm``, the
``masked-text`` data module), fine-tuning a classifier from it (``task: classification``),
evaluate (masked accuracy, also on ``--data FILE``; accuracy and F1), a checkpoint evaluated and
exported after its corpus is gone, and the bad-input contract for init_from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.models.bert import BertBuilder
from seqkit.parts.compose import build_job
from seqkit.parts.model_folder import load_folder
from seqkit.parts.resolve import load_recipe, resolve
from seqkit.recipes import RECIPES_DIR

pytestmark = pytest.mark.usefixtures("one_thread")

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


def test_recipes_validate_and_old_task_names_load(tmp_path):
    for path, task in ((MLM, "masked-lm"), (CLASSIFIER, "classification")):
        recipe = load_recipe(Path(path))
        assert recipe.task == task and isinstance(resolve(recipe).builder, BertBuilder)
    assert recipe.data.train_examples == 500
    old = tmp_path / "old.yaml"
    old.write_text("task: bert-mlm\nmodel: {hidden_size: 16}\ndata: {mlm_probability: 0.2}\n")
    parts = resolve(load_recipe(old))
    assert parts.task_name == "masked-lm" and parts.builder.hidden_size == 16
    assert parts.data.data.mlm_probability == 0.2
    old.write_text("task: bert-classifier\ndata: {train_examples: 5}\n")
    assert resolve(load_recipe(old)).task_name == "classification"


def test_pretrain_then_fine_tune_and_evaluate(pretrained, tmp_path, capsys):
    final = pretrained / "final"
    config = json.loads((final / "config.json").read_text())
    assert config["model_type"] == "seqkit-bert" and config["hidden_size"] == 16
    assert main(["evaluate", str(final)]) == 0
    out = capsys.readouterr().out
    assert "eval/masked_accuracy:" in out and "eval/masked_tokens:" in out
    text = pretrained.parent / "other.txt"
    text.write_text("Return the square root of x. " * 40, encoding="utf-8")
    assert main(["evaluate", str(final), "--data", str(text)]) == 0
    assert "eval/masked_accuracy:" in capsys.readouterr().out
    assert main(["generate", str(final), "--prompt", "x"]) == 2
    assert "does not generate" in _error_line(capsys)

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
    assert "eval/accuracy:" in out and "eval/macro_f1:" in out
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    # A bare copy of the folder (no run around it) still loads as the classifier.
    loaded = load_folder(run / "final")
    assert loaded.task_name == "classification"

    # The encoder really came from the pretrained folder: an untrained classifier built from it
    # holds the MLM's word embeddings.
    recipe = load_recipe(
        Path(CLASSIFIER),
        ["data.max_length=16", f"model.init_from={final}"],
    )
    job = build_job(recipe, tmp_path / "unused")
    mlm = load_folder(final).model
    assert type(mlm).__name__ == "BertForMaskedLM"
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
    assert "holds a 'seqkit-gpt' model, not a seqkit bert one" in _error_line(capsys)
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


def test_an_mlm_checkpoint_evaluates_and_exports_after_its_corpus_is_gone(tmp_path, capsys):
    from seqkit.data import load_embedded

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(load_embedded("pydoc-topics")[:12000], encoding="utf-8")
    held_out = tmp_path / "held-out.txt"
    held_out.write_text(load_embedded("pydoc-topics")[12000:16000], encoding="utf-8")
    run = tmp_path / "mlm"
    args = [*TINY, *SIZES, "--set", "trainer.save_every=2", "--set", f"data.path={corpus}"]
    assert main(["train", MLM, *args, "--output-dir", str(run)]) == 0
    capsys.readouterr()
    corpus.unlink()
    checkpoint = run / "checkpoints" / "step-2"
    assert main(["evaluate", str(checkpoint), "--data", str(held_out)]) == 0
    assert "eval/masked_accuracy:" in capsys.readouterr().out
    assert main(["export", str(checkpoint), str(tmp_path / "out")]) == 0
    assert "BertForMaskedLM" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "bert"


def _training_rows(corpus: Path, *settings: str) -> list[dict]:
    overrides = [f"data.path={corpus}", "data.max_length=16", "tokenizer.kind=char", *settings]
    parts = resolve(load_recipe(Path(MLM), overrides))
    tokenizer = parts.data.tokenizer(None)
    prepared = parts.data.prepare(tokenizer, 16, 128)
    return [prepared.train_data[i] for i in range(len(prepared.train_data))]


def test_static_masking_masks_each_training_example_once_from_the_seed(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 40, encoding="utf-8")
    dynamic = _training_rows(corpus)
    assert "labels" not in dynamic[0]  # masked afresh by the collator in every batch
    static = _training_rows(corpus, "data.masking=static")
    again = _training_rows(corpus, "data.masking=static")
    other_seed = _training_rows(corpus, "data.masking=static", "trainer.seed=1")
    assert len(static) == len(dynamic)
    for row, same in zip(static, again, strict=True):
        assert torch.equal(row["input_ids"], same["input_ids"])
        assert torch.equal(row["labels"], same["labels"])
    assert any(
        not torch.equal(a["labels"], b["labels"]) for a, b in zip(static, other_seed, strict=True)
    )
    chosen = sum(int((row["labels"] != -100).sum()) for row in static)
    assert 0 < chosen < sum(len(row["labels"]) for row in static)
    with pytest.raises(UserError, match=r"data\.masking must be one of"):
        load_recipe(Path(MLM), ["data.masking=sometimes"])


def _prepared(corpus: Path, *settings: str):
    overrides = [f"data.path={corpus}", "data.max_length=16", "tokenizer.kind=char", *settings]
    parts = resolve(load_recipe(Path(MLM), overrides))
    tokenizer = parts.data.tokenizer(None)
    return tokenizer, parts.data.prepare(tokenizer, 16, 128)


def test_line_by_line_makes_one_framed_example_per_line_and_holds_out_the_last_lines(tmp_path):
    lines = [f"line {i} " + "ab" * (i % 11) for i in range(40)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines[:20]) + "\n\n   \n" + "\n".join(lines[20:]) + "\n",
                      encoding="utf-8")  # fmt: skip
    tokenizer, prepared = _prepared(corpus, "data.line_by_line=true", "data.val_fraction=0.1")
    train = [prepared.train_data[i]["input_ids"] for i in range(len(prepared.train_data))]
    val = [prepared.eval_data[i] for i in range(len(prepared.eval_data))]
    assert (len(train), len(val)) == (36, 4)  # blank lines are skipped; the last 4 lines validate
    for ids, line in zip(train, lines, strict=False):
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert tokenizer.decode(ids[1:-1].tolist()) == line[:14]  # cut to max_length 16
    assert max(len(ids) for ids in train) == 16 and min(len(ids) for ids in train) < 16
    for row, line in zip(val, lines[36:], strict=True):  # masked once, originals in labels
        original = torch.where(row["labels"] != -100, row["labels"], row["input_ids"])
        assert tokenizer.decode(original[1:-1].tolist()) == line[:14]
    batch = prepared.collate_fn([prepared.train_data[i] for i in range(4)])
    lengths = [len(ids) for ids in train[:4]]
    assert batch["input_ids"].shape == (4, max(lengths))  # padded per batch, not to max_length
    assert batch["attention_mask"].sum(1).tolist() == lengths

    _, streamed = _prepared(corpus, "data.val_fraction=0.1")
    assert all(len(streamed.train_data[i]["input_ids"]) == 16
               for i in range(len(streamed.train_data)))  # fmt: skip


def test_line_by_line_errors_name_the_setting(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one line\ntwo lines\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"data\.val_fraction=0\.1 of 2 documents holds none"):
        _prepared(corpus, "data.line_by_line=true", "data.val_fraction=0.1")
    with pytest.raises(UserError, match=r"val_split=seeded holds out whole documents: set data\."):
        _prepared(corpus, "data.val_split=seeded")
    with pytest.raises(UserError, match=r"data\.val_split must be one of"):
        _prepared(corpus, "data.line_by_line=true", "data.val_split=random")


def test_seeded_val_split_holds_out_what_the_classifier_validates_on(tmp_path):
    """Pretraining on a classifier's file with its val_fraction and seed never reads the
    documents that classifier validates on, not even to train the tokenizer."""
    import datasets

    # Each review holds a character of its own, to see which ones the tokenizer learned.
    reviews = [f"{chr(0x4E00 + i)} review {i}, with a comma\nand a line break" for i in range(30)]
    table = tmp_path / "reviews.csv"
    datasets.Dataset.from_dict({"review": reviews, "label": [i % 2 for i in range(30)]}).to_csv(
        table
    )
    shared = [f"data.path={table}", "data.text_column=review", "data.val_fraction=0.2",
              "trainer.seed=3"]  # fmt: skip
    seeded = [*shared, "data.line_by_line=true", "data.val_split=seeded"]
    mlm = resolve(load_recipe(Path(MLM), [*seeded, "tokenizer.kind=char"]))
    train_documents, val_documents = mlm.data.documents
    classifier = resolve(load_recipe(Path(CLASSIFIER), [*shared, "data.label_column=label"]))
    train, val, _ = classifier.data.splits()
    assert len(val_documents) == 6
    assert sorted(val_documents) == sorted(val.texts)
    assert sorted(train_documents) == sorted(train.texts)
    tokenizer = mlm.data.tokenizer(None)
    for document in val_documents:
        assert tokenizer.token_to_id(document[0]) is None
    for document in train_documents:
        assert tokenizer.token_to_id(document[0]) is not None
    prepared = mlm.data.prepare(tokenizer, 64, 128)
    assert (len(prepared.train_data), len(prepared.eval_data)) == (24, 6)
    other_seed = resolve(load_recipe(Path(MLM), [*seeded, "trainer.seed=4"]))
    assert sorted(other_seed.data.documents[1]) != sorted(val_documents)


def test_line_by_line_run_trains_and_scores_a_held_out_file(tmp_path, capsys):
    from seqkit.data import load_embedded

    text = load_embedded("pydoc-topics")
    corpus, held_out = tmp_path / "corpus.txt", tmp_path / "held-out.txt"
    corpus.write_text(text[:12000], encoding="utf-8")
    held_out.write_text(text[12000:14000], encoding="utf-8")
    run = tmp_path / "mlm"
    args = [*TINY, *SIZES, "--set", "data.line_by_line=true", "--set", f"data.path={corpus}"]
    assert main(["train", MLM, *args, "--output-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(held_out)]) == 0
    assert "eval/masked_accuracy:" in capsys.readouterr().out
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    assert main(["evaluate", str(run), "--data", str(blank)]) == 2
    assert "blank.txt is empty" in capsys.readouterr().err


def _tiny_mlm_task():
    """The masked-LM task around a 1-layer, 8-wide BERT over 20 ids, in eval mode."""
    from seqkit.models.bert import BertConfig, BertForMaskedLM
    from seqkit.trainer.tasks import MaskedLMTask

    config = BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=8,
    )  # fmt: skip
    return MaskedLMTask.for_model(BertForMaskedLM(config).eval(), {})


def test_an_evaluation_batch_without_masked_tokens_adds_nothing():
    """A process's share of a small evaluation can hold no masked token: it must add 0 loss
    over 0 tokens, not NaN (found by the two-process run of tests/test_scale_out.py)."""
    task = _tiny_mlm_task()
    ids = torch.tensor([[1, 5, 6, 2]])
    none_masked = {"input_ids": ids, "labels": torch.full_like(ids, -100)}
    loss_sum, count = task.evaluation_step(task.models, none_masked)["loss"]
    assert float(loss_sum) == 0.0 and int(count) == 0
    one_masked = {"input_ids": ids, "labels": torch.tensor([[-100, 5, -100, -100]])}
    loss_sum, count = task.evaluation_step(task.models, one_masked)["loss"]
    assert int(count) == 1 and torch.isfinite(loss_sum) and float(loss_sum) > 0
    # With no target the sparse head's logits are (0, V): still 0 over 0 tokens.
    none_masked["masked_positions"] = torch.zeros(0, dtype=torch.long)
    metrics = task.evaluation_step(task.models, none_masked)
    assert [int(metrics[k][1]) for k in ("loss", "masked_accuracy")] == [0, 0]
    assert float(metrics["loss"][0]) == 0.0 and float(metrics["masked_accuracy"][0]) == 0.0


def test_evaluation_scores_the_same_with_or_without_masked_positions():
    """The collators send ``masked_positions`` and the model then returns logits for those
    positions only: the loss and the masked accuracy must be what full logits give."""
    from seqkit.data.masking import masked_positions

    torch.manual_seed(0)
    task = _tiny_mlm_task()
    ids = torch.randint(4, 20, (6, 8))
    labels = torch.where(torch.rand(6, 8) < 0.4, ids, -100)
    full = task.evaluation_step(task.models, {"input_ids": ids, "labels": labels})
    sparse = task.evaluation_step(
        task.models,
        {"input_ids": ids, "labels": labels, "masked_positions": masked_positions(labels)},
    )
    assert full.keys() == sparse.keys() == {"loss", "masked_accuracy"}
    for key in full:
        torch.testing.assert_close(sparse[key][0], full[key][0])
        assert int(sparse[key][1]) == int(full[key][1])
    assert 0 < float(full["masked_accuracy"][0]) < int(full["masked_accuracy"][1])
