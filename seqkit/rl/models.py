"""Action-value functions: a Q-table for tabular Q-learning, a Q-network for DQN.

Both map a state to one value per action, ``Q(s, ·)``, the expected discounted return of taking
each action and acting well afterwards; the greedy policy picks ``argmax_a Q(s, a)``.

- :class:`QTable` (Watkins 1989, "Learning from Delayed Rewards"): one number per (state,
  action) for small discrete worlds such as FrozenLake or Taxi.
- :class:`QNetwork` (Mnih et al. 2015, "Human-level control through deep reinforcement
  learning"): an MLP from an observation vector to the action values, for worlds too large to
  tabulate, such as CartPole's continuous state.

Shape legend: B batch, D observation size, S states, A actions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init

from seqkit.checks import (
    MAX_DEPTH,
    MAX_EPISODES,
    MAX_STEPS,
    MAX_WIDTH,
    check_range,
    check_ranges,
    count,
    probability,
)
from seqkit.errors import UserError
from seqkit.parts.base import ModelBuilder
from seqkit.recipes import Recipe


class QTableConfig(PretrainedConfig):
    """Size of a :class:`QTable` and the environment it was learned on."""

    model_type = "seqkit-qtable"

    num_states: int = 16
    """States S (FrozenLake 4x4 has 16, Taxi 500)."""
    num_actions: int = 4
    """Actions A."""
    env_id: str = "FrozenLake-v1"
    """The gymnasium environment the table belongs to."""


class QTable(PreTrainedModel):
    """``Q(s, ·)`` looked up in an (S, A) table that starts at zero."""

    config_class = QTableConfig
    base_model_prefix = "qtable"
    main_input_name = "states"

    def __init__(self, config: QTableConfig) -> None:
        super().__init__(config)
        self.table = nn.Parameter(torch.zeros(config.num_states, config.num_actions))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # Zero is the usual optimistic-enough start for rewards in [0, 1].
        if isinstance(module, QTable):
            init.zeros_(module.table)

    def forward(self, states: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.table[states]  # (B,) → (B, A)


class QNetworkConfig(PretrainedConfig):
    """Shape of a :class:`QNetwork` and the environment it was trained on."""

    model_type = "seqkit-dqn"

    observation_size: int = 4
    """Input size D (CartPole's 4 numbers; for a discrete world, its number of states)."""
    observation_kind: str = "box"
    """box (a vector) or discrete (a state id, fed as a one-hot vector)."""
    num_actions: int = 2
    """Actions A: one output each."""
    hidden_sizes: list[int] | None = None
    """Widths of the hidden layers (default [128, 128])."""
    env_id: str = "CartPole-v1"
    """The gymnasium environment the network was trained on."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.hidden_sizes is None:
            self.hidden_sizes = [128, 128]


class QNetwork(PreTrainedModel):
    """An MLP ``observation (B, D) → Q-values (B, A)`` with ReLU between layers."""

    config_class = QNetworkConfig
    base_model_prefix = "qnetwork"
    main_input_name = "observations"

    def __init__(self, config: QNetworkConfig) -> None:
        super().__init__(config)
        widths = [config.observation_size, *config.hidden_sizes]
        layers: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], config.num_actions))  # no activation: values
        self.net = nn.Sequential(*layers)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default Linear initialisation (Kaiming-uniform), kept explicit."""
        if isinstance(module, nn.Linear):
            module.reset_parameters()

    def forward(self, observations: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.net(observations)  # (B, D) → (B, A)


# ----------------------------------------------------------------------------- model builders

DEFAULT_EPISODES = 20
"""Greedy episodes ``seqkit evaluate`` plays without ``--episodes``, and the card's default."""
MAX_BUFFER = 10**7
"""Most transitions the replay memory may keep (each is an observation pair in memory)."""


@dataclass
class AgentBuilder(ModelBuilder):
    """What both agents' ``model`` sections hold: how the ``rl`` task explores, discounts and
    reports. The sizes come from the environment (the ``environment`` data module's facts)."""

    gamma: float = 0.99
    """Discount factor of future rewards."""
    epsilon_start: float = 1.0
    """Exploration rate at the start (probability of a random action)."""
    epsilon_end: float = 0.05
    """Exploration rate after exploration_steps environment steps."""
    exploration_steps: int = 10_000
    """Environment steps over which epsilon falls linearly."""
    env_steps_per_update: int = 1
    """Environment steps between two gradient updates (trainer steps)."""
    eval_episodes: int = DEFAULT_EPISODES
    """Greedy episodes played after training for the model card (0 = none)."""
    validation_episodes: int = 0
    """Greedy episodes played at every evaluation (trainer.eval_every updates), logged as
    eval/return; early stopping on eval/return (mode max) then keeps the best policy. Their
    seeds start at 1,000,000, apart from the ones seqkit evaluate plays. 0 = no evaluation."""

    def __post_init__(self) -> None:
        check_ranges(
            "model",
            self,
            {
                "gamma": probability(high_open=False),
                "epsilon_start": probability(high_open=False),
                "epsilon_end": probability(high_open=False),
                "exploration_steps": count(0, MAX_STEPS),
                "env_steps_per_update": count(1, MAX_STEPS),
                "eval_episodes": count(0, MAX_EPISODES),
                "validation_episodes": count(0, MAX_EPISODES),
            },
        )

    def window(self, config: Any) -> tuple[int, int | None]:
        return 1, None  # transitions come from the environment; there is no window to cut

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        return {
            "gamma": self.gamma,
            "epsilon": (self.epsilon_start, self.epsilon_end, self.exploration_steps),
            "env_steps_per_update": self.env_steps_per_update,
            "eval_episodes": self.eval_episodes,
            "seed": recipe.trainer.seed,
        }


@dataclass
class QTableBuilder(AgentBuilder):
    """``model.architecture: q-table``: tabular Q-learning (the ``q-learning`` shorthand)."""

    heads: ClassVar[dict[str, type]] = {"rl": QTable}
    shape_fields: ClassVar[dict[str, str]] = {}
    tags: ClassVar[tuple[str, ...]] = ("q-learning",)

    def config(self, task: str, facts: dict[str, Any]) -> QTableConfig:
        if facts["observation_kind"] != "discrete":
            raise UserError(
                f"q-learning needs a discrete state space to tabulate; {facts['env_id']} has "
                "continuous observations (use model.architecture q-network: the dqn task)"
            )
        return QTableConfig(
            num_states=facts["observation_size"],
            num_actions=facts["num_actions"],
            env_id=facts["env_id"],
        )

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        """Also refuses a trainer section that would not make SGD the TD rule."""
        trainer = recipe.trainer
        if trainer.optimizer != "sgd" or trainer.momentum != 0 or trainer.weight_decay != 0:
            raise UserError(
                "q-learning is plain SGD on the TD error: set trainer.optimizer=sgd, "
                "trainer.momentum=0 and trainer.weight_decay=0 (trainer.lr is the step size α)"
            )
        if trainer.max_grad_norm is not None:
            raise UserError(
                "q-learning needs trainer.max_grad_norm=null (clipping changes the TD rule)"
            )
        return super().task_settings(recipe)


@dataclass
class QNetworkBuilder(AgentBuilder):
    """``model.architecture: q-network``: DQN, optionally Double DQN (the ``dqn`` shorthand)."""

    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """Widths of the Q-network's hidden layers."""
    buffer_size: int = 10_000
    """Transitions the replay memory keeps."""
    learning_starts: int = 1_000
    """Random-policy transitions collected before the first update."""
    target_update_every: int = 500
    """Updates between target-network syncs."""
    tau: float = 1.0
    """1 = hard copy at each sync; < 1 = soft (Polyak) update θ⁻ ← τθ + (1 − τ)θ⁻."""
    double_dqn: bool = False
    """Choose the next action with the online network, value it with the target one."""

    heads: ClassVar[dict[str, type]] = {"rl": QNetwork}
    shape_fields: ClassVar[dict[str, str]] = {"hidden_sizes": "hidden_sizes"}
    tags: ClassVar[tuple[str, ...]] = ("dqn",)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(
            "model",
            self,
            {
                "buffer_size": count(1, MAX_BUFFER),
                "learning_starts": count(0, MAX_STEPS),
                "target_update_every": count(1, MAX_STEPS),
                "tau": probability(low_open=True, high_open=False),
            },
        )
        check_range("model.hidden_sizes (its length)", len(self.hidden_sizes), 0, MAX_DEPTH)
        for i, width in enumerate(self.hidden_sizes):
            check_range(f"model.hidden_sizes[{i}]", width, 1, MAX_WIDTH, integer=True)

    def config(self, task: str, facts: dict[str, Any]) -> QNetworkConfig:
        return QNetworkConfig(
            observation_size=facts["observation_size"],
            observation_kind=facts["observation_kind"],
            num_actions=facts["num_actions"],
            hidden_sizes=list(self.hidden_sizes),
            env_id=facts["env_id"],
        )

    def task_settings(self, recipe: Recipe) -> dict[str, Any]:
        return {
            **super().task_settings(recipe),
            "buffer_size": self.buffer_size,
            "batch_size": recipe.trainer.batch_size,
            "learning_starts": self.learning_starts,
            "target_update_every": self.target_update_every,
            "tau": self.tau,
            "double_dqn": self.double_dqn,
        }
