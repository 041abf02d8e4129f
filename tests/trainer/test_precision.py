"""``mixed_precision: bf16`` changes the computation, not just the bookkeeping.

A run whose weights change proves little: an fp32 run changes them too. Here a dispatch mode
records the dtype of every matrix multiply a training step runs, for a tiny GPT trained through
the Trainer: with bf16 they all take bfloat16 inputs (autocast casts at each matmul; the weights
stay float32), without it none does, and the loss of the same step from the same weights
differs by bf16 rounding while staying close."""

from __future__ import annotations

import copy
import json
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.trainer import LanguageModelingTask, Trainer
from seqkit.trainer.throughput import matmul_flops_per_second

from .test_host_sync import Windows
from .test_trainer import config

aten = torch.ops.aten
MATMULS = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default}
"""Matrix multiplies; the fused attention kernel (``_scaled_dot_product_*``) is recorded too."""


class MatmulDtypes(TorchDispatchMode):
    """Counts matrix multiplies by the dtype of their matrix inputs."""

    def __init__(self):
        super().__init__()
        self.dtypes: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        attention = "scaled_dot_product" in func.__name__
        if func in MATMULS or attention:
            # The attention kernel's first three are q, k, v (or the output's gradient, q, k);
            # its saved log-sum-exp is float32 by design.
            matrices = [a for a in (args[:3] if attention else args) if isinstance(a, torch.Tensor)]
            self.dtypes[tuple(sorted({str(a.dtype) for a in matrices}))] += 1
        return func(*args, **(kwargs or {}))


def one_step(tmp_path, model, precision: str) -> tuple[Counter, float, dict]:
    trainer = Trainer(
        LanguageModelingTask(model),
        config(max_steps=1, optimizer="adamw", mixed_precision=precision),
        output_dir=tmp_path,
        train_data=Windows(),
    )
    with MatmulDtypes() as recorded:
        trainer.train()
    loss = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["train/loss"]
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    return recorded.dtypes, loss, dtypes


def test_bf16_runs_the_matmuls_in_bfloat16_and_changes_the_loss_a_little(tmp_path):
    # No dropout: the two losses differ only by precision. (With attention dropout, torch's
    # CPU attention falls back to its math path, which computes in float32 whatever autocast
    # says; the linear layers would still run in bf16.)
    torch.manual_seed(0)
    start = GPTLMHeadModel(
        GPTConfig(
            vocab_size=23,
            n_positions=8,
            n_embd=16,
            n_layer=2,
            n_head=2,
            attn_pdrop=0.0,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
        )
    )
    matmul_flops_per_second("cpu")  # the MFU probe's float32 matmuls, done before recording
    full, full_loss, full_weights = one_step(tmp_path / "fp32", copy.deepcopy(start), "no")
    half, half_loss, half_weights = one_step(tmp_path / "bf16", copy.deepcopy(start), "bf16")

    assert set(full) == {("torch.float32",)}, full
    assert set(half) == {("torch.bfloat16",)}, half
    # Every matmul of the step (forward, attention and backward): the same number, other dtype.
    assert sum(half.values()) == sum(full.values()) > 10
    # The weights themselves stay float32: autocast casts copies at each matmul.
    assert set(half_weights.values()) == set(full_weights.values()) == {torch.float32}
    # The same batch from the same weights: bf16's 8-bit mantissa shows in the loss, a little.
    assert half_loss != full_loss
    assert abs(half_loss - full_loss) < 0.02 * full_loss
