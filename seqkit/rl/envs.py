"""Gymnasium environments for the agents: creation with clear errors, and a resumable runner.

:class:`EnvironmentRunner` steps one environment, resets it at the end of each episode with a
seed drawn from its own generator, and can save and restore exactly where it is. Environments
hold arbitrary Python state (a cart's position, a time-limit counter, a taxi's passenger), so
the runner does not try to serialise them: it stores the current episode's seed and the actions
taken since, and restores by resetting with that seed and replaying the actions. Gymnasium
environments are deterministic given their seed and actions, so this rebuilds the same state
and the same environment RNG for any environment, with nothing but integers in the checkpoint.
The environment RNG's state is stored as well and set after the replay, as a belt to the braces.

:class:`EnvironmentData` is the ``environment`` data module (:mod:`seqkit.parts`): for an agent
the environment is the data. It names the sizes the agent's model needs and makes the runner
the task draws its batches from (:meth:`seqkit.trainer.tasks.Task.train_batches`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from seqkit.errors import UserError
from seqkit.parts.base import DataModule, Prepared
from seqkit.recipes import DataSection

RECENT_EPISODES = 20
"""Completed episodes whose returns make the logged running mean."""


def make_env(env_id: str, render_mode: str | None = None, discrete_actions: bool = True):
    """``gymnasium.make(env_id)`` with one-line errors for unknown ids and unusable spaces."""
    import gymnasium as gym

    if env_id not in gym.envs.registry:
        close = [name for name in gym.envs.registry if env_id.lower() in name.lower()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown gymnasium environment {env_id!r}{hint}")
    try:
        env = gym.make(env_id, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as error:
        raise UserError(f"{env_id} needs a package that is not installed: {error}") from None
    except gym.error.Error as error:
        raise UserError(f"cannot create {env_id}: {error}") from None
    if discrete_actions and not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise UserError(
            f"{env_id} has a continuous or structured action space ({env.action_space}); "
            "DQN and Q-learning need discrete actions (one Q-value per action)"
        )
    if not isinstance(env.observation_space, (gym.spaces.Discrete, gym.spaces.Box)):
        env.close()
        raise UserError(
            f"{env_id} has observations of type {type(env.observation_space).__name__}; "
            "seqkit's agents read Discrete or Box observations"
        )
    return env


def observation_size(env) -> tuple[str, int]:
    """``("discrete", n)`` for n states, or ``("box", d)`` for a d-dimensional vector."""
    import gymnasium as gym

    space = env.observation_space
    if isinstance(space, gym.spaces.Discrete):
        return "discrete", int(space.n)
    return "box", int(np.prod(space.shape))


def encode_observation(observation: Any, kind: str, size: int) -> torch.Tensor:
    """A network's input: a one-hot vector for a discrete state, the flattened vector else."""
    if kind == "discrete":
        vector = torch.zeros(size)
        vector[int(observation)] = 1.0
        return vector
    return torch.as_tensor(np.asarray(observation, dtype=np.float32).reshape(-1))


class EnvironmentRunner:
    """One environment, stepped transition by transition, that can save where it is."""

    def __init__(self, env_id: str, seed: int):
        self.env = make_env(env_id)
        self.seeds = np.random.default_rng(seed)  # one fresh seed per episode
        self.episode_seed = 0
        self.episode_actions: list[int] = []
        self.episode_return = 0.0
        self.episodes = 0
        self.steps = 0
        self.recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.observation = self._reset()

    def _reset(self) -> Any:
        self.episode_seed = int(self.seeds.integers(2**31 - 1))
        self.episode_actions = []
        self.episode_return = 0.0
        observation, _ = self.env.reset(seed=self.episode_seed)
        return observation

    def step(self, action: int) -> tuple[Any, int, float, Any, bool]:
        """Take ``action``; returns ``(obs, action, reward, next_obs, terminated)``.

        ``terminated`` (a terminal state: no future value) is kept apart from truncation (a
        time limit: the future still has value), so a bootstrapped target treats them right.
        Starting the next episode is automatic.
        """
        observation = self.observation
        next_observation, reward, terminated, truncated, _ = self.env.step(action)
        self.episode_actions.append(int(action))
        self.episode_return += float(reward)
        self.steps += 1
        if terminated or truncated:
            self.recent_returns.append(self.episode_return)
            self.episodes += 1
            self.observation = self._reset()
        else:
            self.observation = next_observation
        return observation, int(action), float(reward), next_observation, bool(terminated)

    def mean_recent_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else 0.0

    def state_dict(self) -> dict:
        return {
            "seeds": self.seeds.bit_generator.state,
            "episode_seed": self.episode_seed,
            "episode_actions": torch.tensor(self.episode_actions, dtype=torch.long),
            "episode_return": self.episode_return,
            "episodes": self.episodes,
            "steps": self.steps,
            "recent_returns": list(self.recent_returns),
            "env_rng": self.env.unwrapped.np_random.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.seeds.bit_generator.state = state["seeds"]
        self.episode_seed = state["episode_seed"]
        observation, _ = self.env.reset(seed=self.episode_seed)
        actions = state["episode_actions"].tolist()
        for action in actions:  # rebuild the episode's state by replaying it
            observation, *_ = self.env.step(action)
        self.env.unwrapped.np_random.bit_generator.state = state["env_rng"]
        self.observation = observation
        self.episode_actions = actions
        self.episode_return = state["episode_return"]
        self.episodes = state["episodes"]
        self.steps = state["steps"]
        self.recent_returns = deque(state["recent_returns"], maxlen=RECENT_EPISODES)


# ----------------------------------------------------------------------------- the data module

VALIDATION_SEEDS = 1_000_000
"""Validation episode i is reset with seed VALIDATION_SEEDS + i: never one of the seeds
``seqkit evaluate`` plays (0, 1, 2, ...), so the policy chosen on them is measured on others."""


class ValidationEpisodes(Dataset):
    """The Trainer's evaluation set for an agent: item i is the seed of greedy episode i."""

    def __init__(self, episodes: int, first_seed: int = VALIDATION_SEEDS):
        self.episodes = episodes
        self.first_seed = first_seed

    def __len__(self) -> int:
        return self.episodes

    def __getitem__(self, index: int) -> int:
        return self.first_seed + index


@dataclass
class EnvironmentSection(DataSection):
    """The ``data`` section of an agent's recipe: the environment is the data."""

    env: str = "CartPole-v1"
    """A gymnasium environment id with a discrete action space."""


class EnvironmentData(DataModule):
    """``data.module: environment``: a gymnasium environment with discrete actions.

    Facts: ``env_id``, ``observation_kind`` and ``observation_size`` (:func:`observation_size`),
    ``num_actions``, and ``env``: the :class:`EnvironmentRunner` (seeded with
    ``trainer.seed``) the task acts in. Evaluation data is the seeds of the greedy validation
    episodes the recipe's ``model.validation_episodes`` asks for (none by default)."""

    Section = EnvironmentSection
    no_data_files = (
        "--data is not supported for an agent; seqkit evaluate RUN plays greedy episodes "
        "in its environment (--episodes N)"
    )

    @cached_property
    def runner(self) -> EnvironmentRunner:
        """One environment, made once: the facts are asked for more than once."""
        return EnvironmentRunner(self.data.env, self.recipe.trainer.seed)

    def facts(self, tokenizer: Any) -> dict[str, Any]:
        env = self.runner.env  # a bad id fails here, before the run directory is made
        kind, size = observation_size(env)
        return {
            "env_id": self.data.env,
            "observation_kind": kind,
            "observation_size": size,
            "num_actions": int(env.action_space.n),
            "env": self.runner,
        }

    def prepare(self, tokenizer: Any, window: int, most: int | None) -> Prepared:
        facts = self.facts(tokenizer)
        # Validation is the agent's setting (model.validation_episodes, checked by its builder),
        # but its episodes are the data the Trainer's evaluation streams.
        episodes = (self.recipe.model or {}).get("validation_episodes", 0)
        return Prepared(
            train_data=None,  # the environment feeds the task
            eval_data=ValidationEpisodes(episodes) if episodes else None,
            summary={
                "environment": f"{facts['env_id']} ({facts['observation_kind']} observations of "
                f"size {facts['observation_size']}, {facts['num_actions']} actions)"
            },
        )

    def card_tags(self, tokenizer: Any) -> list[str]:
        return ["reinforcement-learning", self.data.env]

    def datasets_for_card(self) -> list[str]:
        return []
