"""Throughput and model FLOPs utilisation: how far a run is from what the machine can do.

Every logging step reports ``train/<unit>_per_s`` (tokens for a language model, examples
otherwise: the targets the loss is averaged over) and, for tasks that know their cost per
target, ``train/mfu``: the model's FLOPs per second divided by the matrix-multiply throughput
this machine reaches, measured once per process by a short probe. MFU is the measure of
Chowdhery et al. 2022 (PaLM, appendix B); the cost of a dense Transformer per token is the
6·N + 12·L·T·C of Kaplan et al. 2020 and nanoGPT's ``estimate_mfu``.
"""

from __future__ import annotations

import functools
import time

import torch

PROBE_SECONDS = 0.1
"""How long the matmul probe runs (once per process and device)."""


@functools.cache
def matmul_flops_per_second(device_type: str = "cpu", size: int = 512) -> float:
    """The float32 FLOP/s of ``size``×``size`` matrix multiplies on this device, measured."""
    device = torch.device(device_type)
    # A private generator: drawing from the global one would change the training run (a
    # resumed run probes at another moment than an uninterrupted one).
    generator = torch.Generator(device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=generator)
    b = torch.randn(size, size, device=device, generator=generator)
    torch.mm(a, b)  # warm-up: kernel choice, caches
    synchronize = getattr(getattr(torch, device_type, None), "synchronize", None)
    calls, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        calls += 1
        if calls % 4 == 0:
            if synchronize is not None:
                synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= PROBE_SECONDS:
                return 2 * size**3 * calls / elapsed


class ThroughputMeter:
    """Targets per second and MFU between two logging steps.

    Args:
        unit: what a target is ("tokens", "examples"), for the metric's name.
        flops_per_target: the model's training FLOPs per target (forward and backward), or
            None when the task does not know it (then no MFU is reported).
        device_type: where the model runs, for the probe.
    """

    def __init__(self, unit: str, flops_per_target: float | None, device_type: str):
        self.unit = unit
        self.flops_per_target = flops_per_target
        self.peak = matmul_flops_per_second(device_type) if flops_per_target else None
        self._since = time.perf_counter()
        self._excluded = 0.0

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` of the current interval out (evaluation, a checkpoint)."""
        self._excluded += seconds

    def measure(self, targets: float) -> dict[str, float]:
        """The metrics for ``targets`` trained since the last call."""
        now = time.perf_counter()
        elapsed = now - self._since - self._excluded
        self._since, self._excluded = now, 0.0
        if elapsed <= 0:
            return {}
        rate = targets / elapsed
        metrics = {f"train/{self.unit}_per_s": rate}
        if self.peak:
            metrics["train/mfu"] = rate * self.flops_per_target / self.peak
        return metrics
