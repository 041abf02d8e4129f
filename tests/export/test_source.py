"""What an export reads from its run: the final metrics shown on the model card."""

from __future__ import annotations

import json

from seqkit.export.source import final_metrics


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_the_last_evaluation_wins(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_rows(
        path,
        [
            {"step": 2, "train/loss": 3.0, "train/lr": 0.1},
            {"step": 2, "eval/loss": 2.5, "eval/perplexity": 12.2},
            {"step": 4, "train/loss": 2.0, "train/lr": 0.05},
            {"step": 4, "eval/loss": 2.25, "eval/perplexity": 9.5},
        ],
    )
    assert final_metrics(path) == {"eval/loss": 2.25, "eval/perplexity": 9.5, "step": 4}
    assert final_metrics(path, step=3) == {"eval/loss": 2.5, "eval/perplexity": 12.2, "step": 2}


def test_a_run_without_evaluation_shows_its_last_training_values(tmp_path):
    """A GAN logs no eval/ metrics: its card shows the last losses, not the learning rate."""
    path = tmp_path / "metrics.jsonl"
    write_rows(
        path,
        [
            {"step": 1, "train/generator/loss": 0.9, "train/lr": 0.0002},
            {"step": 2, "train/generator/loss": 0.7, "train/discriminator/loss": 1.3,
             "train/lr": 0.0002, "train/elapsed_s": 0.5, "train/skipped_steps": 0.0},
        ],
    )  # fmt: skip
    assert final_metrics(path) == {
        "train/generator/loss": 0.7,
        "train/discriminator/loss": 1.3,
        "step": 2,
    }
    assert final_metrics(tmp_path / "missing.jsonl") == {}
