"""trainer.gradient_checkpointing: the same gradients, the same files, less kept activation.

Each test would catch a usual way checkpointing goes wrong: a block that is not recomputed
(nothing saved), a dropout mask drawn anew on recomputation (different gradients), renamed
parameters (``_checkpoint_wrapped_module.`` keys in checkpoints), or a model left wrapped after
training."""

from __future__ import annotations

import copy
import shutil

import pytest
import torch
from torch import nn

from seqkit.errors import UserError
from seqkit.models.bert import BertConfig, BertForMaskedLM
from seqkit.models.decoder import DecoderConfig, DecoderForCausalLM
from seqkit.models.gpt import GPTLMHeadModel
from seqkit.models.gpt_config import GPTConfig
from seqkit.models.transformer import TransformerConfig, TransformerForSeq2Seq
from seqkit.trainer import LanguageModelingTask, SupervisedTask, Trainer, TrainerConfig
from seqkit.trainer.checkpoint import CHECKPOINT_WEIGHTS
from seqkit.trainer.recompute import checkpointable_blocks, gradient_checkpointing

from .test_host_sync import Windows
from .test_trainer import assert_same_weights, config, weights
from .toys import ToyLM, ToySequences

VOCAB = 23


def gpt() -> nn.Module:
    return GPTLMHeadModel(
        GPTConfig(vocab_size=VOCAB, n_positions=8, n_embd=16, n_layer=2, n_head=2, resid_pdrop=0.2)
    )


def decoder() -> nn.Module:
    return DecoderForCausalLM(
        DecoderConfig(
            vocab_size=VOCAB,
            n_positions=8,
            n_embd=16,
            n_layer=2,
            n_head=4,
            n_kv_head=2,
            intermediate_size=24,
            dropout=0.2,
        )
    )


def bert() -> nn.Module:
    return BertForMaskedLM(
        BertConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=8,
        )
    )


def transformer() -> nn.Module:
    return TransformerForSeq2Seq(
        TransformerConfig(
            src_vocab_size=VOCAB,
            tgt_vocab_size=VOCAB,
            d_model=16,
            n_head=2,
            d_ff=32,
            num_encoder_layers=2,
            num_decoder_layers=2,
            dropout=0.2,
            max_position_embeddings=8,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        )
    )


MODELS = {"gpt": gpt, "decoder": decoder, "bert": bert, "transformer": transformer}
BLOCKS = {"gpt": 2, "decoder": 2, "bert": 2, "transformer": 4}


def batch(family: str = "gpt") -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(3, VOCAB, (3, 8), generator=generator)
    labels = torch.randint(3, VOCAB, (3, 8), generator=generator)
    if family == "transformer":  # a padded source sentence, target ids from the vocabulary
        mask = torch.ones_like(ids)
        mask[1, 6:] = 0
        ids[1, 6:] = 0
        return {"input_ids": ids, "attention_mask": mask, "labels": labels[:, :6]}
    labels[:, :2] = -100
    return {"input_ids": ids, "labels": labels}


def gradients(model: nn.Module, recompute: bool, family: str) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(9)  # the same dropout masks for both runs
    if recompute:
        with gradient_checkpointing({"model": model}):
            model(**batch(family)).loss.backward()
    else:
        model(**batch(family)).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", sorted(MODELS))
def test_recomputed_blocks_give_the_same_gradients(family):
    torch.manual_seed(0)
    model = MODELS[family]().train()
    blocks = checkpointable_blocks(model)
    assert len(blocks) == BLOCKS[family]
    calls = []
    for block in blocks:
        for layer in block.modules():
            if isinstance(layer, nn.Linear):
                layer.register_forward_pre_hook(lambda module, args: calls.append(module))
    plain = gradients(model, recompute=False, family=family)
    once = len(calls)
    calls.clear()
    recomputed = gradients(model, recompute=True, family=family)
    # The insides of each block ran twice: forward, and again in the backward pass.
    assert once > 0 and len(calls) == 2 * once
    assert plain.keys() == recomputed.keys() and plain
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=1e-6, atol=1e-6, msg=name)
    # Left as it was: no instance-level forward, no marker.
    assert all("forward" not in vars(block) for block in blocks)


def test_evaluation_and_generation_do_not_recompute():
    torch.manual_seed(0)
    model = gpt()
    calls = []
    model.transformer.h[0].mlp.register_forward_pre_hook(lambda module, args: calls.append(1))
    with gradient_checkpointing({"model": model}):
        model.train()
        with torch.no_grad():
            model(**batch())
        model.eval()
        model(**batch()).loss.backward()
    assert len(calls) == 2  # once each: no gradients, or not training, means no recomputation


def train(tmp_path, model, resume=False, **overrides):
    trainer = Trainer(
        LanguageModelingTask(model),
        config(**{"max_steps": 4, "optimizer": "adamw", "max_grad_norm": 1.0, **overrides}),
        output_dir=tmp_path,
        train_data=Windows(),
    )
    trainer.train(resume=resume)
    return trainer


def test_a_run_with_it_ends_with_the_weights_and_files_of_a_run_without(tmp_path):
    torch.manual_seed(0)
    start = gpt()
    plain, recomputed = copy.deepcopy(start), copy.deepcopy(start)
    train(tmp_path / "plain", plain, save_every=2)
    train(tmp_path / "recomputed", recomputed, save_every=2, gradient_checkpointing=True)
    assert_same_weights(weights(plain), weights(recomputed), exact=False)
    # The checkpoint files hold the same keys: nothing was renamed or wrapped.
    name = CHECKPOINT_WEIGHTS.format(name="model")
    from safetensors.torch import load_file

    a = load_file(tmp_path / "plain" / "checkpoints" / "step-4" / name)
    b = load_file(tmp_path / "recomputed" / "checkpoints" / "step-4" / name)
    assert a.keys() == b.keys()
    assert all("forward" not in vars(block) for block in checkpointable_blocks(recomputed))


def test_resume_with_it_ends_like_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    start = gpt()
    whole, interrupted = copy.deepcopy(start), copy.deepcopy(start)
    train(tmp_path / "whole", whole, gradient_checkpointing=True)
    train(tmp_path / "cut", interrupted, max_steps=2, gradient_checkpointing=True)
    resumed = copy.deepcopy(start)
    train(tmp_path / "cut", resumed, resume=True, gradient_checkpointing=True)
    assert_same_weights(weights(whole), weights(resumed))


def test_a_model_without_blocks_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"^trainer.gradient_checkpointing: ToyLM has no "):
        Trainer(
            SupervisedTask(ToyLM()),
            config(gradient_checkpointing=True),
            output_dir=tmp_path,
            train_data=ToySequences(),
        )
    assert not tmp_path.joinpath("checkpoints").exists()


@pytest.mark.parametrize("name", ["gradient_checkpointing", "compile"])
def test_the_switches_take_only_booleans(name):
    with pytest.raises(UserError, match=rf"^trainer.{name} must be true or false, got 'yes'$"):
        TrainerConfig(**{name: "yes"})


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({"gradient_checkpointing": True}, True),
        ({"compile": True}, True),
        ({"gradient_checkpointing": True, "lr": 0.5}, False),
    ],
)
def test_resume_may_switch_checkpointing_and_compilation(tmp_path, change, accepted):
    from seqkit.parts.resolve import load_recipe
    from seqkit.recipes import RECIPES_DIR, recipe_to_dict
    from seqkit.training import _check_resumable

    shutil.copy(RECIPES_DIR / "gpt" / "quickstart-pydoc-char.yaml", tmp_path / "recipe.yaml")
    recipe = recipe_to_dict(load_recipe(tmp_path / "recipe.yaml"))
    recipe["trainer"].update(change)
    if accepted:
        _check_resumable(tmp_path, recipe)
    else:
        with pytest.raises(UserError, match=r"in trainer.lr \(only trainer.max_steps, grad"):
            _check_resumable(tmp_path, recipe)


@pytest.mark.slow
def test_a_run_resumes_with_checkpointing_switched_on(tmp_path, capsys):
    """A run that ran out of memory resumes with the setting on: the CLI accepts the change."""
    from seqkit.cli import main

    run = tmp_path / "run"
    sizes = (
        "model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "trainer.max_steps=2", "trainer.batch_size=2", "trainer.eval_every=0",
        "trainer.save_every=1", "trainer.eval_batches=1", "trainer.progress_bar=false",
        "trainer.report_to=[]",
    )  # fmt: skip
    argv = ["train", "gpt/quickstart-pydoc-char", "--output-dir", str(run)]
    argv += [f"--set={s}" for s in sizes]
    assert main(argv) == 0
    resumed = ["--resume", "--set=trainer.max_steps=3", "--set=trainer.gradient_checkpointing=true"]
    assert main([*argv, *resumed]) == 0, capsys.readouterr().err
    assert (run / "checkpoints" / "step-3").is_dir()
    # Any other change is still refused.
    assert main([*argv, "--resume", "--set=trainer.lr=0.5"]) == 2
    assert "only trainer.max_steps, gradient_checkpointing and compile" in capsys.readouterr().err
