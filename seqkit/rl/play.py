"""Playing greedy episodes with a trained agent, and recording one as a GIF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqkit.errors import UserError
from seqkit.rl.envs import encode_observation, make_env, observation_size
from seqkit.rl.models import QNetwork, QTable

Policy = Callable[[Any], int]


def greedy_policy(model, env) -> Policy:
    """``observation -> argmax_a Q(observation, a)`` for a Q-table or a Q-network."""
    model.eval()
    if isinstance(model, QTable):
        table = model.table.detach()
        return lambda observation: int(table[int(observation)].argmax())
    if isinstance(model, QNetwork):
        kind, size = observation_size(env)
        if size != model.config.observation_size:
            raise UserError(
                f"{model.config.env_id} observations have {size} numbers but the network "
                f"expects {model.config.observation_size}"
            )

        device = next(model.parameters()).device  # the Trainer may have moved it to a GPU

        @torch.no_grad()
        def act(observation) -> int:
            vector = encode_observation(observation, kind, size)[None].to(device)  # (1, D)
            return int(model(vector).argmax(dim=1))

        return act
    raise TypeError(f"no greedy policy for {type(model).__name__}")


def play_episode(env, policy: Policy, seed: int) -> float:
    """The return of one episode of ``policy`` in ``env``, reset with ``seed``."""
    observation, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        observation, reward, terminated, truncated, _ = env.step(policy(observation))
        total += float(reward)
        done = terminated or truncated
    return total


def play_episodes(model, env_id: str, episodes: int, seed: int = 0) -> list[float]:
    """Returns of ``episodes`` greedy episodes, the i-th reset with seed ``seed + i``."""
    env = make_env(env_id)
    policy = greedy_policy(model, env)
    returns = [play_episode(env, policy, seed + i) for i in range(episodes)]
    env.close()
    return returns


def record_gif(
    model, env_id: str, path: Path, seed: int = 0, fps: int = 30, overwrite: bool = False
) -> int:
    """Play one greedy episode with rendering and write it to ``path``; returns its frames."""
    from gymnasium.error import DependencyNotInstalled
    from PIL import Image

    from seqkit.outputs import check_new_file

    # seqkit evaluate checks this before playing its episodes; callers from Python get it here.
    check_new_file(path, overwrite=overwrite, option="--video", suffixes=(".gif",))
    try:
        env = make_env(env_id, render_mode="rgb_array")
        policy = greedy_policy(model, env)
        observation, _ = env.reset(seed=seed)
        frames, done = [env.render()], False
        while not done:
            observation, _, terminated, truncated, _ = env.step(policy(observation))
            frames.append(env.render())
            done = terminated or truncated
        env.close()
    except (ImportError, DependencyNotInstalled) as error:  # the renderers need pygame
        raise UserError(
            f"rendering {env_id} needs a package that is not installed: {error}"
        ) from None
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return len(images)
