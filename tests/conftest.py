"""Test-wide settings and shared fixtures.

Tiny models spend their time in thread synchronisation when several threads share two cores;
tests run with one thread (tests that need more set it themselves).
"""
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tts_models(tmp_path_factory):
    """Random-weight tiny tokenizer, codec LM and flow (see tests/tts_helpers.py)."""
    from tts_helpers import build_tiny_tts_models

    return build_tiny_tts_models(tmp_path_factory.mktemp("tiny_tts"))
