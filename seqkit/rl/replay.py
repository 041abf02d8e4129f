"""Experience replay (Lin 1992; Mnih et al. 2015): a ring buffer of transitions.

Sampling minibatches uniformly from many past transitions breaks the correlation between
consecutive steps that would make Q-learning with a neural network unstable, and reuses each
transition many times. The buffer is preallocated tensors, so adding is a few index writes and
sampling one gather per field, and its :meth:`ReplayBuffer.state_dict` is plain tensors that
the checkpoint stores in safetensors (never a pickle).
"""

from __future__ import annotations

import torch

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated")


class ReplayBuffer:
    """The newest ``capacity`` transitions ``(s, a, r, s', terminated)``."""

    def __init__(self, capacity: int, observation_size: int):
        self.capacity = capacity
        self.observations = torch.zeros(capacity, observation_size)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.next_observations = torch.zeros(capacity, observation_size)
        self.terminated = torch.zeros(capacity)
        self.position = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, observation, action: int, reward: float, next_observation, terminated: bool):
        i = self.position
        self.observations[i] = observation
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_observations[i] = next_observation
        self.terminated[i] = float(terminated)
        self.position = (i + 1) % self.capacity  # overwrite the oldest once full
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A uniform minibatch (with replacement) drawn with ``generator``."""
        index = torch.randint(0, self.size, (batch_size,), generator=generator)
        return {name: getattr(self, name)[index] for name in FIELDS}

    def state_dict(self) -> dict:
        # Only the filled rows: a checkpoint early in training stays small.
        return {
            "capacity": self.capacity,
            "position": self.position,
            "size": self.size,
            **{name: getattr(self, name)[: self.size].clone() for name in FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay buffer of capacity {state['capacity']}, not {self.capacity}")
        self.position, self.size = state["position"], state["size"]
        for name in FIELDS:
            getattr(self, name)[: self.size] = state[name]
