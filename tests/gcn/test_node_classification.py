"""The gcn recipe end to end: karate club training, the embedding picture, evaluate, bad input."""

from __future__ import annotations

import json

from seqkit.cli import main
from seqkit.recipes import RECIPES_DIR

KARATE = str(RECIPES_DIR / "gcn" / "karate-club.yaml")
QUIET = ["--set", "trainer.report_to=[]", "--set", "trainer.progress_bar=false"]


def test_karate_club_trains_evaluates_and_draws_its_embedding(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", KARATE, "--output-dir", str(run), *QUIET]
    assert main([*args, "--set", "trainer.max_steps=60"]) == 0
    final = run / "final"
    assert (final / "embedding.png").stat().st_size > 1000
    assert json.loads((final / "config.json").read_text())["model_type"] == "seqkit-gcn"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "eval/test_accuracy" in printed
    metrics = json.loads((tmp_path / "m.json").read_text())
    # Two labels, 32 nodes to place: the classic demo gets (nearly) all of them.
    assert metrics["eval/test_accuracy"] > 0.8 and metrics["eval/train_accuracy"] == 1.0


def test_bad_graph_inputs_are_one_line_errors(tmp_path, capsys):
    run = str(tmp_path / "run")
    missing = ["--set", f"data.path={tmp_path / 'nowhere'}"]
    assert main(["train", KARATE, "--output-dir", run, *missing, *QUIET]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqkit: error:") and "not a folder" in err and "\n" not in err
    assert main(["train", KARATE, "--output-dir", run, "--set", "data.embedded=cora"]) == 2
    assert "data.embedded must be karate" in capsys.readouterr().err
