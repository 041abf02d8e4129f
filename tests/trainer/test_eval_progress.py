"""Evaluation during training shows its progress and says its result (issue 20)."""

from __future__ import annotations

import io
import logging
import re

import pytest

from seqkit.trainer import LanguageModelingTask, Trainer

from .test_trainer import config
from .toys import ToyLM, ToySequences


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(tmp_path, **overrides) -> Trainer:
    trainer = Trainer(
        LanguageModelingTask(ToyLM()),
        config(**{"max_steps": 4, "eval_every": 2, "eval_batches": 3, **overrides}),
        output_dir=tmp_path,
        train_data=ToySequences(),
        eval_data=ToySequences(16),
    )
    trainer.train()
    return trainer


def test_each_evaluation_logs_one_result_line(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="seqkit.trainer.trainer"):
        run(tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("eval step")]
    assert [line.split(":")[0] for line in lines] == ["eval step 2", "eval step 4"]
    assert re.fullmatch(r"eval step 4: loss \d\.\d+ · perplexity \d+\.\d+", lines[1]), lines[1]


@pytest.mark.parametrize(
    ("progress_bar", "terminal", "shown"),
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["terminal", "progress_bar-false", "not-a-terminal"],
)
def test_evaluation_shows_a_bar_on_a_terminal(tmp_path, monkeypatch, progress_bar, terminal, shown):
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    run(tmp_path, progress_bar=progress_bar)
    # A bar of three batches (eval_batches) at each of the two evaluations, erased when done.
    assert stderr.getvalue().count("eval:   0%|          | 0/3") == (2 if shown else 0)
