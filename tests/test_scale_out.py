"""Recipes under ``accelerate launch --multi_gpu --num_processes 2`` on CPU (gloo): the same
training as one process at the same global batch, only the main process writes, and a
two-process run resumes.

Tolerance: with the same global batch and data order the two runs compute the same mean
gradient, summed in a different order (an all-reduce of two halves), so losses agree to float32
rounding: we allow a relative 1e-4 on every logged loss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqkit.recipes import RECIPES_DIR

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

TOLERANCE = 1e-4

# recipe -> overrides that make it tiny; the per-process batch is set by the test.
RECIPES = {
    "gpt/quickstart-pydoc-char.yaml": [
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "trainer.max_steps=6", "trainer.eval_every=3", "trainer.save_every=3",
        "trainer.eval_batches=4", "trainer.log_every=1", "trainer.progress_bar=false",
        "trainer.warmup_steps=1",
    ],
}  # fmt: skip


def train(recipe: str, out: Path, processes: int, batch: int, *extra: str):
    overrides = [f"--set={o}" for o in [*RECIPES[recipe], f"trainer.batch_size={batch}"]]
    launcher = [sys.executable, "-m", "seqkit"]
    if processes > 1:
        launcher = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m", "seqkit",
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [*launcher, "train", str(RECIPES_DIR / recipe), *overrides, "--output-dir", str(out)]
    return subprocess.run([*command, *extra], capture_output=True, text=True, env=env, timeout=400)


def losses(run: Path) -> dict[tuple[int, str], float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {
        (row["step"], key): value
        for row in rows
        for key, value in row.items()
        if key.endswith("loss")
    }


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_two_processes_train_like_one_and_resume(recipe, tmp_path):
    single = train(recipe, tmp_path / "one", 1, 4)
    assert single.returncode == 0, single.stderr[-3000:]
    double = train(recipe, tmp_path / "two", 2, 2)
    assert double.returncode == 0, double.stderr[-3000:]

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) >= 8
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=TOLERANCE), key
    # Only the main process writes: one line per logged step, one final model, one sample.
    rows = {
        name: (tmp_path / name / "metrics.jsonl").read_text().count("\n") for name in ("one", "two")
    }
    assert rows["two"] == rows["one"]
    assert (tmp_path / "two" / "final" / "model.safetensors").is_file()
    assert double.stdout.count("--- sample") == 1

    # Resume the finished two-process run to more steps, still with two processes.
    more = train(recipe, tmp_path / "two", 2, 2, "--resume", "--set=trainer.max_steps=8")
    assert more.returncode == 0, more.stderr[-3000:]
    assert max(step for step, _ in losses(tmp_path / "two")) == 8
