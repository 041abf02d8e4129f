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

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init


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
