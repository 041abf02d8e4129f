"""Handing the C heap's free pages back to the operating system when training ends.

A training step allocates its activations and frees them when the backward pass is done; glibc's
``malloc`` keeps the freed pages for the next step rather than returning them, which is what
makes steps cheap. After the last step they are dead weight, and what a run does next (loading
matplotlib for the loss plot, generating the closing sample) allocates fresh pages on top of
them, so the run's peak resident memory comes after training, not during it.
``malloc_trim(0)`` returns them first. For ``gpt/shakespeare-char`` (one thread, 100 steps,
measured with ``ru_maxrss``) it frees 42 MB, and the run's peak falls from 442 to 420 MB: the
training peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def return_free_heap() -> bool:
    """Return the heap's free pages to the OS; whether the C library could (glibc only)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
