"""The bike-sharing regression on a generated stand-in for hour.csv: features, day-based splits,
training through the CLI, evaluation against baselines, and bad CSV files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.tabular.data import (
    TableFeatures,
    TabularDataSection,
    load_splits,
    write_synthetic_csv,
)
from seqkit.tabular.models import TabularRegressor, TabularRegressorConfig


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    return write_synthetic_csv(tmp_path_factory.mktemp("bike") / "hour.csv", days=30)


def test_features_targets_and_splits_by_day(csv_path):
    splits = load_splits(TabularDataSection(path=str(csv_path), test_days=4, val_days=6))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20 * 24, 6 * 24, 4 * 24)
    # 4 seasons + 4 weather + 12 months + 24 hours + 7 weekdays one-hot, 2 flags, 3 measurements.
    assert len(splits.feature_names) == 56
    one_hot = splits.train.features[:, :51]
    assert torch.equal(one_hot.sum(dim=1), torch.full((len(splits.train),), 5.0))
    # Targets are standardised with the training rows' statistics.
    assert abs(float(splits.train.labels.mean())) < 1e-4
    # The test days are the last ones: their rows come after every training row.
    assert splits.parts["test"].min() > splits.parts["train"].max()
    leaky = load_splits(
        TabularDataSection(path=str(csv_path), test_days=4, val_days=6, row_index_feature=True)
    )
    assert leaky.feature_names[-1] == "instant" and len(leaky.feature_names) == 57


def test_regressor_predicts_in_bikes_per_hour(tmp_path):
    config = TabularRegressorConfig(
        num_features=5, hidden_sizes=[8], target_mean=100.0, target_std=10.0
    )
    model = TabularRegressor(config)
    torch.nn.init.zeros_(model.output.weight)
    torch.nn.init.constant_(model.output.bias, 1.5)
    assert torch.allclose(model.predict(torch.rand(3, 5)), torch.full((3,), 115.0))
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        model(torch.rand(3, 4))


def test_train_and_evaluate_beats_the_mean_baseline(csv_path, tmp_path, capsys):
    run = tmp_path / "bike"
    args = ["train", "tabular/bike-sharing-mlp", "--output-dir", str(run)]
    args += ["--set", f"data.path={csv_path}"]
    args += ["--set", "data.test_days=4", "--set", "data.val_days=6"]
    args += ["--set", "trainer.max_steps=100", "--set", "trainer.eval_every=50"]
    args += ["--set", "trainer.progress_bar=false", "--set", "trainer.report_to=[]"]
    args += ["--set", "model.hidden_sizes=[32]", "--set", "trainer.warmup_steps=10"]
    assert main(args) == 0
    # The fitted feature scaling travels with the model, and loads back equal.
    saved = TableFeatures.from_pretrained(run / "final")
    assert saved == TableFeatures.from_pretrained(run / "model")
    assert (
        saved.feature_names
        == load_splits(
            TabularDataSection(path=str(csv_path), test_days=4, val_days=6)
        ).feature_names
    )
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    values = {
        key: float(value)
        for key, value in (line.split(": ") for line in capsys.readouterr().out.splitlines())
    }
    # eval/ is the test days; training and validation days and the baselines come with it.
    assert values["eval/examples"] == 4 * 24
    assert values["eval/mae"] < values["eval/baseline_train_mean_test_mae"]
    assert values["eval/rmse"] >= values["eval/mae"]
    final = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last_val_mae = [row["eval/mae"] for row in final if "eval/mae" in row][-1]
    assert values["eval/val_mae"] == pytest.approx(last_val_mae, abs=1e-3)
    assert values["eval/train_rmse"] >= values["eval/train_mae"]
    # A resumed run reads the saved features instead of fitting them again.
    shutil.rmtree(run / "final")
    (run / "model" / "table_features.json").write_text(
        (run / "model" / "table_features.json").read_text().replace('"cnt"', '"bogus"')
    )
    code = main([*args, "--resume", "--set", "trainer.max_steps=101"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "table_features.json: target must be one of cnt" in err[0]


def test_bad_csv_files_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    missing.write_text("instant,dteday,cnt\n1,2011-01-01,3\n")
    with pytest.raises(UserError, match="lacks the column"):
        load_splits(TabularDataSection(path=str(missing)))
    good = write_synthetic_csv(tmp_path / "hour.csv", days=3)
    lines = good.read_text().splitlines()
    fields = lines[5].split(",")
    fields[10] = "warm"  # the temp column
    lines[5] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"bad.csv:6: column temp is not a number"):
        load_splits(TabularDataSection(path=str(bad), test_days=1, val_days=1))
    with pytest.raises(UserError, match="leave none for training"):
        load_splits(TabularDataSection(path=str(good), test_days=2, val_days=1))
    code = main(["train", "tabular/bike-sharing-mlp", "--output-dir", str(tmp_path / "r"),
                 "--set", f"data.path={tmp_path / 'nothing.csv'}"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not np.any([p.name == "r" for p in tmp_path.iterdir()])
