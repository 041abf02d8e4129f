"""The ``q-learning`` and ``dqn`` families: agents trained by acting in a gymnasium environment.

Recipe → environment (``data.env``, any gymnasium id with discrete actions: CartPole-v1 by
default, FrozenLake-v1 or Taxi-v3 for the table) → an environment-fed task
(:mod:`seqkit.rl.task`) on the one Trainer, one gradient update per step → a Hub folder with the
Q-table or Q-network and, on its model card, the mean return of greedy episodes.

``seqkit evaluate RUN [--episodes N] [--video FILE.gif]`` plays N greedy episodes and prints the
mean ± std return (and, for a table, the success rate: episodes with a positive return).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

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
from seqkit.export.model_card import write_model_card
from seqkit.parts.base import Job
from seqkit.recipes import DataSection as BaseDataSection
from seqkit.recipes import Recipe, recipe_to_dict
from seqkit.rl.models import QNetwork, QNetworkConfig, QTable, QTableConfig

logger = logging.getLogger(__name__)

MODEL_TYPES = (QNetworkConfig.model_type, QTableConfig.model_type)
DEFAULT_EPISODES = 20
MAX_BUFFER = 10**7
"""Most transitions the replay memory may keep (each is an observation pair in memory)."""


@dataclass
class DataSection(BaseDataSection):
    """The ``data`` section of an RL recipe: the environment is the data."""

    env: str = "CartPole-v1"
    """A gymnasium environment id with a discrete action space."""


@dataclass
class ModelSection:
    """The ``model`` section of a ``q-learning`` or ``dqn`` recipe: the agent."""

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
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    """dqn: widths of the Q-network's hidden layers."""
    buffer_size: int = 10_000
    """dqn: transitions the replay memory keeps."""
    learning_starts: int = 1_000
    """dqn: random-policy transitions collected before the first update."""
    target_update_every: int = 500
    """dqn: updates between target-network syncs."""
    tau: float = 1.0
    """dqn: 1 = hard copy at each sync; < 1 = soft (Polyak) update θ⁻ ← τθ + (1 − τ)θ⁻."""
    double_dqn: bool = False
    """dqn: choose the next action with the online network, value it with the target one."""
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
                "buffer_size": count(1, MAX_BUFFER),
                "learning_starts": count(0, MAX_STEPS),
                "target_update_every": count(1, MAX_STEPS),
                "tau": probability(low_open=True, high_open=False),
                "eval_episodes": count(0, MAX_EPISODES),
                "validation_episodes": count(0, MAX_EPISODES),
            },
        )
        check_range("model.hidden_sizes (its length)", len(self.hidden_sizes), 0, MAX_DEPTH)
        for i, width in enumerate(self.hidden_sizes):
            check_range(f"model.hidden_sizes[{i}]", width, 1, MAX_WIDTH, integer=True)


def _check(recipe: Recipe, section: ModelSection) -> None:
    """What the model section asks of the trainer section (each field alone: __post_init__)."""
    if recipe.task == "q-learning":
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


def build(recipe: Recipe, section: ModelSection) -> Job:
    """Create the environment and the agent, and wrap them in the environment-fed task."""
    from seqkit.rl.envs import make_env, observation_size
    from seqkit.rl.task import DQNTask, EpsilonSchedule, QLearningTask, ValidationEpisodes

    _check(recipe, section)
    env = make_env(recipe.data.env)  # fails here, before the run directory, on a bad id
    kind, size = observation_size(env)
    num_actions = int(env.action_space.n)
    env.close()
    epsilon = EpsilonSchedule(section.epsilon_start, section.epsilon_end, section.exploration_steps)
    seed = recipe.trainer.seed
    torch.manual_seed(seed)
    if recipe.task == "q-learning":
        if kind != "discrete":
            raise UserError(
                f"q-learning needs a discrete state space to tabulate; {recipe.data.env} has "
                "continuous observations (use the dqn task)"
            )
        model = QTable(
            QTableConfig(num_states=size, num_actions=num_actions, env_id=recipe.data.env)
        )
        task = QLearningTask(
            model,
            recipe.data.env,
            seed=seed,
            gamma=section.gamma,
            epsilon=epsilon,
            env_steps_per_update=section.env_steps_per_update,
        )
    else:
        config = QNetworkConfig(
            observation_size=size,
            observation_kind=kind,
            num_actions=num_actions,
            hidden_sizes=list(section.hidden_sizes),
            env_id=recipe.data.env,
        )
        model = QNetwork(config)
        task = DQNTask(
            model,
            QNetwork(config),
            recipe.data.env,
            seed=seed,
            gamma=section.gamma,
            epsilon=epsilon,
            buffer_size=section.buffer_size,
            batch_size=recipe.trainer.batch_size,
            learning_starts=section.learning_starts,
            env_steps_per_update=section.env_steps_per_update,
            target_update_every=section.target_update_every,
            tau=section.tau,
            double_dqn=section.double_dqn,
        )

    def save_final(folder: Path, metrics: dict[str, float], run_dir: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        metrics = dict(metrics)
        if section.eval_episodes:
            metrics.update(greedy_metrics(model, recipe.data.env, section.eval_episodes, seed=0))
            shown = f"{metrics['mean_return']:.2f} ± {metrics['std_return']:.2f}"
            logger.info("greedy return over %d episodes: %s", section.eval_episodes, shown)
        write_model_card(
            folder,
            title=f"seqkit {recipe.task} ({recipe.source.stem if recipe.source else 'recipe'})",
            family=recipe.task,
            num_parameters=model.num_parameters(),
            recipe=recipe_to_dict(recipe),
            metrics=metrics,
            loss_plot=run_dir / "loss.png" if (run_dir / "loss.png").is_file() else None,
            tags=["reinforcement-learning", recipe.task, recipe.data.env],
            pipeline_tag="reinforcement-learning",
            how_to_load=HOW_TO_LOAD,
            training_data=f"interaction with the gymnasium environment {recipe.data.env}",
        )

    return Job(
        task=task,
        train_data=None,  # the environment feeds the task
        # Evaluation is greedy episodes, not a held-out loss (and `seqkit evaluate` plays more).
        eval_data=ValidationEpisodes(section.validation_episodes)
        if section.validation_episodes
        else None,
        save_final=save_final,
        summary={
            "environment": f"{recipe.data.env} ({kind} observations of size {size}, "
            f"{num_actions} actions)",
            "parameters": model.num_parameters(),
            "model": asdict(section),
        },
    )


HOW_TO_LOAD = """\
import seqkit  # registers every seqkit model type with the Auto classes
from transformers import AutoModel

agent = AutoModel.from_pretrained("PATH")   # QNetwork or QTable; agent.config.env_id names the env
# or, from the command line: seqkit evaluate PATH --episodes 100
"""


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


def load_pretrained(folder: Path):
    """``(agent, None)``: an agent has no tokenizer."""
    from seqkit.folders import load_weights, read_config

    model_type = read_config(folder)["model_type"]
    model_class = QNetwork if model_type == QNetworkConfig.model_type else QTable
    return load_weights(model_class, folder), None


def evaluate(folder: Path, run_dir: Path | None, args) -> dict[str, float]:
    """Play ``--episodes`` greedy episodes (seeds ``--seed`` onwards); ``--video`` records one."""
    from seqkit.outputs import check_new_file
    from seqkit.rl.play import record_gif

    episodes = args.episodes if getattr(args, "episodes", None) is not None else DEFAULT_EPISODES
    if episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    if getattr(args, "video", None):  # checked before the episodes are played
        check_new_file(
            args.video,
            overwrite=getattr(args, "overwrite", False),
            option="--video",
            suffixes=(".gif",),
        )
    model, _ = load_pretrained(folder)
    env_id = model.config.env_id
    seed = getattr(args, "seed", 0) or 0
    metrics = greedy_metrics(model, env_id, episodes, seed=seed)
    print(
        f"{env_id}: return {metrics['mean_return']:.2f} ± {metrics['std_return']:.2f} over "
        f"{episodes} greedy episodes"
    )
    if getattr(args, "video", None):
        frames = record_gif(model, env_id, Path(args.video), seed=seed, overwrite=True)
        print(f"wrote {args.video} ({frames} frames)")
    return metrics
