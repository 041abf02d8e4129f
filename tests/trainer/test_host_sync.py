"""On an accelerator every moment the host waits for the device stalls the pipeline: the
Trainer's optimizer step reads no number back except where the user asked for numbers — at
``log_every``, at evaluation and at checkpoints — and the NaN check rides along with those reads.

On this CPU there is no device to wait for, so the tests count the operations that would wait,
at the level every tensor operation passes through (a ``TorchDispatchMode``), so a read made
inside torch's own C++ code counts as well as one written in Python:

- ``aten._local_scalar_dense``: what ``.item()``, ``bool(t)``, ``float(t)``, ``int(t)`` and
  ``if t:`` turn into; ``aten.equal`` (a Python bool);
- operations whose output size depends on the values (``nonzero``, ``masked_select``, boolean
  indexing, ``unique``…): the host needs the size before it can allocate the result;
- ``aten.lift_fresh``: a tensor built from host numbers (``torch.tensor(n, device=...)``), which
  a blocking copy sends to the device;
- ``Tensor.tolist`` and ``Tensor.numpy``, which read memory directly (counted in Python: on the
  CPU they dispatch nothing).
"""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.trainer import LanguageModelingTask, SupervisedTask, Trainer
from seqkit.trainer.trainer import TrainingDiverged

from .test_trainer import config
from .toys import ToyLM, ToySequences

aten = torch.ops.aten
WAITING_OPS = {
    aten._local_scalar_dense.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.lift_fresh.default,
}
"""Operations after which the host has waited for the device."""


def _waits(func, args, kwargs) -> bool:
    if func in WAITING_OPS:
        return True
    if func is aten.index.Tensor:  # a boolean mask is a nonzero() inside
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])
    if func is aten.repeat_interleave.Tensor:  # the output size is the sum of the repeats
        return kwargs.get("output_size") is None
    return False


def _in_data_pipeline(frames) -> bool:
    """Reads by the DataLoader and the batch sampler: index tensors that live on the host by
    design (they pick examples before the batch is moved to the device)."""
    return any(
        "torch/utils/data/" in frame.filename or frame.filename.endswith("trainer/sampling.py")
        for frame in frames
    )


class HostReads(TorchDispatchMode):
    """Counts the host's waits while ``trainer`` trains, by ``trainer.step`` (steps completed:
    a wait while step 3 is computed counts under 2, the logging after it under 3)."""

    def __init__(self, trainer: Trainer):
        super().__init__()
        self.trainer = trainer
        self.by_step: Counter = Counter()
        self.where: dict[int, str] = {}

    def count(self, what: str) -> None:
        frames = traceback.extract_stack()
        if _in_data_pipeline(frames):
            return
        step = self.trainer.step
        self.by_step[step] += 1
        ours = [f for f in frames if "/seqkit/" in f.filename and "/tests/" not in f.filename]
        at = f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"
        self.where.setdefault(step, f"{what} at {at}")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _waits(func, args, kwargs):
            self.count(str(func))
        return func(*args, **kwargs)


@pytest.fixture
def host_reads(monkeypatch):
    """``host_reads(trainer)``: a :class:`HostReads` to train inside, also counting
    ``tolist()`` and ``numpy()``."""
    active: list[HostReads] = []

    def counting(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            if active and not torch._C._dispatch_tls_is_dispatch_key_excluded(
                torch._C.DispatchKey.Python
            ):
                active[-1].count(name)
            return original(self, *args, **kwargs)

        return read

    for name in ("tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, counting(name))

    def make(trainer: Trainer) -> HostReads:
        reads = HostReads(trainer)
        active.append(reads)
        return reads

    return make


def tiny_gpt() -> GPTLMHeadModel:
    torch.manual_seed(0)
    return GPTLMHeadModel(
        GPTConfig(vocab_size=23, n_positions=8, n_embd=16, n_layer=2, n_head=2, resid_pdrop=0.1)
    )


class Windows(torch.utils.data.Dataset):
    """Random token windows with next-token labels, a few positions ignored."""

    def __init__(self, size: int = 24, length: int = 8, vocab_size: int = 23):
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(vocab_size, (size, length + 1), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        labels = self.ids[i, 1:].clone()
        labels[: i % 3] = -100
        return {"input_ids": self.ids[i, :-1], "labels": labels}


def test_a_gpt_step_waits_for_nothing_between_logging_evaluation_and_checkpoints(
    tmp_path, host_reads
):
    trainer = Trainer(
        LanguageModelingTask(tiny_gpt()),
        config(
            max_steps=8,
            grad_accum_steps=2,
            log_every=3,
            eval_every=4,
            eval_batches=2,
            save_every=5,
            optimizer="adamw",
            schedule="cosine",
            warmup_steps=2,
            max_grad_norm=1.0,
            progress_bar=True,  # its postfix shows logged numbers: must not read any itself
        ),
        output_dir=tmp_path,
        train_data=Windows(),
        eval_data=Windows(8),
    )
    with host_reads(trainer) as reads:
        trainer.train()
    # Logging at 3 and 6, evaluation at 4 and 8, checkpoints at 5 and 8: those read numbers.
    inside = {step: reads.where[step] for step in reads.by_step if step not in (3, 4, 5, 6, 8)}
    assert inside == {}, f"the host waits inside optimizer steps: {inside}"
    # A logging step reads once: the metrics, with the NaN check folded into the same tensor.
    assert reads.by_step[3] == reads.by_step[6] == 1, reads.by_step


class FamilyBatches(torch.utils.data.Dataset):
    """The one batch of ``test_recompute.batch(family)``, example by example."""

    def __init__(self, family: str):
        from .test_recompute import batch

        self.batch = batch(family)
        if family == "bert":  # a padded batch, as the collators give one: used, never read
            mask = torch.ones_like(self.batch["input_ids"])
            mask[0, -2:] = 0
            self.batch["attention_mask"] = mask

    def __len__(self) -> int:
        return len(self.batch["input_ids"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.batch.items()}


@pytest.mark.parametrize("family", ["decoder", "transformer", "bert"])
def test_the_other_transformers_wait_for_nothing_inside_a_step(tmp_path, host_reads, family):
    from .test_recompute import MODELS

    torch.manual_seed(0)
    trainer = Trainer(
        SupervisedTask(MODELS[family]()),
        config(max_steps=3, batch_size=3, log_every=3, optimizer="adamw", max_grad_norm=1.0),
        output_dir=tmp_path,
        train_data=FamilyBatches(family),
    )
    with host_reads(trainer) as reads:
        trainer.train()
    inside = {step: reads.where[step] for step in reads.by_step if step != 3}
    assert inside == {}, f"the host waits inside optimizer steps: {inside}"


@dataclass
class Output:
    loss: torch.Tensor


class Classifier(nn.Module):
    """One label per example: the task counts targets as a Python int (the batch's rows)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x, labels):
        return Output(F.cross_entropy(self.linear(x), labels))


class Points(torch.utils.data.Dataset):
    def __init__(self, size: int = 32):
        generator = torch.Generator().manual_seed(2)
        self.x = torch.randn(size, 4, generator=generator)
        self.y = torch.randint(3, (size,), generator=generator)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


def test_counting_targets_on_the_host_sends_no_number_to_the_device(tmp_path, host_reads):
    # num_targets is an int here; torch.as_tensor(int, device=...) would copy it to the device
    # with a blocking copy at every micro-batch.
    trainer = Trainer(
        SupervisedTask(Classifier()),
        config(max_steps=4, grad_accum_steps=2, log_every=4, max_grad_norm=1.0),
        output_dir=tmp_path,
        train_data=Points(),
    )
    with host_reads(trainer) as reads:
        trainer.train()
    inside = {step: reads.where[step] for step in reads.by_step if step != 4}
    assert inside == {}, f"the host waits inside optimizer steps: {inside}"


@pytest.mark.parametrize(
    "read",
    [
        lambda loss: loss.item(),
        lambda loss: bool(loss > 0),
        lambda loss: loss.detach().tolist(),
        lambda loss: loss.new_ones(3)[loss.new_ones(3) > 0],  # boolean indexing
        lambda loss: torch.tensor(1.0, device=loss.device),  # host number to the device
    ],
    ids=["item", "bool", "tolist", "boolean-index", "tensor-from-host"],
)
def test_the_counter_sees_each_kind_of_wait(tmp_path, host_reads, read):
    class Reading(LanguageModelingTask):
        def training_step(self, models, batch, optimizer_name):
            loss = super().training_step(models, batch, optimizer_name)
            read(loss)
            return loss

    trainer = Trainer(
        Reading(ToyLM()),
        config(max_steps=2, log_every=2),
        output_dir=tmp_path,
        train_data=ToySequences(),
    )
    with host_reads(trainer) as reads:
        trainer.train()
    assert reads.by_step[0] == 1 and reads.by_step[1] == 1, reads.by_step


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
