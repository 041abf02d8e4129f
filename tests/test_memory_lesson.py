"""The memory lesson's generated task (scripts/memory_lesson.py): the answer is the first
symbol, the lag holds only distractors, and a cell trains and scores on it."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "memory_lesson.py"


def load_script():
    spec = importlib.util.spec_from_file_location("seqkit_memory_lesson", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recall_batch_hides_the_answer_behind_distractors():
    lesson = load_script()
    input_ids, labels = lesson.recall_batch(256, 7, torch.Generator().manual_seed(0))
    assert input_ids.shape == (256, 8) and labels.shape == (256,)
    torch.testing.assert_close(input_ids[:, 0], labels)
    assert int(labels.max()) < lesson.SIGNALS  # every signal symbol is a class
    assert set(labels.tolist()) == set(range(lesson.SIGNALS))
    body = input_ids[:, 1:]
    assert int(body.min()) >= lesson.SIGNALS  # no signal symbol inside the lag
    assert int(body.max()) < lesson.SIGNALS + lesson.DISTRACTORS


def test_a_cell_learns_a_short_lag():
    lesson = load_script()
    args = argparse.Namespace(
        embedding_size=8, hidden_size=16, lr=1e-2, steps=100, batch_size=32, eval_size=256
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script runs: a 16-wide state gains nothing from threads
    try:
        # At a lag of 2 even the plain RNN must beat chance (25 %) by far within 100 steps.
        assert lesson.train_one("rnn", 2, args, seed=0) > 0.9
    finally:
        torch.set_num_threads(threads)
