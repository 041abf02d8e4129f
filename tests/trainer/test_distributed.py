"""`accelerate launch --num_processes 2` on CPU: same training as one process with the same
global batch, and resume works across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("distributed_run.py")

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def launch(
    output_dir: Path, batch_size: int, processes: int, *extra: str
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, str(SCRIPT)]
    else:
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no",
            str(SCRIPT),
        ]  # fmt: skip
    return subprocess.run(
        [*command, str(output_dir), str(batch_size), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    single = launch(tmp_path / "single", 4, 1)
    assert single.returncode == 0, single.stderr[-3000:]
    double = launch(tmp_path / "double", 2, 2)
    assert double.returncode == 0, double.stderr[-3000:]
    a = load_file(tmp_path / "single" / "final.safetensors")
    b = load_file(tmp_path / "double" / "final.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    loss_a = float((tmp_path / "single" / "eval_loss.txt").read_text())
    loss_b = float((tmp_path / "double" / "eval_loss.txt").read_text())
    assert loss_a == pytest.approx(loss_b, rel=1e-6)

    # Crash both processes after step 3 and resume from the step-2 checkpoint.
    crashed = launch(tmp_path / "resumed", 2, 2, "--crash-at", "3")
    assert crashed.returncode != 0
    resumed = launch(tmp_path / "resumed", 2, 2, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    c = load_file(tmp_path / "resumed" / "final.safetensors")
    for key in b:
        assert torch.equal(b[key], c[key]), key
