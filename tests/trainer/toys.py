"""Tiny models, data and tasks for Trainer tests: small enough to train in milliseconds."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from seqkit.trainer import Task


@dataclass
class ToyOutput:
    loss: torch.Tensor
    logits: torch.Tensor


class ToyLM(nn.Module):
    """Embedding -> dropout -> tanh -> linear head; mean cross-entropy over non-ignored labels."""

    def __init__(self, vocab_size: int = 11, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, input_ids, labels=None):
        logits = self.head(self.norm(torch.tanh(self.drop(self.embed(input_ids)))))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return ToyOutput(loss=loss, logits=logits)


class ToySequences(torch.utils.data.Dataset):
    """Random token sequences whose labels ignore a varying number of positions.

    Examples have different numbers of targets, so averaging per-micro-batch means would give
    a different gradient from the mean over all targets, which is what the tests check.
    """

    def __init__(self, size: int = 64, length: int = 6, vocab_size: int = 11, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randint(vocab_size, (size, length), generator=generator)
        self.labels = torch.randint(vocab_size, (size, length), generator=generator)
        for i in range(size):
            self.labels[i, : i % length] = -100  # 0..length-1 ignored positions

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i):
        return {"input_ids": self.inputs[i], "labels": self.labels[i]}


class ToyGAN(Task):
    """A one-dimensional GAN: two models, two optimizers, discriminator first."""

    evaluation_optimizer = "discriminator"

    def __init__(self):
        generator = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        discriminator = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        super().__init__({"generator": generator, "discriminator": discriminator})

    def configure_optimizers(self, build):
        return {
            "discriminator": build(self.models["discriminator"]),
            "generator": build(self.models["generator"], lr=5e-3),
        }

    def training_step(self, models, batch, optimizer_name):
        real = batch["x"]
        noise = torch.randn(real.shape[0], 2)
        fake = models["generator"](noise)
        ones, zeros = torch.ones_like(real), torch.zeros_like(real)
        if optimizer_name == "discriminator":
            d_real = models["discriminator"](real)
            d_fake = models["discriminator"](fake.detach())
            return F.binary_cross_entropy_with_logits(
                d_real, ones
            ) + F.binary_cross_entropy_with_logits(d_fake, zeros)
        return F.binary_cross_entropy_with_logits(models["discriminator"](fake), ones)


class RealNumbers(torch.utils.data.Dataset):
    def __init__(self, size: int = 64):
        self.x = torch.randn(size, 1, generator=torch.Generator().manual_seed(1)) * 0.5 + 2.0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i]}


class ChainWalk:
    """A five-state chain: action 1 moves right, action 0 left; reward 1 at the right end."""

    n_states = 5

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.state = 0

    def step(self, action: int) -> tuple[int, float, bool]:
        self.state = max(0, min(self.n_states - 1, self.state + (1 if action else -1)))
        done = self.state == self.n_states - 1
        reward = 1.0 if done else 0.0
        next_state = self.state
        if done:
            self.state = 0
        return next_state, reward, done


class ChainQLearning(Task):
    """A tabular-style Q network fed by an environment through a replay buffer (DQN's shape)."""

    gamma = 0.9

    def __init__(self, seed: int = 0):
        super().__init__(nn.Linear(ChainWalk.n_states, 2))
        self.env = ChainWalk(seed)
        self.buffer: list[tuple[int, int, float, int, bool]] = []
        self.steps_taken = 0

    def _act(self) -> None:
        state = self.env.state
        action = self.env.rng.randrange(2)  # a random behaviour policy is enough off-policy
        next_state, reward, done = self.env.step(action)
        self.buffer.append((state, action, reward, next_state, done))
        self.steps_taken += 1

    def train_batches(self):
        while True:
            for _ in range(4):
                self._act()
            sample = [self.buffer[self.env.rng.randrange(len(self.buffer))] for _ in range(16)]
            s, a, r, s2, d = (torch.tensor(column) for column in zip(*sample, strict=True))
            yield {"s": s, "a": a, "r": r.float(), "s2": s2, "done": d.float()}

    @staticmethod
    def q(models, states):
        return models["model"](F.one_hot(states, ChainWalk.n_states).float())

    def training_step(self, models, batch, optimizer_name):
        with torch.no_grad():
            best_next = self.q(models, batch["s2"]).max(dim=1).values
            target = batch["r"] + self.gamma * (1 - batch["done"]) * best_next
        chosen = self.q(models, batch["s"]).gather(1, batch["a"][:, None]).squeeze(1)
        return F.mse_loss(chosen, target)

    def state_dict(self):
        return {
            "buffer": [list(t) for t in self.buffer],
            "env_state": self.env.state,
            "env_rng": self.env.rng.getstate(),
            "steps_taken": self.steps_taken,
        }

    def load_state_dict(self, state):
        self.buffer = [tuple(t) for t in state["buffer"]]
        self.env.state = state["env_state"]
        self.env.rng.setstate(state["env_rng"])
        self.steps_taken = state["steps_taken"]
