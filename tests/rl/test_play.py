"""Greedy play: GIF recording, a missing renderer, and validation episodes during training."""

from __future__ import annotations

import sys
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image

from seqkit.cli import main
from seqkit.rl.models import QNetwork, QNetworkConfig, QTable, QTableConfig
from seqkit.rl.play import play_episodes
from seqkit.rl.task import VALIDATION_SEEDS, DQNTask, ValidationEpisodes

CORRIDOR = "SeqkitTest/Corridor-v0"


class Corridor(gym.Env):
    """Four cells in a row; reach the right end. Renders itself with numpy (no pygame)."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Discrete(4)
        self.action_space = gym.spaces.Discrete(2)  # 0 = left, 1 = right
        self.render_mode = render_mode
        self.position = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self.position, {}

    def step(self, action):
        self.position = max(0, min(3, self.position + (1 if action == 1 else -1)))
        done = self.position == 3
        return self.position, float(done), done, False, {}

    def render(self):
        frame = np.zeros((8, 32, 3), dtype=np.uint8)
        frame[:, self.position * 8 : (self.position + 1) * 8] = 255  # the agent's cell
        return frame


if CORRIDOR not in gym.envs.registry:
    gym.register(CORRIDOR, entry_point=Corridor, max_episode_steps=20)


def test_evaluate_writes_a_gif_of_one_greedy_episode(tmp_path, capsys):
    table = QTable(QTableConfig(num_states=4, num_actions=2, env_id=CORRIDOR))
    with torch.no_grad():
        table.table[:, 1] = 1.0  # always step right: three steps to the goal
    table.save_pretrained(tmp_path / "agent")
    gif = tmp_path / "episode.gif"
    assert main(["evaluate", str(tmp_path / "agent"), "--episodes", "2", "--video", str(gif)]) == 0
    out = capsys.readouterr().out
    assert "return 1.00 ± 0.00 over 2 greedy episodes" in out
    assert "(4 frames)" in out  # the reset frame and one per step
    with Image.open(gif) as image:
        assert image.n_frames == 4
        image.seek(3)
        last = np.asarray(image.convert("RGB"))
    assert last[:, 24:].min() == 255 and last[:, :24].max() == 0  # the agent at the goal
    # An existing file is never overwritten.
    assert main(["evaluate", str(tmp_path / "agent"), "--video", str(gif)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_video_without_a_renderer_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    QNetwork(QNetworkConfig(hidden_sizes=[8])).save_pretrained(tmp_path / "agent")
    monkeypatch.setitem(sys.modules, "pygame", None)  # as if pygame were not installed
    gif = tmp_path / "cartpole.gif"
    assert main(["evaluate", str(tmp_path / "agent"), "--episodes", "1", "--video", str(gif)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("seqkit: error: rendering CartPole-v1 needs a package") and "\n" not in err
    )
    assert not gif.exists()


def test_validation_episodes_are_greedy_play_that_leaves_training_alone():
    config = QNetworkConfig(observation_size=4, num_actions=2, hidden_sizes=[8])
    torch.manual_seed(0)
    online = QNetwork(config)
    task = DQNTask(online, QNetwork(config), "CartPole-v1", seed=3, batch_size=4)
    episodes = ValidationEpisodes(3)
    assert len(episodes) == 3 and [episodes[i] for i in range(3)] == [
        VALIDATION_SEEDS + i for i in range(3)
    ]
    generator, runner = task.generator.get_state(), task.runner.state_dict()
    metrics = task.evaluation_step(task.models, torch.tensor([episodes[i] for i in range(3)]))
    expected = play_episodes(online, "CartPole-v1", 3, seed=VALIDATION_SEEDS)
    assert float(metrics["return"][0]) == sum(expected) and metrics["return"][1] == 3
    assert torch.equal(task.generator.get_state(), generator)
    assert task.runner.state_dict()["episode_seed"] == runner["episode_seed"]
    mean = sum(expected) / 3
    summary = task.summarize(
        {"return": mean, "return_squared": float(metrics["return_squared"][0]) / 3}
    )
    assert summary["return_std"] == pytest.approx(np.std(expected), rel=1e-6, abs=1e-6)
    assert "return_squared" not in summary


def test_hard_target_update_is_an_exact_copy():
    config = QNetworkConfig(observation_size=4, num_actions=2, hidden_sizes=[8])
    online, target = QNetwork(config), QNetwork(config)
    task = DQNTask(online, target, "CartPole-v1", batch_size=4, tau=1.0)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p) * 1e-3)  # small steps: where rounding would show
    task.update_target()
    assert all(
        torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters(), strict=True)
    )
