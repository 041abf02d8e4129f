"""Environment-fed tasks on the one Trainer: tabular Q-learning and DQN.

Both draw their own batches (:meth:`~seqkit.trainer.tasks.Task.train_batches`): the agent acts
in the environment with an ε-greedy policy, and the transitions it sees become the "data". One
Trainer step is one gradient update; between updates the agent takes ``env_steps_per_update``
environment steps.

**Q-learning** (Watkins 1989) moves Q(s, a) towards the bootstrapped target after every step::

    Q(s, a) ← Q(s, a) + α [r + γ max_a' Q(s', a') − Q(s, a)]

which is exactly one plain SGD step with learning rate α on ½ (Q(s, a) − target)² with the target
held fixed: the bridge to DQN, which does the same with a network, a minibatch and a few tricks.

**DQN** (Mnih et al. 2015) adds what makes it stable with a neural network: a replay memory
sampled uniformly, a *target network* (a lagging copy used for the bootstrap, synced every N
updates or tracked softly with rate τ), and the Huber loss, which turns large TD errors' squared
gradients into constant ones. **Double DQN** (van Hasselt, Guez & Silver 2016) picks the next
action with the online network and values it with the target network, curbing the
overestimation of ``max``.

**Validation episodes.** A DQN's greedy policy can be excellent one moment and collapse a few
thousand updates later (the "policy churn" every CartPole practitioner meets). With
``validation_episodes`` set, the Trainer's evaluation plays that many greedy episodes every
``trainer.eval_every`` updates (:class:`ValidationEpisodes`, seeds far from the ones ``seqkit
evaluate`` uses) and reports ``eval/return``; early stopping on it (mode ``max``) keeps the best
policy, as Stable-Baselines3's ``EvalCallback`` does with its best model.

Everything resume needs beyond the weights (the target network is a model, so the Trainer saves
it) goes through :meth:`state_dict`: the replay memory as tensors, the environment's episode and
RNG, the exploration RNG and the counters. A resumed CPU run continues the same run.
"""

from __future__ import annotations

import copy
import logging
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from seqkit.errors import UserError
from seqkit.rl.envs import (
    VALIDATION_SEEDS,
    EnvironmentRunner,
    ValidationEpisodes,
    encode_observation,
    make_env,
)
from seqkit.rl.models import DEFAULT_EPISODES, QNetwork, QNetworkConfig, QTable
from seqkit.rl.play import greedy_policy, play_episode
from seqkit.rl.replay import ReplayBuffer
from seqkit.trainer.tasks import Models, Task

__all__ = [
    "VALIDATION_SEEDS",
    "DQNTask",
    "EnvironmentTask",
    "EpsilonSchedule",
    "QLearningTask",
    "ValidationEpisodes",
]

logger = logging.getLogger(__name__)


@dataclass
class EpsilonSchedule:
    """ε falls linearly from ``start`` to ``end`` over ``steps`` environment steps, then stays."""

    start: float = 1.0
    end: float = 0.05
    steps: int = 10_000

    def __call__(self, env_step: int) -> float:
        if env_step >= self.steps:
            return self.end
        return self.start + env_step / self.steps * (self.end - self.start)


class EnvironmentTask(Task):
    """The recipe's ``task: rl``: what both agents share (the environment, ε-greedy acting,
    greedy evaluation, resumable state). :meth:`for_model` picks the agent's task by its model:
    :class:`QLearningTask` for a :class:`~seqkit.rl.models.QTable`, :class:`DQNTask` for a
    :class:`~seqkit.rl.models.QNetwork`.

    ``env`` is the :class:`~seqkit.rl.envs.EnvironmentRunner` to act in (the ``environment``
    data module's), a gymnasium id to make one from, or None for a model read back only to be
    saved, loaded or scored (the model's config names its environment).
    """

    default_data = "environment"
    pipeline_tag = "reinforcement-learning"
    evaluates_without_data = True  # seqkit evaluate plays greedy episodes

    def __init__(
        self,
        models,
        env: EnvironmentRunner | str | None,
        seed: int,
        epsilon: EpsilonSchedule | None,
        gamma: float,
        eval_episodes: int = 0,
    ):
        super().__init__(models)
        self.runner = EnvironmentRunner(env, seed) if isinstance(env, str) else env
        config = self.models["q"].config
        self.env_id: str = config.env_id
        if isinstance(config, QNetworkConfig):
            self.kind, self.size = config.observation_kind, config.observation_size
        else:
            self.kind, self.size = "discrete", config.num_states
        self.num_actions = int(config.num_actions)
        self.epsilon = epsilon or EpsilonSchedule()
        self.gamma = gamma
        self.eval_episodes = eval_episodes
        # Exploration and minibatch sampling draw from their own generator, saved with the task,
        # so neither depends on (or disturbs) the global RNG the Trainer restores.
        self.generator = torch.Generator().manual_seed(seed)
        self.updates = 0

    @classmethod
    def for_model(cls, model: torch.nn.Module, facts: Mapping[str, Any]) -> EnvironmentTask:
        env = facts.get("env")
        if env is not None and facts.get("env_id") != model.config.env_id:
            raise UserError(
                f"the recipe's environment is {facts.get('env_id')} but the agent was trained "
                f"on {model.config.env_id}"
            )
        common = {
            "seed": facts.get("seed", 0),
            "gamma": facts.get("gamma", 0.99),
            "epsilon": EpsilonSchedule(*facts["epsilon"]) if "epsilon" in facts else None,
            "env_steps_per_update": facts.get("env_steps_per_update", 1),
            "eval_episodes": facts.get("eval_episodes", 0),
        }
        if isinstance(model, QTable):
            return QLearningTask(model, env, **common)
        dqn = ("buffer_size", "batch_size", "learning_starts", "target_update_every", "tau")
        # The target network starts as a copy: deepcopy draws nothing from the global RNG.
        target = copy.deepcopy(model)
        return DQNTask(
            model,
            target,
            env,
            **common,
            **{k: facts[k] for k in (*dqn, "double_dqn") if k in facts},
        )

    def greedy_action(self, observation) -> int:
        raise NotImplementedError

    def act(self) -> tuple:
        """One ε-greedy environment step; returns the transition."""
        epsilon = self.epsilon(self.runner.steps)
        if float(torch.rand((), generator=self.generator)) < epsilon:
            action = int(torch.randint(self.num_actions, (), generator=self.generator))
        else:
            action = self.greedy_action(self.runner.observation)
        return self.runner.step(action)

    def progress(self) -> dict[str, torch.Tensor]:
        """Scalars logged with the loss: exploration and how well the agent is doing."""
        return {
            "epsilon": torch.tensor(self.epsilon(self.runner.steps)),
            "episode_return": torch.tensor(self.runner.mean_recent_return()),
            "env_steps": torch.tensor(float(self.runner.steps)),
            "episodes": torch.tensor(float(self.runner.episodes)),
        }

    def evaluation_step(self, models: Models, batch) -> dict[str, tuple[torch.Tensor, float]]:
        """Greedy episodes, one per seed in ``batch``, in an environment of their own.

        The policy is a plain argmax (no random tie-breaking), so evaluating draws nothing from
        the training generator or the training environment: a run with validation takes the same
        training steps as one without.
        """
        if getattr(self, "_validation_env", None) is None:
            self._validation_env = make_env(self.env_id)
        policy = greedy_policy(models["q"], self._validation_env)
        returns = torch.tensor(
            [play_episode(self._validation_env, policy, int(seed)) for seed in batch]
        )
        return {
            "return": (returns.sum(), len(returns)),
            "return_squared": ((returns**2).sum(), len(returns)),
        }

    def summarize(self, metrics: dict[str, float]) -> dict[str, float]:
        """The standard deviation of the validation return, from its first two moments."""
        if "return" in metrics and "return_squared" in metrics:
            variance = max(metrics.pop("return_squared") - metrics["return"] ** 2, 0.0)
            metrics["return_std"] = variance**0.5
        return metrics

    def state_dict(self) -> dict:
        return {
            "runner": self.runner.state_dict(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.runner.load_state_dict(state["runner"])
        self.generator.set_state(state["generator"])
        self.updates = state["updates"]

    def save_extras(self, folder: Path, run_dir: Path | None) -> dict[str, float]:
        """The mean return of ``eval_episodes`` greedy episodes of the saved policy, for the
        model card."""
        if not self.eval_episodes:
            return {}
        metrics = greedy_metrics(self.models["q"], self.env_id, self.eval_episodes, seed=0)
        shown = f"{metrics['mean_return']:.2f} ± {metrics['std_return']:.2f}"
        logger.info(f"greedy return over {self.eval_episodes} episodes: {shown}")
        return metrics

    def extra_evaluation(self, tokenizer: Any, eval_data: Any, options: Any) -> dict[str, float]:
        """``--episodes`` greedy episodes (seeds ``--seed`` onwards): mean ± std return, and
        for a table the success rate; ``--video FILE.gif`` records one."""
        from seqkit.outputs import check_new_file
        from seqkit.rl.play import record_gif

        episodes = getattr(options, "episodes", None)
        episodes = DEFAULT_EPISODES if episodes is None else episodes
        if episodes < 1:
            raise UserError(f"--episodes must be at least 1, got {episodes}")
        video = getattr(options, "video", None)
        if video:  # checked before the episodes are played
            check_new_file(
                video,
                overwrite=getattr(options, "overwrite", False),
                option="--video",
                suffixes=(".gif",),
            )
        seed = getattr(options, "seed", 0) or 0
        model = self.models["q"]
        metrics = greedy_metrics(model, self.env_id, episodes, seed=seed)
        print(
            f"{self.env_id}: return {metrics['mean_return']:.2f} ± {metrics['std_return']:.2f} "
            f"over {episodes} greedy episodes"
        )
        if video:
            frames = record_gif(model, self.env_id, Path(video), seed=seed, overwrite=True)
            print(f"wrote {video} ({frames} frames)")
        return metrics


def greedy_metrics(model, env_id: str, episodes: int, seed: int = 0) -> dict[str, float]:
    """Mean and std of the return over greedy episodes (and the success rate for a table)."""
    from seqkit.rl.play import play_episodes

    returns = play_episodes(model, env_id, episodes, seed=seed)
    metrics = {
        "mean_return": statistics.fmean(returns),
        "std_return": statistics.pstdev(returns),
        "episodes": episodes,
    }
    if isinstance(model, QTable):
        metrics["success_rate"] = sum(r > 0 for r in returns) / episodes
    return metrics


class QLearningTask(EnvironmentTask):
    """Tabular Q-learning: each update is the TD rule on the last ``env_steps_per_update``
    transitions (1 = Watkins's online algorithm). Train it with plain SGD at lr = α."""

    def __init__(
        self,
        table: QTable,
        env: EnvironmentRunner | str | None,
        *,
        seed: int = 0,
        gamma: float = 0.99,
        epsilon: EpsilonSchedule | None = None,
        env_steps_per_update: int = 1,
        eval_episodes: int = 0,
    ):
        super().__init__({"q": table}, env, seed, epsilon, gamma, eval_episodes)
        self.env_steps_per_update = env_steps_per_update

    def greedy_action(self, observation) -> int:
        values = self.model.table[int(observation)].detach()
        # Break ties at random: an all-zero row early on must not always pick action 0.
        best = torch.nonzero(values == values.max()).flatten()
        return int(best[torch.randint(len(best), (), generator=self.generator)])

    def train_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            steps = [self.act() for _ in range(self.env_steps_per_update)]
            s, a, r, s2, done = zip(*steps, strict=True)
            self.updates += 1
            yield {
                "states": torch.tensor(s, dtype=torch.long),
                "actions": torch.tensor(a, dtype=torch.long),
                "rewards": torch.tensor(r, dtype=torch.float),
                "next_states": torch.tensor(s2, dtype=torch.long),
                "terminated": torch.tensor(done, dtype=torch.float),
                **self.progress(),
            }

    def num_targets(self, batch) -> int:
        return 1  # the loss is a sum over transitions: each moves its entry by α·δ

    def training_step(self, models: Models, batch, optimizer_name: str) -> dict[str, torch.Tensor]:
        table = models["q"]
        with torch.no_grad():  # the target is held fixed: a semi-gradient, as in the TD rule
            best_next = table(batch["next_states"]).max(dim=1).values
            target = batch["rewards"] + self.gamma * (1 - batch["terminated"]) * best_next
        chosen = table(batch["states"]).gather(1, batch["actions"][:, None]).squeeze(1)
        td_error = chosen - target
        return {
            "loss": 0.5 * (td_error**2).sum(),  # gradient: δ for each visited (s, a)
            **{k: batch[k] for k in ("epsilon", "episode_return", "env_steps", "episodes")},
        }


class DQNTask(EnvironmentTask):
    """DQN with replay memory, a target network, ε-greedy exploration and the Huber loss."""

    def __init__(
        self,
        online: QNetwork,
        target: QNetwork,
        env: EnvironmentRunner | str | None,
        *,
        seed: int = 0,
        gamma: float = 0.99,
        epsilon: EpsilonSchedule | None = None,
        eval_episodes: int = 0,
        buffer_size: int = 10_000,
        batch_size: int = 64,
        learning_starts: int = 1_000,
        env_steps_per_update: int = 1,
        target_update_every: int = 500,
        tau: float = 1.0,
        double_dqn: bool = False,
    ):
        target.load_state_dict(online.state_dict())
        target.requires_grad_(False)
        super().__init__({"q": online, "target": target}, env, seed, epsilon, gamma, eval_episodes)
        self.memory = ReplayBuffer(buffer_size, self.size)
        self.batch_size = batch_size
        self.learning_starts = max(learning_starts, batch_size)
        self.env_steps_per_update = env_steps_per_update
        self.target_update_every = target_update_every
        self.tau = tau
        self.double_dqn = double_dqn

    def configure_optimizers(self, build) -> dict[str, torch.optim.Optimizer]:
        return {"q": build(self.models["q"])}  # the target network is never trained

    def _encode(self, observation) -> torch.Tensor:
        return encode_observation(observation, self.kind, self.size)

    @torch.no_grad()
    def greedy_action(self, observation) -> int:
        online = self.models["q"]
        device = next(online.parameters()).device
        return int(online(self._encode(observation)[None].to(device)).argmax(dim=1))

    def _remember(self, transition: tuple) -> None:
        s, a, r, s2, terminated = transition
        self.memory.add(self._encode(s), a, r, self._encode(s2), terminated)

    @torch.no_grad()
    def update_target(self) -> None:
        """Hard copy (τ = 1) or Polyak averaging θ⁻ ← τθ + (1 − τ)θ⁻ of the online weights."""
        pairs = zip(self.models["target"].parameters(), self.models["q"].parameters(), strict=True)
        for target_param, online_param in pairs:
            target_param.lerp_(online_param, self.tau)  # τ = 1 is an exact copy

    def train_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        while len(self.memory) < self.learning_starts:  # warm-up: fill the memory first
            self._remember(self.act())
        while True:
            # Sync after the update that made the count a multiple (checked here, before the
            # next batch, because the optimizer steps after this generator yields).
            if self.updates and self.updates % self.target_update_every == 0:
                self.update_target()
            for _ in range(self.env_steps_per_update):
                self._remember(self.act())
            self.updates += 1
            yield {**self.memory.sample(self.batch_size, self.generator), **self.progress()}

    def num_targets(self, batch) -> int:
        return batch["actions"].shape[0]

    def training_step(self, models: Models, batch, optimizer_name: str) -> dict[str, torch.Tensor]:
        online, target = models["q"], models["target"]
        with torch.no_grad():
            next_values = target(batch["next_observations"])  # (B, A)
            if self.double_dqn:  # choose with the online network, value with the target
                choice = online(batch["next_observations"]).argmax(dim=1, keepdim=True)
                best_next = next_values.gather(1, choice).squeeze(1)
            else:
                best_next = next_values.max(dim=1).values
            targets = batch["rewards"] + self.gamma * (1 - batch["terminated"]) * best_next
        values = online(batch["observations"]).gather(1, batch["actions"][:, None]).squeeze(1)
        return {
            "loss": F.smooth_l1_loss(values, targets),  # Huber loss, δ = 1
            "q_value": values.detach().mean(),
            **{k: batch[k] for k in ("epsilon", "episode_return", "env_steps", "episodes")},
        }

    def state_dict(self) -> dict:
        return {**super().state_dict(), "memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.memory.load_state_dict(state["memory"])
