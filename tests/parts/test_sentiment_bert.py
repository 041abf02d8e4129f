"""The SST-2 BERT recipes on stand-in data: masked-LM pretraining on the sentence column of a
labelled file, a classifier fine-tuned from it, and its random-init twin (the same recipe
without ``model.init_from``)."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit.cli import main
from seqkit.recipes import RECIPES_DIR
from tests.parts.labelled_stand_in import stand_in_overrides

MLM = RECIPES_DIR / "bert" / "sst2-mlm.yaml"
CLASSIFIER = RECIPES_DIR / "bert" / "sst2-classifier.yaml"
TINY = {
    "trainer.max_steps": 3, "trainer.batch_size": 4, "trainer.eval_every": 3,
    "trainer.save_every": 0, "trainer.eval_batches": 2, "trainer.warmup_steps": 1,
    "trainer.progress_bar": "false", "trainer.report_to": "[]", "data.max_length": 16,
    "model.hidden_size": 16, "model.num_hidden_layers": 1, "model.num_attention_heads": 2,
    "model.intermediate_size": 32, "tokenizer.vocab_size": 300,
}  # fmt: skip


def sets(values: dict) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_sst2_bert_pretrains_fine_tunes_and_has_a_random_init_twin(tmp_path, capsys):
    mlm_run = tmp_path / "mlm"
    mlm_data = stand_in_overrides(MLM, tmp_path)
    assert mlm_data  # the recipe names the shared data, which the test replaces
    # The stand-in corpus is 40 short lines: hold out enough of it for one validation example.
    args = [*sets({**TINY, "data.val_fraction": 0.2}), *mlm_data, "--output-dir", str(mlm_run)]
    assert main(["train", str(MLM), *args]) == 0
    vocab = json.loads((mlm_run / "final" / "tokenizer.json").read_text())["model"]["vocab"]
    # Only the sentence column was read, not the labels (the header row and "0<TAB>", "1<TAB>").
    rows = (tmp_path / "stand-in-path.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = "\n".join(row.split("\t")[1] for row in rows)
    assert f"corpus characters: {len(sentences)}\n" in capsys.readouterr().err

    data = stand_in_overrides(CLASSIFIER, tmp_path)
    for name, extra in (("tuned", {"model.init_from": mlm_run / "final"}), ("twin", {})):
        run = tmp_path / name
        args = [*sets({**TINY, **extra}), *data, "--output-dir", str(run)]
        assert main(["train", str(CLASSIFIER), *args]) == 0, name
        assert "eval/accuracy" in capsys.readouterr().out
        config = json.loads((run / "final" / "config.json").read_text())
        assert config["architectures"] == ["BertForSequenceClassification"]
    tuned = json.loads((tmp_path / "tuned" / "final" / "tokenizer.json").read_text())
    assert tuned["model"]["vocab"] == vocab  # fine-tuning keeps the pretrained tokenizer
