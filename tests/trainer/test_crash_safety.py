"""Fault injection: training processes killed with SIGKILL at many moments, some in the middle of
writing a checkpoint, always resume from the newest complete checkpoint and end with exactly the
weights of a run that was never interrupted.

Each attempt runs in a forked child (no interpreter start-up, so dozens of kills stay cheap) that
kills itself with SIGKILL at a chosen moment: nothing is flushed, no ``finally`` runs, exactly as
when the machine or the scheduler kills a job. Moments are chosen deterministically — after an
optimizer step, after the n-th weights or state file of a checkpoint, before the rename that
publishes it, while rotation deletes an old one — so a failure names the moment that broke.
"""

from __future__ import annotations

import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from seqkit.trainer import Callback, LanguageModelingTask, Trainer
from seqkit.trainer import checkpoint as checkpoint_module
from seqkit.trainer import trainer as trainer_module

from .test_trainer import config
from .toys import ChainQLearning, RealNumbers, ToyGAN, ToyLM, ToySequences

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAtStep(Callback):
    """Every attempt has one (``step`` None: never kills), so the list of callbacks, whose states
    a checkpoint stores in order, is the same in every attempt, as it is for a real run."""

    def __init__(self, step: int | None = None):
        self.step = step

    def on_step_end(self, trainer, control, logs):
        if trainer.step == self.step:
            die()


def kill_on_call(owner, name: str, call: int) -> None:
    """Replace ``owner.name`` so that its ``call``-th call (1-based) kills the process first."""
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            die()
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def arm(moment: tuple[str, int], callbacks: list) -> None:
    """Install the kill for ``moment`` = (where, n) in this (child) process."""
    where, n = moment
    if where == "step":  # right after optimizer step n
        callbacks[0].step = n
    elif where == "weights":  # before the n-th model weights file of this process's checkpoints
        kill_on_call(trainer_module, "save_module_weights", n)
    elif where == "state":  # before the n-th optimizer/trainer/RNG state file
        kill_on_call(trainer_module, "save_tree", n)
    elif where == "publish":  # marker written, before the n-th rename that publishes a checkpoint
        kill_on_call(checkpoint_module.os, "replace", n)
    elif where == "rotate":  # while rotation deletes the n-th old checkpoint
        kill_on_call(checkpoint_module.shutil, "rmtree", n)
    else:
        raise ValueError(where)


@dataclass
class Workload:
    """How to build a fresh trainer (same seed, same start) for one kind of training."""

    make: Callable[[Path, list], Trainer]

    def final_weights(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        return {
            f"{name}.{key}": value.detach().clone().contiguous()
            for name, model in trainer.task.models.items()
            for key, value in trainer.unwrapped_model(name).state_dict().items()
        }


def _lm(run_dir: Path, callbacks: list) -> Trainer:
    torch.manual_seed(0)
    cfg = config(max_steps=12, grad_accum_steps=2, optimizer="adamw", schedule="cosine",
                 warmup_steps=2, save_every=3, keep_last=2, eval_every=4, max_grad_norm=1.0,
                 log_every=2)  # fmt: skip
    data = ToySequences(size=40)
    return Trainer(LanguageModelingTask(ToyLM(dropout=0.3)), cfg, output_dir=run_dir,
                   train_data=data, eval_data=data, callbacks=callbacks)  # fmt: skip


def _gan(run_dir: Path, callbacks: list) -> Trainer:
    torch.manual_seed(0)
    cfg = config(max_steps=9, optimizer="adam", lr=1e-2, save_every=3, keep_last=1, batch_size=8)
    return Trainer(ToyGAN(), cfg, output_dir=run_dir, train_data=RealNumbers(),
                   callbacks=callbacks)  # fmt: skip


def _replay(run_dir: Path, callbacks: list) -> Trainer:
    torch.manual_seed(0)
    cfg = config(max_steps=40, optimizer="sgd", lr=0.5, save_every=10, keep_last=2, log_every=5)
    return Trainer(ChainQLearning(seed=0), cfg, output_dir=run_dir, callbacks=callbacks)


QUIET = ("trainer.progress_bar=false", "trainer.report_to=[]")

# recipe -> overrides that make the real recipe a few seconds of training. Each keeps what makes
# its family hard to resume: dropout, a second optimizer and BatchNorm buffers, a recurrent state,
# masks drawn afresh for every batch, a replay memory with a target network, an environment
# mid-episode.
RECIPE_OVERRIDES = {
    "gpt/quickstart-pydoc-char.yaml": [
        *("model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16"),
        *("model.dropout=0.1", "trainer.max_steps=8", "trainer.batch_size=4"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
        "trainer.eval_batches=2",
    ],
    # Read as a stream in 64-byte chunks: every checkpoint lands mid-file, and the run crosses
    # an epoch (a new order of its two files).
    "gpt/shakespeare-char-streaming.yaml": [
        *("model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16"),
        *("model.dropout=0.1", "trainer.max_steps=10", "trainer.batch_size=4"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
        *("trainer.eval_batches=2", "data.chunk_bytes=64", "sample.prompt=ROMEO"),
    ],
    "rnn/quickstart-pydoc-lstm.yaml": [
        *("model.embedding_size=8", "model.hidden_size=16", "model.num_layers=2"),
        *("model.dropout=0.2", "model.block_size=16", "trainer.max_steps=8"),
        *("trainer.batch_size=4", "trainer.save_every=2", "trainer.keep_last=2"),
        *("trainer.eval_every=4", "trainer.eval_batches=2"),
    ],
    "transformer/generated-toy.yaml": [
        *("model.d_model=16", "model.n_head=2", "model.num_encoder_layers=1"),
        *("model.num_decoder_layers=1", "model.d_ff=32", "model.dropout=0.1"),
        *("trainer.max_steps=8", "trainer.batch_size=4", "trainer.save_every=2"),
        *("trainer.keep_last=2", "trainer.eval_every=4", "trainer.eval_batches=2"),
    ],
    "seq2seq/generated-attention.yaml": [
        *("model.embedding_dim=8", "model.hidden_size=16", "model.dropout=0.1"),
        # Below 1 the decoder draws at every step whether to feed its own prediction.
        *("model.teacher_forcing_ratio=0.5", "data.generated_pairs=200", "trainer.max_steps=8"),
        *("trainer.batch_size=4", "trainer.save_every=2", "trainer.keep_last=2"),
        *("trainer.eval_every=4", "trainer.eval_batches=2"),
    ],
    # Read from files into cached Arrow rows (seqkit.data.arrow_rows): translation pairs in
    # length buckets, classified texts; dropout in both.
    "seq2seq/multi30k-gru.yaml": [
        *("model.embedding_dim=8", "model.hidden_size=16", "model.dropout=0.1"),
        *("model.beam_size=1", "data.hub=null", "data.min_freq=1", "trainer.max_steps=8"),
        *("trainer.batch_size=4", "trainer.save_every=2", "trainer.keep_last=2"),
        *("trainer.eval_every=4", "trainer.eval_batches=2"),
    ],
    "rnn/sst2-lstm-classifier.yaml": [
        *("model.embedding_size=8", "model.hidden_size=8", "model.dropout=0.2"),
        *("tokenizer.kind=char", "data.val_path=null", "data.val_fraction=0.2"),
        *("trainer.max_steps=8", "trainer.batch_size=4", "trainer.save_every=2"),
        *("trainer.keep_last=2", "trainer.eval_every=4"),
    ],
    "gan/digits-dcgan.yaml": [
        *("model.latent_dim=8", "model.generator_features=4", "model.discriminator_features=4"),
        *("model.sample_every=0", "model.num_samples=4", "trainer.max_steps=8"),
        *("trainer.batch_size=8", "trainer.save_every=2", "trainer.keep_last=1"),
    ],
    "rnn/pydoc-prose-or-code-classifier.yaml": [
        *("model.embedding_size=8", "model.hidden_size=8", "model.dropout=0.2"),
        *("data.train_examples=64", "trainer.max_steps=8", "trainer.batch_size=4"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
    ],
    "bow/python-docstrings-topics.yaml": [
        *("model.classifier=mlp", "model.hidden_size=8", "model.dropout=0.3"),
        *("data.max_features=300", "trainer.max_steps=8", "trainer.batch_size=4"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
    ],
    "bert/pydoc-mlm.yaml": [
        *("model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2"),
        *("model.intermediate_size=32", "tokenizer.vocab_size=300", "data.max_length=16"),
        *("trainer.max_steps=8", "trainer.batch_size=4", "trainer.save_every=2"),
        *("trainer.keep_last=2", "trainer.eval_every=4", "trainer.eval_batches=2"),
    ],
    "vision/digits-resnet.yaml": [
        *("model.widths=[4, 8]", "trainer.max_steps=8", "trainer.batch_size=16"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
        "trainer.warmup_steps=1",
    ],
    "vision/digits-cnn.yaml": [
        *("model.conv_channels=[4, 8]", "model.hidden_size=16", "trainer.max_steps=8"),
        *("trainer.batch_size=16", "trainer.save_every=2", "trainer.keep_last=2"),
        *("trainer.eval_every=4", "trainer.warmup_steps=1"),
    ],
    "tabular/bike-sharing-mlp.yaml": [
        *("model.hidden_sizes=[16]", "model.dropout=0.2", "data.test_days=2"),
        *("data.val_days=2", "trainer.max_steps=8", "trainer.batch_size=16"),
        *("trainer.save_every=2", "trainer.keep_last=2", "trainer.eval_every=4"),
        "trainer.warmup_steps=1",
    ],
    "rl/cartpole-dqn.yaml": [
        *("model.hidden_sizes=[16]", "model.learning_starts=20", "model.target_update_every=3"),
        *("model.exploration_steps=50", "model.buffer_size=64", "model.eval_episodes=1"),
        *("trainer.max_steps=12", "trainer.batch_size=8", "trainer.save_every=3"),
        *("trainer.keep_last=2", "trainer.log_every=2"),
    ],
}


def _recipe(name: str, *extra: str) -> Callable[[Path, list], Trainer]:
    """A workload that trains the shipped recipe ``name`` as ``seqkit train`` does."""

    def make(run_dir: Path, callbacks: list) -> Trainer:
        from seqkit.parts.compose import build_job
        from seqkit.parts.resolve import load_recipe
        from seqkit.recipes import RECIPES_DIR

        overrides = [*RECIPE_OVERRIDES[name], *QUIET, *extra]
        recipe = load_recipe(RECIPES_DIR / name, overrides)
        job = build_job(recipe, run_dir)
        return Trainer(job.task, recipe.trainer, output_dir=run_dir, train_data=job.train_data,
                       eval_data=job.eval_data, collate_fn=job.collate_fn,
                       callbacks=[*job.callbacks, *callbacks],
                       train_lengths=job.train_lengths)  # fmt: skip

    return make


_gpt = _recipe("gpt/quickstart-pydoc-char.yaml")


@dataclass
class ReplayWorkload(Workload):
    """Also compares the replay memory and the environment's counters, not only the weights: a
    resume that lost or duplicated a transition ends with a different memory."""

    def final_weights(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        memory = trainer.task.memory.state_dict()
        runner = trainer.task.runner
        extra = {
            **{f"memory.{k}": v.clone() for k, v in memory.items() if isinstance(v, torch.Tensor)},
            "memory.position": torch.tensor(memory["position"]),
            "runner.steps": torch.tensor(runner.steps),
            "runner.episodes": torch.tensor(runner.episodes),
            "task.updates": torch.tensor(trainer.task.updates),
        }
        return {**super().final_weights(trainer), **extra}


def attempt(workload: Workload, run_dir: Path, moment: tuple[str, int] | None) -> int | None:
    """Run (or resume) training in a forked child, killed at ``moment``; returns the signal that
    ended it (None for a normal exit). The finished child writes its final weights."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            torch.set_num_threads(1)
            callbacks: list = [KillAtStep()]
            if moment is not None:
                arm(moment, callbacks)
            trainer = workload.make(run_dir, callbacks)
            trainer.train(resume=trainer.checkpoints.latest() is not None)
            save_file(workload.final_weights(trainer), str(run_dir / "final-weights.safetensors"))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status)
    assert os.WEXITSTATUS(status) == 0, f"child failed at moment {moment} (see stderr)"
    return None


def reference_weights(workload: Workload, tmp_path: Path) -> dict[str, torch.Tensor]:
    """The uninterrupted run, in this process: it also imports everything training touches
    (optimizers, plotting, ...) once, so that the forked children do not each pay for it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the children, so the arithmetic is the same
    try:
        trainer = workload.make(tmp_path / "reference", [])
        trainer.train()
        return workload.final_weights(trainer)
    finally:
        torch.set_num_threads(threads)


def crash_repeatedly(workload: Workload, tmp_path: Path, moments: list[tuple[str, int]]):
    """Kill one run at each moment in turn, resuming each time; then let it finish."""
    expected = reference_weights(workload, tmp_path)
    run = tmp_path / "crashed"
    for moment in moments:
        assert attempt(workload, run, moment) == signal.SIGKILL, f"{moment} was never reached"
        steps = [int(p.name.split("-")[1]) for p in (run / "checkpoints").glob("step-*")]
        for step in steps:  # whatever was killed, every published checkpoint is complete
            assert (run / "checkpoints" / f"step-{step}" / "COMPLETE").is_file(), (moment, step)
    assert attempt(workload, run, None) is None
    resumed = load_file(str(run / "final-weights.safetensors"))
    assert resumed.keys() == expected.keys()
    for key in expected:
        assert torch.equal(resumed[key], expected[key]), key


# Each kill happens in a fresh child that resumed from whatever the previous kill left. The
# "weights"/"state"/"publish" counts are per child, so ("state", 2) is the second state file this
# child writes: mid-way through its first checkpoint.
LM_MOMENTS = [
    ("step", 1),  # before any checkpoint exists: starts over
    ("weights", 1),  # inside the first checkpoint write
    ("state", 2),
    ("publish", 1),  # complete in staging, never published
    ("step", 3),  # right after a checkpoint was published
    ("state", 1),
    ("step", 5),
    ("publish", 1),
    ("rotate", 1),  # publishing step 9 deletes step 3
    ("step", 10),
    ("weights", 1),
    ("state", 3),
    ("step", 11),
    ("publish", 1),  # the final checkpoint
]


def test_language_model_survives_sigkill_at_fourteen_moments(tmp_path):
    crash_repeatedly(Workload(_lm), tmp_path, LM_MOMENTS)


def test_gan_with_two_optimizers_survives_sigkill(tmp_path):
    moments = [("step", 2), ("state", 2), ("publish", 1), ("rotate", 1), ("step", 8)]
    crash_repeatedly(Workload(_gan), tmp_path, moments)


def test_environment_fed_task_survives_sigkill_with_its_replay_buffer(tmp_path):
    moments = [("step", 13), ("state", 3), ("publish", 1), ("step", 33)]
    crash_repeatedly(Workload(_replay), tmp_path, moments)


def test_gpt_recipe_survives_sigkill(tmp_path):
    moments = [("step", 1), ("weights", 1), ("publish", 2), ("step", 7)]
    crash_repeatedly(Workload(_gpt), tmp_path, moments)


def test_recurrent_recipe_survives_sigkill(tmp_path):
    moments = [("weights", 1), ("step", 3), ("state", 2), ("rotate", 1), ("step", 7)]
    crash_repeatedly(Workload(_recipe("rnn/quickstart-pydoc-lstm.yaml")), tmp_path, moments)


def test_transformer_recipe_survives_sigkill(tmp_path):
    moments = [("step", 1), ("state", 1), ("publish", 1), ("step", 5), ("weights", 1)]
    crash_repeatedly(Workload(_recipe("transformer/generated-toy.yaml")), tmp_path, moments)


def test_recurrent_seq2seq_recipe_survives_sigkill(tmp_path):
    """Length-bucketed batches and scheduled sampling's random draws, resumed mid-way."""
    moments = [("step", 1), ("state", 1), ("step", 5)]
    crash_repeatedly(Workload(_recipe("seq2seq/generated-attention.yaml")), tmp_path, moments)


@pytest.mark.parametrize(
    "recipe",
    [
        "rnn/pydoc-prose-or-code-classifier.yaml",
        pytest.param("bow/python-docstrings-topics.yaml", marks=pytest.mark.slow),
        pytest.param("bert/pydoc-mlm.yaml", marks=pytest.mark.slow),
    ],
)
def test_classifier_and_masked_lm_recipes_survive_sigkill(recipe, tmp_path):
    moments = [("step", 1), ("weights", 1), ("step", 3), ("publish", 1), ("step", 7)]
    crash_repeatedly(Workload(_recipe(recipe)), tmp_path, moments)


def test_gan_recipe_survives_sigkill(tmp_path):
    """The real DCGAN: two Adam optimizers (two optimizer state files per checkpoint) and
    BatchNorm running statistics in both networks."""
    moments = [("step", 1), ("weights", 2), ("state", 2), ("publish", 1), ("rotate", 1)]
    crash_repeatedly(Workload(_recipe("gan/digits-dcgan.yaml")), tmp_path, moments)


def test_cnn_recipe_survives_sigkill(tmp_path):
    """The LeNet CNN: dropout, and augmentation drawn from the global random stream on every
    batch."""
    moments = [("state", 1), ("step", 3), ("rotate", 1)]
    crash_repeatedly(Workload(_recipe("vision/digits-cnn.yaml")), tmp_path, moments)


@pytest.mark.slow
def test_resnet_recipe_survives_sigkill(tmp_path):
    """The ResNet: BatchNorm running statistics as well as augmentation."""
    moments = [("weights", 1), ("state", 2), ("publish", 1), ("step", 5)]
    crash_repeatedly(Workload(_recipe("vision/digits-resnet.yaml")), tmp_path, moments)


def _bike(run_dir: Path, callbacks: list) -> Trainer:
    from seqkit.tabular.data import write_synthetic_csv

    table = run_dir.parent / "hour.csv"
    if not table.is_file():
        write_synthetic_csv(table, days=8)
    return _recipe("tabular/bike-sharing-mlp.yaml", f"data.path={table}")(run_dir, callbacks)


def _streaming_gpt(run_dir: Path, callbacks: list) -> Trainer:
    folder = run_dir.parent / "corpus"
    if not folder.is_dir():
        folder.mkdir()
        (folder / "a.txt").write_text("ROMEO:\nBut soft, what light.\n" * 8, encoding="utf-8")
        (folder / "b.txt").write_text("JULIET:\nAy me! O Romeo.\n" * 6, encoding="utf-8")
    extra = (f"data.path={folder}", f"data.cache_dir={run_dir.parent / 'cache'}")
    return _recipe("gpt/shakespeare-char-streaming.yaml", *extra)(run_dir, callbacks)


def _arrow_corpus(run_dir: Path, callbacks: list, recipe: str) -> Trainer:
    """A translation folder or a labelled TSV under ``data.path``, read into cached Arrow rows."""
    corpus = run_dir.parent / "corpus"
    if not corpus.is_dir():
        corpus.mkdir()
        words = ["ein", "zwei", "drei", "vier", "fünf", "haus", "baum", "katze", "hund", "see"]
        lines = [" ".join(words[(i * 7 + j * 3) % 10] for j in range(2 + i % 5)) for i in range(40)]
        for split, rows in (("train", lines[:32]), ("val", lines[32:])):
            (corpus / f"{split}.de").write_text("\n".join(rows) + "\n", encoding="utf-8")
            upper = [row.upper() for row in rows]
            (corpus / f"{split}.en").write_text("\n".join(upper) + "\n", encoding="utf-8")
        labelled = "".join(f"{i % 2}\t{line}\n" for i, line in enumerate(lines))
        (corpus / "labelled.tsv").write_text("label\tsentence\n" + labelled, encoding="utf-8")
    path = corpus if recipe.startswith("seq2seq") else corpus / "labelled.tsv"
    extra = (f"data.path={path}", f"data.cache_dir={run_dir.parent / 'cache'}")
    return _recipe(recipe, *extra)(run_dir, callbacks)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["seq2seq/multi30k-gru.yaml", "rnn/sst2-lstm-classifier.yaml"])
def test_arrow_backed_corpora_survive_sigkill(recipe, tmp_path):
    """Translation pairs and classified texts read from files into cached Arrow rows: a run
    killed at any moment resumes from its rows and its sampler position to the weights of an
    uninterrupted one."""
    moments = [("step", 1), ("weights", 1), ("step", 5), ("publish", 1)]
    workload = Workload(lambda run_dir, callbacks: _arrow_corpus(run_dir, callbacks, recipe))
    crash_repeatedly(workload, tmp_path, moments)


def test_streaming_recipe_survives_sigkill_mid_stream(tmp_path):
    """The streaming module: the stream's position (file, byte, ids past it) comes back from
    the checkpoint, mid-file and past an epoch's end, without replaying the stream."""
    moments = [("step", 1), ("weights", 1), ("step", 5), ("publish", 1), ("step", 9)]
    crash_repeatedly(Workload(_streaming_gpt), tmp_path, moments)


def test_tabular_recipe_survives_sigkill(tmp_path):
    """The bike-sharing MLP with dropout; its table features are fitted on every start."""
    moments = [("step", 1), ("weights", 1), ("publish", 1), ("step", 5), ("rotate", 1)]
    crash_repeatedly(Workload(_bike), tmp_path, moments)


def test_dqn_recipe_survives_sigkill_with_replay_memory_and_environment(tmp_path):
    """The real CartPole DQN: a replay memory that wraps around (68 transitions go into 64
    slots), the target network, the ε schedule, and an environment killed mid-episode."""
    moments = [("step", 2), ("state", 2), ("step", 5), ("publish", 1), ("weights", 2), ("step", 11)]
    crash_repeatedly(ReplayWorkload(_recipe("rl/cartpole-dqn.yaml")), tmp_path, moments)


def test_a_checkpoint_write_that_fails_half_way_leaves_the_previous_one(tmp_path, monkeypatch):
    trainer = _lm(tmp_path, [])
    trainer.config.max_steps = 3
    trainer.train()
    before = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints" / "step-3").iterdir()}

    calls = [0]
    original = trainer_module.save_tree

    def failing_save_tree(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(28, "No space left on device")
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_tree", failing_save_tree)
    trainer.step = 4
    with pytest.raises(OSError, match="No space left"):
        trainer.save_checkpoint()
    assert trainer.checkpoints.latest() == tmp_path / "checkpoints" / "step-3"
    after = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints" / "step-3").iterdir()}
    assert after == before
    monkeypatch.setattr(trainer_module, "save_tree", original)
    assert trainer.save_checkpoint() == tmp_path / "checkpoints" / "step-4"
    assert not list((tmp_path / "checkpoints").glob(".step-*"))
