"""LR schedules: values at the steps that matter, monotonicity, and the scheduler's state."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from seqkit.errors import UserError
from seqkit.trainer.config import TrainerConfig
from seqkit.trainer.schedules import (
    SCHEDULES,
    build_scheduler,
    load_scheduler_state,
    lr_multiplier,
    scheduler_state,
)


def factors(config: TrainerConfig, steps: int) -> list[float]:
    return [lr_multiplier(step, config) for step in range(steps)]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_warmup_ramps_linearly_to_the_peak(schedule):
    config = TrainerConfig(schedule=schedule, warmup_steps=4, max_steps=100, lr=1.0)
    assert factors(config, 5) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_constant():
    assert factors(TrainerConfig(schedule="constant"), 5) == [1.0] * 5


def test_linear_decays_to_min_lr_at_decay_steps():
    config = TrainerConfig(
        schedule="linear", lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=110, max_steps=200
    )
    assert lr_multiplier(10, config) == pytest.approx(1.0)
    assert lr_multiplier(60, config) == pytest.approx(0.55)  # halfway between 1 and 0.1
    assert lr_multiplier(110, config) == pytest.approx(0.1)
    assert lr_multiplier(150, config) == pytest.approx(0.1)  # flat after decay_steps


def test_cosine_defaults_to_max_steps_and_decreases():
    config = TrainerConfig(schedule="cosine", lr=2.0, min_lr=0.0, warmup_steps=0, max_steps=100)
    assert lr_multiplier(0, config) == pytest.approx(1.0)
    assert lr_multiplier(50, config) == pytest.approx(0.5)
    assert lr_multiplier(100, config) == pytest.approx(0.0, abs=1e-12)
    values = factors(config, 101)
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_step_schedule_multiplies_by_gamma_after_warmup():
    config = TrainerConfig(schedule="step", step_size=10, gamma=0.5, warmup_steps=5)
    assert lr_multiplier(5, config) == 1.0
    assert lr_multiplier(14, config) == 1.0
    assert lr_multiplier(15, config) == 0.5
    assert lr_multiplier(35, config) == 0.125


def test_cyclic_is_a_triangle_between_min_lr_and_lr():
    config = TrainerConfig(schedule="cyclic", lr=1.0, min_lr=0.2, cycle_steps=10)
    assert lr_multiplier(0, config) == pytest.approx(0.2)
    assert lr_multiplier(5, config) == pytest.approx(1.0)
    assert lr_multiplier(10, config) == pytest.approx(0.2)
    assert lr_multiplier(15, config) == pytest.approx(1.0)
    rising = factors(config, 6)
    assert all(a < b for a, b in itertools.pairwise(rising))


def test_cyclic_after_warmup_continues_from_the_peak():
    config = TrainerConfig(schedule="cyclic", lr=1.0, min_lr=0.0, cycle_steps=10, warmup_steps=3)
    assert lr_multiplier(3, config) == pytest.approx(1.0)
    assert lr_multiplier(8, config) == pytest.approx(0.0)
    assert lr_multiplier(13, config) == pytest.approx(1.0)


def test_cosine_restarts_periods_grow_by_restart_mult():
    config = TrainerConfig(
        schedule="cosine_restarts", lr=1.0, min_lr=0.1, restart_steps=10, restart_mult=2
    )
    # Periods: [0, 10), [10, 30), [30, 70).
    for start, length in ((0, 10), (10, 20), (30, 40)):
        assert lr_multiplier(start, config) == pytest.approx(1.0)  # a restart
        assert lr_multiplier(start + length // 2, config) == pytest.approx(0.55)
        within = [lr_multiplier(start + i, config) for i in range(length)]
        assert all(a > b for a, b in itertools.pairwise(within))
        assert within[-1] > 0.1


def test_cosine_restarts_with_equal_periods():
    config = TrainerConfig(schedule="cosine_restarts", restart_steps=4, warmup_steps=2)
    expected = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert factors(config, 10)[2:] == pytest.approx(expected + expected)


def test_min_lr_is_absolute_per_group():
    # Two groups with different base LRs (a GAN's two optimizers) both end at min_lr.
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(
        [
            {"params": [model.weight], "lr": 1.0},
            {"params": [model.bias], "lr": 0.1},
        ]
    )
    config = TrainerConfig(schedule="linear", min_lr=0.01, max_steps=4)
    scheduler = build_scheduler(optimizer, config)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.01])


def test_scheduler_state_round_trips_through_json():
    model = torch.nn.Linear(2, 2)
    config = TrainerConfig(schedule="cosine", lr=0.5, warmup_steps=2, max_steps=20)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    scheduler = build_scheduler(optimizer, config)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    state = json.loads(json.dumps(scheduler_state(scheduler)))

    fresh_optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    fresh = build_scheduler(fresh_optimizer, config)
    fresh_optimizer.load_state_dict(optimizer.state_dict())
    load_scheduler_state(fresh, state)
    assert fresh.last_epoch == 7
    for _ in range(5):
        optimizer.step()
        scheduler.step()
        fresh_optimizer.step()
        fresh.step()
        assert fresh.get_last_lr() == scheduler.get_last_lr()
        assert fresh_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    assert scheduler.get_last_lr()[0] == pytest.approx(0.5 * lr_multiplier(12, config))


def test_unknown_schedule_lists_the_valid_names():
    with pytest.raises(UserError, match="constant, linear, cosine, step, cyclic"):
        lr_multiplier(0, TrainerConfig(schedule="exponential"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schedule": "cosine", "warmup_steps": 10, "decay_steps": 5}, "decay_steps"),
        ({"schedule": "cosine", "min_lr": 1.0, "lr": 0.1}, "min_lr"),
        ({"schedule": "step", "step_size": 0}, "step_size"),
        ({"schedule": "cyclic", "cycle_steps": 0}, "cycle_steps"),
        ({"schedule": "cosine_restarts", "restart_mult": 0}, "restart_mult"),
    ],
)
def test_impossible_settings_are_user_errors(overrides, message):
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(UserError, match=message):
        build_scheduler(optimizer, TrainerConfig(**overrides))
