"""Feature tests run torch on one thread: small STFTs on a shared 2-core machine are
~100x slower when OpenMP threads compete for cores."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
