"""Throughput and MFU in every run's logs (seqkit/trainer/throughput.py)."""

from __future__ import annotations

import json

import torch

from seqkit.trainer import LanguageModelingTask, Trainer
from seqkit.trainer.throughput import ThroughputMeter, matmul_flops_per_second

from .test_trainer import config
from .toys import ToyLM, ToySequences


def test_the_probe_measures_a_plausible_matmul_rate():
    rate = matmul_flops_per_second("cpu")
    assert 1e8 < rate < 1e14  # between an old phone and a rack of accelerators
    assert matmul_flops_per_second("cpu") == rate  # measured once per process


def test_the_probe_leaves_the_global_random_state_alone():
    matmul_flops_per_second.cache_clear()
    before = torch.random.get_rng_state()
    matmul_flops_per_second("cpu")
    assert torch.equal(torch.random.get_rng_state(), before)


def test_excluded_time_is_not_training_time(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr("seqkit.trainer.throughput.time.perf_counter", lambda: next(clock))
    meter = ThroughputMeter("tokens", None, "cpu")
    meter.exclude(6.0)  # evaluation took 6 of the 10 seconds
    assert meter.measure(800) == {"train/tokens_per_s": 200.0}


def test_a_language_model_logs_tokens_per_second_and_mfu(tmp_path):
    trainer = Trainer(
        LanguageModelingTask(ToyLM()),
        config(max_steps=4, log_every=2),
        output_dir=tmp_path,
        train_data=ToySequences(),
    )
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "train/loss" in row]
    assert len(logged) == 2
    for row in logged:
        assert row["train/tokens_per_s"] > 0
        assert 0 < row["train/mfu"] < 1
