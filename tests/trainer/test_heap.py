"""The free heap pages that training leaves behind go back to the OS before the run's last
phase (seqkit.trainer.heap)."""

from __future__ import annotations

import sys

import pytest
import torch

from seqkit.trainer.heap import _malloc_trim, return_free_heap


def _resident_anonymous_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(_malloc_trim() is None, reason="the C library has no malloc_trim")
def test_freed_heap_pages_are_returned():
    # 64 KiB blocks come from the heap (below glibc's mmap threshold); the last one stays alive,
    # so freeing the others leaves 40 MiB of free pages inside the heap that free() keeps.
    blocks = [torch.ones(16 * 1024) for _ in range(640)]
    keep = blocks[-1]
    del blocks
    before = _resident_anonymous_mb()
    assert return_free_heap()
    assert before - _resident_anonymous_mb() > 20
    assert keep.sum() == 16 * 1024


def test_elsewhere_it_does_nothing(monkeypatch):
    _malloc_trim.cache_clear()
    monkeypatch.setattr(sys, "platform", "darwin")
    try:
        assert return_free_heap() is False
    finally:
        _malloc_trim.cache_clear()
