"""On an accelerator every moment the host waits for the device stalls the pipeline: the
Trainer's optimizer step reads no number back (no ``.item()``, ``bool()``, ``float()`` or
``tolist()`` of a tensor) except where the user asked for numbers — at ``log_every``, at
evaluation and at checkpoints — and the NaN check rides along with those reads.

On this CPU there is no device to wait for, so the test counts the calls that would wait."""

from __future__ import annotations

import traceback
from collections import Counter

import pytest
import torch

from seqkit.trainer import LanguageModelingTask, Trainer
from seqkit.trainer.trainer import TrainingDiverged

from .test_trainer import config
from .toys import ToyLM, ToySequences

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
"""Tensor methods that copy a value to the host (and so wait for the device)."""


def _in_data_pipeline() -> bool:
    """Reads by the DataLoader and the batch sampler: index tensors that live on the host by
    design (they pick examples before the batch is moved to the device)."""
    frames = traceback.extract_stack(limit=12)
    return any(
        "torch/utils/data/" in frame.filename or frame.filename.endswith("trainer/sampling.py")
        for frame in frames
    )


@pytest.fixture
def host_reads(monkeypatch) -> Counter:
    """Counts host reads of tensors, by step of the Trainer (``step`` = steps completed)."""
    counts: Counter = Counter()
    state = {"trainer": None}

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            trainer = state["trainer"]
            if trainer is not None and not _in_data_pipeline():
                counts[trainer.step] += 1
            return original(self, *args, **kwargs)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    counts.state = state  # type: ignore[attr-defined]
    return counts


def test_no_host_reads_between_logging_steps(tmp_path, host_reads):
    trainer = Trainer(
        LanguageModelingTask(ToyLM()),
        config(max_steps=12, log_every=4, optimizer="adamw", max_grad_norm=1.0),
        output_dir=tmp_path,
        train_data=ToySequences(),
    )
    host_reads.state["trainer"] = trainer
    trainer.train()
    # Reads are counted under the step count they happen at: steps 0-3 (while training step
    # 1-4) read nothing until step 4 is logged; the same for 4-7 and 8-11.
    between = {step: n for step, n in host_reads.items() if step not in (4, 8, 12)}
    assert between == {}, f"host reads inside optimizer steps: {between}"
    assert host_reads[4] > 0  # the logging step does read (the metrics and the NaN check)


def test_the_nan_check_still_stops_at_the_next_read(tmp_path):
    class PoisonedAtThree(LanguageModelingTask):
        calls = 0

        def training_step(self, models, batch, optimizer_name):
            self.calls += 1
            loss = super().training_step(models, batch, optimizer_name)
            return loss * float("nan") if self.calls == 3 else loss

    model = ToyLM()
    trainer = Trainer(
        PoisonedAtThree(model),
        config(max_steps=12, log_every=5, save_every=2),
        output_dir=tmp_path,
        train_data=ToySequences(),
    )
    # Step 3 is bad; the step-4 checkpoint is the first read after it: nothing of step 3 or
    # later is written, the message names step 3, and the model holds step 2's weights again.
    with pytest.raises(TrainingDiverged, match=r"not finite at step 3.*step-2"):
        trainer.train()
    assert trainer.checkpoints.all_steps() == [2]
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
