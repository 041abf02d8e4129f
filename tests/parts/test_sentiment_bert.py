"""The SST-2 and ChnSentiCorp BERT recipes on stand-in data: masked-LM pretraining on the text
column of a labelled file, a classifier fine-tuned from it, and its random-init twin (the same
recipe without ``model.init_from``)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from seqkit.cli import main
from seqkit.parts.resolve import load_recipe, resolve
from seqkit.recipes import RECIPES_DIR
from tests.parts.labelled_stand_in import stand_in_overrides

TINY = {
    "trainer.max_steps": 3, "trainer.batch_size": 4, "trainer.eval_every": 3,
    "trainer.save_every": 0, "trainer.eval_batches": 2, "trainer.warmup_steps": 1,
    "trainer.progress_bar": "false", "trainer.report_to": "[]", "data.max_length": 16,
    "model.hidden_size": 16, "model.num_hidden_layers": 1, "model.num_attention_heads": 2,
    "model.intermediate_size": 32, "tokenizer.vocab_size": 300,
}  # fmt: skip


def _texts(path: str) -> list[str]:
    """The text column of a stand-in file (labels first: ``label,review`` or ``label<TAB>…``)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t" if path.endswith(".tsv") else ","))
    return [row[1] for row in rows[1:]]


def sets(values: dict) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["sst2", "chnsenticorp"])
def test_sentiment_bert_pretrains_fine_tunes_and_has_a_random_init_twin(corpus, tmp_path, capsys):
    mlm_recipe = RECIPES_DIR / "bert" / f"{corpus}-mlm.yaml"
    classifier_recipe = RECIPES_DIR / "bert" / f"{corpus}-classifier.yaml"
    mlm_run = tmp_path / "mlm"
    mlm_data = stand_in_overrides(mlm_recipe, tmp_path)
    assert mlm_data  # the recipe names the shared data, which the test replaces
    # The stand-in corpus is 40 short lines: hold out enough of it for one validation example.
    args = [*sets({**TINY, "data.val_fraction": 0.2}), *mlm_data, "--output-dir", str(mlm_run)]
    assert main(["train", str(mlm_recipe), *args]) == 0
    vocab = json.loads((mlm_run / "final" / "tokenizer.json").read_text())["model"]["vocab"]
    # One example per text of the file: the text column only, not the labels or the header.
    err = capsys.readouterr().err
    assert "documents: 40\n" in err and "train examples: 32\n" in err
    parts = resolve(load_recipe(mlm_recipe, [*mlm_data[1::2], "data.val_fraction=0.2"]))
    train_texts, val_texts = parts.data.documents
    assert sorted(train_texts + val_texts) == sorted(_texts(mlm_data[1].split("=", 1)[1]))

    data = stand_in_overrides(classifier_recipe, tmp_path)
    for name, extra in (("tuned", {"model.init_from": mlm_run / "final"}), ("twin", {})):
        run = tmp_path / name
        args = [*sets({**TINY, **extra}), *data, "--output-dir", str(run)]
        assert main(["train", str(classifier_recipe), *args]) == 0, name
        assert "eval/accuracy" in capsys.readouterr().out
        config = json.loads((run / "final" / "config.json").read_text())
        assert config["architectures"] == ["BertForSequenceClassification"]
    tuned = json.loads((tmp_path / "tuned" / "final" / "tokenizer.json").read_text())
    assert tuned["model"]["vocab"] == vocab  # fine-tuning keeps the pretrained tokenizer
