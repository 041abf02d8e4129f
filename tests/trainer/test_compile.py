"""trainer.compile: the training steps run through torch.compile; nothing else changes.

Compiling takes tens of seconds on a CPU, so these tests are marked slow."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from safetensors.torch import load_file

from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS
from seqkit.trainer.logging import read_metrics

from .test_recompute import train
from .test_trainer import assert_same_weights, weights

pytestmark = pytest.mark.slow


def test_a_compiled_run_saves_plain_weights_evaluates_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    # No dropout: compiled code draws its masks from another generator than eager code.
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
    plain, whole = copy.deepcopy(start), copy.deepcopy(start)
    train(tmp_path / "plain", plain, save_every=2)
    trainer = train(tmp_path / "whole", whole, save_every=2, compile=True)
    # Compiled kernels round differently from eager ones, but compute the same losses. (Not
    # the same weights to 1e-4: the gradient of the key bias is zero up to rounding, as the
    # softmax ignores it, and Adam scales that rounding noise up to a full step.)
    losses = {
        run: [row["train/loss"] for row in read_metrics(tmp_path / run / "metrics.jsonl")]
        for run in ("plain", "whole")
    }
    assert len(losses["whole"]) == 4
    torch.testing.assert_close(losses["whole"], losses["plain"], rtol=1e-5, atol=0)
    # The compiled wrapper is the Trainer's own: the task's model, the checkpoint's keys and
    # evaluation are those of an uncompiled run.
    assert type(trainer.unwrapped_model()) is GPTLMHeadModel
    assert type(trainer._training_models["model"]) is not GPTLMHeadModel
    name = CHECKPOINT_WEIGHTS.format(name="model")
    saved = load_file(tmp_path / "whole" / "checkpoints" / "step-4" / name)
    plain_keys = load_file(tmp_path / "plain" / "checkpoints" / "step-4" / name).keys()
    assert saved.keys() == plain_keys and not any("_orig_mod" in k for k in saved)

    # Resumed from its step-2 checkpoint, compiled again: bit for bit the uninterrupted run.
    resumed = copy.deepcopy(start)
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole" / "checkpoints" / "step-2", cut / "checkpoints" / "step-2")
    train(cut, resumed, resume=True, compile=True)
    assert_same_weights(weights(whole), weights(resumed))

    # Generation runs the plain module: the same tokens as the uncompiled model with the
    # compiled run's weights.
    prompt = torch.tensor([[1, 2, 3]])
    twin = copy.deepcopy(start)
    twin.load_state_dict(whole.state_dict())
    whole.eval()
    twin.eval()
    with torch.no_grad():
        assert torch.equal(whole(prompt).logits, twin(prompt).logits)
