"""Shared test set-up."""

import pytest
from accelerate.state import AcceleratorState


@pytest.fixture(autouse=True)
def fresh_accelerator_state():
    """accelerate keeps one process-wide state; each test may ask for another precision."""
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
