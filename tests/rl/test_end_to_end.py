"""The rl recipes (dqn and q-learning) end to end: train, resume exactly, evaluate, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from safetensors.torch import load_file

from seqkit.cli import main
from seqkit.errors import UserError
from seqkit.recipes import RECIPES_DIR

DQN = str(RECIPES_DIR / "rl" / "cartpole-dqn.yaml")
Q_LEARNING = str(RECIPES_DIR / "rl" / "frozenlake-q-learning.yaml")
QUIET = ["--set", "trainer.report_to=[]", "--set", "trainer.progress_bar=false"]
TINY_DQN = [
    *QUIET,
    "--set", "model.hidden_sizes=[16]",
    "--set", "model.learning_starts=20",
    "--set", "model.target_update_every=3",
    "--set", "model.exploration_steps=50",
    "--set", "model.eval_episodes=1",
    "--set", "trainer.batch_size=8",
    "--set", "trainer.save_every=4",
    "--set", "trainer.log_every=2",
    "--set", "model.validation_episodes=2",
    "--set", "trainer.eval_every=3",
]  # fmt: skip


def test_dqn_resume_continues_the_same_run(tmp_path):
    """Replay memory, target network, environment and exploration RNG all come back."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert (
        main(["train", DQN, "--output-dir", str(whole), *TINY_DQN, "--set", "trainer.max_steps=10"])
        == 0
    )
    assert (
        main(["train", DQN, "--output-dir", str(split), *TINY_DQN, "--set", "trainer.max_steps=4"])
        == 0
    )
    checkpoint = split / "checkpoints" / "step-4"
    assert (checkpoint / "model-target.safetensors").is_file()
    state = json.loads((checkpoint / "trainer_state.json").read_text())["tree"]["task"]
    assert {"memory", "runner", "generator"} <= state.keys()
    assert not list(checkpoint.glob("*.pkl")) and not list(checkpoint.glob("*.bin"))
    resume = ["train", DQN, "--output-dir", str(split), "--resume", *TINY_DQN]
    assert main([*resume, "--set", "trainer.max_steps=10"]) == 0
    a = load_file(str(whole / "final" / "model.safetensors"))
    b = load_file(str(split / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    for name in ("q", "target"):
        a = load_file(str(whole / "checkpoints" / "step-10" / f"model-{name}.safetensors"))
        b = load_file(str(split / "checkpoints" / "step-10" / f"model-{name}.safetensors"))
        assert all(a[k].equal(b[k]) for k in a)
    # Validation episodes ran at steps 3, 6, 9 and 10 in both runs, with the same returns (and
    # at step 4, where the first half of the split run ended).
    logs = [
        [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for run in (whole, split)
    ]
    returns = [{r["step"]: r["eval/return"] for r in log if "eval/return" in r} for log in logs]
    assert sorted(returns[0]) == [3, 6, 9, 10] and sorted(returns[1]) == [3, 4, 6, 9, 10]
    assert all(returns[0][step] == returns[1][step] for step in returns[0])


def test_dqn_on_a_discrete_world_and_validation_keeps_the_best_policy(tmp_path):
    """Any discrete-action environment by name; states of a discrete world become one-hot."""
    run = tmp_path / "run"
    early = [
        "--set", "trainer.early_stopping_patience=100",
        "--set", "trainer.early_stopping_metric=eval/return",
        "--set", "trainer.early_stopping_mode=max",
    ]  # fmt: skip
    args = ["train", DQN, "--output-dir", str(run), *TINY_DQN, *early]
    assert main([*args, "--set", "data.env=FrozenLake-v1", "--set", "trainer.max_steps=12"]) == 0
    config = json.loads((run / "final" / "config.json").read_text())
    assert config["observation_kind"] == "discrete" and config["observation_size"] == 16
    assert config["env_id"] == "FrozenLake-v1"
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in log if "eval/return" in r]
    assert [r["step"] for r in evaluations] == [3, 6, 9, 12]
    assert all(0 <= r["eval/return"] <= 1 and "eval/return_std" in r for r in evaluations)
    # The saved policy is the one of the first best evaluation (early stopping restores it).
    top = max(r["eval/return"] for r in evaluations)
    best = next(r["step"] for r in evaluations if r["eval/return"] == top)
    kept = load_file(str(run / "checkpoints" / f"step-{best}" / "model-q.safetensors"))
    final = load_file(str(run / "final" / "model.safetensors"))
    assert all(kept[k].equal(final[k]) for k in kept)


def test_q_learning_trains_and_evaluate_prints_mean_and_std(tmp_path, capsys):
    run = tmp_path / "run"
    overrides = ["--set", "trainer.max_steps=50", "--set", "model.eval_episodes=5"]
    assert main(["train", Q_LEARNING, "--output-dir", str(run), *QUIET, *overrides]) == 0
    assert json.loads((run / "final" / "config.json").read_text())["model_type"] == "seqkit-qtable"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "FrozenLake-v1: return" in out and "±" in out and "over 3 greedy episodes" in out
    assert "success_rate" in out
    assert main(["evaluate", str(run), "--video", str(tmp_path / "x.mp4")]) == 2


def test_bad_environments_are_one_line_errors(tmp_path, capsys):
    """Through the real command line once (exit code 2, one line, no traceback), then in-process."""
    run = str(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "seqkit", "train", DQN, "--output-dir", run,
         "--set", "data.env=Pendulum-v1"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqkit: error: Pendulum-v1 has a continuous")
    assert "DQN and Q-learning need discrete actions" in lines[0]
    assert main(["train", DQN, "--output-dir", run, "--set", "data.env=NoSuchEnv-v0"]) == 2
    assert "unknown gymnasium environment 'NoSuchEnv-v0'" in capsys.readouterr().err
    assert main(["train", Q_LEARNING, "--output-dir", run, "--set", "data.env=CartPole-v1"]) == 2
    assert "q-learning needs a discrete state space" in capsys.readouterr().err


def test_old_task_names_still_load_and_a_bare_agent_folder_evaluates(tmp_path, capsys):
    """Recipes (and runs' recipe.yaml) that say task: dqn or q-learning load as the rl task;
    an agent folder copied out of its run is scored in the environment its config names."""
    import shutil

    from seqkit.parts.resolve import load_recipe

    old = tmp_path / "old.yaml"
    old.write_text("task: dqn\nmodel: {hidden_sizes: [8]}\ndata: {env: CartPole-v1}\n")
    recipe = load_recipe(old)
    assert recipe.task == "rl" and recipe.model["architecture"] == "q-network"
    old.write_text("task: q-learning\nmodel: {architecture: q-network}\n")
    try:
        load_recipe(old)
    except UserError as error:
        assert "task q-learning trains model.architecture q-table" in str(error)
    else:
        raise AssertionError("a shorthand's architecture cannot be overridden")
    run = tmp_path / "run"
    overrides = ["--set", "trainer.max_steps=20", "--set", "model.eval_episodes=0"]
    assert main(["train", Q_LEARNING, "--output-dir", str(run), *QUIET, *overrides]) == 0
    bare = shutil.copytree(run / "final", tmp_path / "bare")
    capsys.readouterr()
    assert main(["evaluate", str(bare), "--episodes", "2"]) == 0
    assert "FrozenLake-v1: return" in capsys.readouterr().out
    assert main(["generate", str(bare), "--prompt", "x"]) == 2
    assert "does not generate; use seqkit evaluate" in capsys.readouterr().err
    adam = ["--set", "trainer.optimizer=adam"]
    assert main(["train", Q_LEARNING, "--output-dir", str(tmp_path / "r2"), *QUIET, *adam]) == 2
    assert "q-learning is plain SGD on the TD error" in capsys.readouterr().err
