"""Shared test set-up."""

import pytest
import torch
from accelerate.state import AcceleratorState


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one process-wide state; each test may ask for another precision."""
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids thread hand-offs that dominate on a busy CPU.
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
