"""metrics.jsonl rows, truncation on resume, and the loss plot."""

from __future__ import annotations

import json

import pytest
import torch

from seqkit.trainer.logging import MetricsLogger, plot_loss, read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_rows_are_written_and_flushed(tmp_path):
    path = tmp_path / "metrics.jsonl"
    logger = MetricsLogger(path)
    logger.log(1, {"train/loss": torch.tensor(2.5), "train/lr": 0.1})
    # Readable before close: each row is flushed as it is written.
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["step"] == 1 and rows[0]["train/loss"] == 2.5 and rows[0]["train/lr"] == 0.1
    assert isinstance(rows[0]["time"], float) and rows[0]["time"] >= 0
    logger.log(2, {"eval/loss": 3})
    logger.close()
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2]
    assert isinstance(rows[1]["eval/loss"], float)


def test_a_fresh_run_starts_a_new_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as logger:
        logger.log(1, {"train/loss": 1.0})
    with MetricsLogger(path) as logger:
        logger.log(1, {"train/loss": 2.0})
    assert [r["train/loss"] for r in read_metrics(path)] == [2.0]


def test_resume_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as logger:
        for step in range(1, 8):
            logger.log(step, {"train/loss": float(step)})
        logger.log(6, {"eval/loss": 0.5})  # an eval row at the checkpoint step is kept
    with path.open("a") as file:
        file.write('{"step": 8, "train/lo')  # a crash in the middle of a line

    with MetricsLogger(path, resume_step=6) as logger:
        logger.log(7, {"train/loss": 70.0})
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 6, 7]
    assert rows[-1]["train/loss"] == 70.0
    assert rows[-1]["time"] >= rows[-2]["time"]  # time continues from the kept rows
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temp files left


def test_resume_without_a_file_creates_it(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    with MetricsLogger(path, resume_step=3) as logger:
        logger.log(4, {"train/loss": 1.0})
    assert [r["step"] for r in read_metrics(path)] == [4]


def test_reserved_names_are_refused(tmp_path):
    with MetricsLogger(tmp_path / "m.jsonl") as logger, pytest.raises(ValueError, match="step"):
        logger.log(1, {"step": 3})


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def assert_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.parametrize(
    "rows",
    [
        [
            {"step": 1, "train/loss": 3.0},
            {"step": 2, "train/loss": 2.0},
            {"step": 2, "eval/loss": 2.5},
            {"step": 4, "train/loss": 1.5},
            {"step": 4, "eval/loss": 2.0},
        ],
        [{"step": 1, "train/loss": 3.0}, {"step": 2, "train/loss": float("nan")}],
        [{"step": 5, "eval/loss": 2.5}],
        [{"step": 1, "train/generator_loss": 1.0, "train/discriminator_loss": 0.7}],
    ],
    ids=["train-and-eval", "train-only-with-nan", "eval-only", "gan-losses"],
)
def test_plot_writes_a_png(tmp_path, rows):
    metrics = tmp_path / "metrics.jsonl"
    write_rows(metrics, rows)
    out = tmp_path / "plots" / "loss.png"
    assert plot_loss(metrics, out, title="toy") == out
    assert_png(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["loss.png"]


def test_plot_without_any_loss_writes_nothing(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    write_rows(metrics, [{"step": 1, "train/lr": 0.1}])
    assert plot_loss(metrics, tmp_path / "loss.png") is None
    assert not (tmp_path / "loss.png").exists()
