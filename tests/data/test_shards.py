"""Two processes under ``accelerate launch`` (gloo on CPU) on the ``streaming`` and
``pretokenized`` language-model modules and on the Arrow-backed translation and classification
modules: each process trains its own share of every global batch, no window or example is
trained twice in an epoch, and together they train exactly the batches of one process at the
same global batch. A two-process streaming run stopped mid-stream resumes to the weights
of an uninterrupted one; one process may not resume it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("shard_worker.py")


def launch(out: Path, corpus: Path, processes: int, *runs: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable]
    if processes > 1:
        command += ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                    str(processes), "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]  # fmt: skip
    done = subprocess.run([*command, str(WORKER), str(out), str(corpus), *runs], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def report(out: Path, name: str, rank: int = 0) -> dict:
    return json.loads((out / f"{name}.rank-{rank}.json").read_text())


def by_epoch(batches: list, epoch: int) -> list[list[list[int]]]:
    return [rows for e, rows in batches if e == epoch]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    corpus = out / "corpus"
    corpus.mkdir()
    draw = random.Random(0)  # random letters: no two windows of the corpus are equal
    for name in ("a.txt", "b.txt"):
        lines = ["".join(draw.choices("abcdefghij", k=19)) for _ in range(20)]
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def sentence() -> str:  # 3 to 7 made-up words: every example differs, lengths vary
        return " ".join("".join(draw.choices("abcdef", k=4)) for _ in range(draw.randint(3, 7)))

    (corpus / "pairs").mkdir()
    for split, count in (("train", 40), ("val", 6)):
        pairs = [(sentence(), sentence()) for _ in range(count)]
        for side, lang in enumerate(("de", "en")):
            text = "".join(pair[side] + "\n" for pair in pairs)
            (corpus / "pairs" / f"{split}.{lang}").write_text(text, encoding="utf-8")
    labelled = [f"{i % 2}\t{sentence()}\n" for i in range(44)]
    (corpus / "labelled.tsv").write_text("label\tsentence\n" + "".join(labelled), "utf-8")
    launch(out, corpus, 2, "pre2:pretokenized", "str2:streaming", "brk:streaming:stop=7",
           "brk:streaming:resume", "mt2:translation", "cls2:classification")  # fmt: skip
    launch(out, corpus, 1, "pre1:pretokenized:batch_size=4", "str1:streaming:batch_size=4",
           "brk:streaming:resume", "mt1:translation:batch_size=4",
           "cls1:classification:batch_size=4")  # fmt: skip
    return out


RUNS = {
    "streaming": ("str2", "str1"),
    "pretokenized": ("pre2", "pre1"),
    "translation": ("mt2", "mt1"),
    "classification": ("cls2", "cls1"),
}


@pytest.mark.parametrize("module", list(RUNS))
def test_each_process_trains_its_own_share_and_no_window_twice(runs, module):
    two, one = RUNS[module]
    shares = [report(runs, two, rank) for rank in (0, 1)]
    alone = report(runs, one)
    assert all(r["error"] is None for r in [*shares, alone]), [*shares, alone]
    for epoch in (0, 1):
        first, second = (by_epoch(s["batches"], epoch) for s in shares)
        whole = by_epoch(alone["batches"], epoch)
        assert len(first) == len(second) == len(whole) > 0
        # Global batch k of one process at batch 4 is process 0's batch k, then process 1's.
        assert [a + b for a, b in zip(first, second, strict=True)] == whole
    epoch0 = [tuple(r) for s in shares for rows in by_epoch(s["batches"], 0) for r in rows]
    assert len(epoch0) == len(set(epoch0))  # no window twice within the epoch
    if module in ("translation", "classification"):
        assert len(epoch0) == 40  # and every training example once (44 labelled rows − 10 %)
    assert len(shares[0]["batches"]) == 24  # trained through the end of epoch 0 into epoch 1


def test_two_process_stream_resumes_mid_stream_and_refuses_one_process(runs):
    assert report(runs, "brk")["error"] is not None  # the last attempt: one process
    assert (
        "written by 2 process(es); resume it with the same number (now 1)"
        in (report(runs, "brk")["error"])
    )
    expected, resumed = load_file(runs / "str2.safetensors"), load_file(runs / "brk.safetensors")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
