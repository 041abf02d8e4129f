"""Q-learning's TD rule, the replay memory, the resumable environment and DQN's targets."""

from __future__ import annotations

import pytest
import torch

from seqkit.errors import UserError
from seqkit.rl.envs import EnvironmentRunner, make_env
from seqkit.rl.models import QNetwork, QNetworkConfig, QTable, QTableConfig
from seqkit.rl.replay import ReplayBuffer
from seqkit.rl.task import DQNTask, EpsilonSchedule, QLearningTask
from seqkit.trainer.checkpoint import load_tree, save_tree


def test_one_sgd_step_on_the_td_loss_is_the_q_learning_update():
    table = QTable(QTableConfig(num_states=16, num_actions=4))
    with torch.no_grad():
        table.table.copy_(torch.rand(16, 4))
    before = table.table.detach().clone()
    task = QLearningTask(table, "FrozenLake-v1", gamma=0.9)
    batch = {
        "states": torch.tensor([3, 7]),
        "actions": torch.tensor([1, 2]),
        "rewards": torch.tensor([0.0, 1.0]),
        "next_states": torch.tensor([4, 15]),
        "terminated": torch.tensor([0.0, 1.0]),
        **task.progress(),
    }
    alpha = 0.1
    optimizer = torch.optim.SGD(table.parameters(), lr=alpha)
    task.training_step(task.models, batch, "q")["loss"].backward()
    optimizer.step()
    expected = before.clone()
    # Q(s,a) += α [r + γ max Q(s') − Q(s,a)]; a terminal next state has no future.
    expected[3, 1] += alpha * (0.0 + 0.9 * before[4].max() - before[3, 1])
    expected[7, 2] += alpha * (1.0 - before[7, 2])
    assert torch.allclose(table.table, expected)


def test_replay_buffer_wraps_and_survives_a_checkpoint(tmp_path):
    memory = ReplayBuffer(capacity=5, observation_size=2)
    for i in range(7):
        memory.add(torch.tensor([i, -i]), i % 2, float(i), torch.tensor([i + 1, 0]), i == 6)
    assert len(memory) == 5 and memory.position == 2
    assert sorted(memory.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]  # oldest overwritten
    save_tree(memory.state_dict(), tmp_path, "memory")
    assert not list(tmp_path.glob("*.pkl"))
    copy = ReplayBuffer(capacity=5, observation_size=2)
    copy.load_state_dict(load_tree(tmp_path, "memory"))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = memory.sample(8, g1), copy.sample(8, g2)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_environment_runner_resumes_mid_episode_exactly(tmp_path):
    runner = EnvironmentRunner("FrozenLake-v1", seed=3)  # slippery: the env RNG matters
    actions = torch.Generator().manual_seed(0)
    for _ in range(23):
        runner.step(int(torch.randint(4, (), generator=actions)))
    save_tree(runner.state_dict(), tmp_path, "runner")
    state = actions.get_state()
    continued = [runner.step(int(torch.randint(4, (), generator=actions))) for _ in range(40)]
    resumed = EnvironmentRunner("FrozenLake-v1", seed=99)
    resumed.load_state_dict(load_tree(tmp_path, "runner"))
    actions.set_state(state)
    replayed = [resumed.step(int(torch.randint(4, (), generator=actions))) for _ in range(40)]
    assert continued == replayed
    assert runner.episodes == resumed.episodes


def test_double_dqn_values_the_online_choice_with_the_target_network():
    config = QNetworkConfig(observation_size=4, num_actions=2, hidden_sizes=[8])
    torch.manual_seed(0)
    online, target = QNetwork(config), QNetwork(config)
    task = DQNTask(online, target, "CartPole-v1", double_dqn=True, batch_size=4)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(torch.randn_like(p))  # make the two networks disagree
    batch = {
        "observations": torch.randn(6, 4),
        "actions": torch.randint(0, 2, (6,)),
        "rewards": torch.ones(6),
        "next_observations": torch.randn(6, 4),
        "terminated": torch.tensor([0.0, 0, 0, 0, 0, 1]),
        **task.progress(),
    }
    loss = task.training_step(task.models, batch, "q")["loss"]
    with torch.no_grad():
        choice = online(batch["next_observations"]).argmax(1, keepdim=True)
        next_value = target(batch["next_observations"]).gather(1, choice).squeeze(1)
        targets = 1 + 0.99 * (1 - batch["terminated"]) * next_value
        values = online(batch["observations"]).gather(1, batch["actions"][:, None]).squeeze(1)
    assert torch.allclose(loss, torch.nn.functional.smooth_l1_loss(values, targets))
    task.tau = 0.5
    before = next(target.parameters()).detach().clone()
    task.update_target()  # soft update: halfway towards the online weights
    expected = 0.5 * before + 0.5 * next(online.parameters())
    assert torch.allclose(next(target.parameters()), expected)


def test_epsilon_schedule_is_linear_then_flat():
    schedule = EpsilonSchedule(1.0, 0.1, 100)
    assert schedule(0) == 1.0 and schedule(50) == pytest.approx(0.55) and schedule(500) == 0.1


def test_environment_errors_are_user_errors():
    with pytest.raises(UserError, match="unknown gymnasium environment 'CartPol-v9'"):
        make_env("CartPol-v9")
    with pytest.raises(UserError, match="need discrete actions"):
        make_env("Pendulum-v1")
