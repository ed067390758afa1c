"""Shared fixtures of the ttsrl.train tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train much faster on one thread (and a loaded CI machine hurts less)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
